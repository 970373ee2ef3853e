"""`python -m harness`: the same command line as `harness`."""

from harness.cli import app

app(prog_name="harness")
