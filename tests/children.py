"""The harness as a child process, for end-to-end tests that signal or time it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def default_sigint() -> None:
    """Give the child Ctrl-C's default disposition: a test suite started from a background job
    inherits SIGINT as ignored, and the harness keeps an inherited ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def harness(*args: str, **popen) -> subprocess.Popen:
    """The harness as a child, its output piped. It gets Python's own environment: a child
    given none inherits the process's C-level one, where readline (imported by the test
    runner's debugger support) has set COLUMNS=80, which piped output follows."""
    popen.setdefault("env", dict(os.environ))
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint,
                            **popen)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def run_harness(*args: str, cwd: str | None = None, timeout: float = 900) -> tuple[int, str]:
    """The harness run to its end, wide (COLUMNS=250, so no table is narrowed); its exit code
    and its output, stdout then stderr."""
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "250"},
                          cwd=cwd)
    return done.returncode, done.stdout + done.stderr
