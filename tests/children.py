"""The harness as a child process, for end-to-end tests that signal or time it."""

from __future__ import annotations

import signal
import subprocess
import sys


def default_sigint() -> None:
    """Give the child Ctrl-C's default disposition: a test suite started from a background job
    inherits SIGINT as ignored, and the harness keeps an inherited ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def harness(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint,
                            **popen)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out
