"""Keeps a server's whole process group from outliving the harness.

Run as ``python -m harness.engines.guard LIFELINE_FD command...`` as the leader of a new process
group: it starts the command in that group and holds the read end of a pipe whose write end
only the harness has. When the harness exits for any reason (even SIGKILL), the pipe reads EOF and
the guard terminates the group: SIGTERM, then SIGKILL after a grace period. vLLM's engine-core
processes do not die with their API server, so the parent-death signal alone is not enough; it
is the fallback for a guard killed outright (the server then gets SIGTERM and stops its cores).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

GRACE_S = 20.0
PR_SET_PDEATHSIG = 1  # prctl(2)


def _group_has_others(pgid: int, me: int) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def terminate_group(grace_s: float = GRACE_S) -> None:
    """SIGTERM to every process of this group but the guard, SIGKILL to what is left."""
    pgid, me = os.getpgrp(), os.getpid()
    os.killpg(pgid, signal.SIGTERM)  # the guard's own handler ignores it
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_has_others(pgid, me):
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)


def _terminate_with_guard() -> None:
    """In the server, before exec: SIGTERM when the guard dies, so a guard killed outright
    (SIGKILL: a Ray worker's exit kills its children so) still has the server shut itself
    down, engine cores included, as it does on SIGTERM. Linux only; elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    lifeline, command = int(argv[0]), argv[1:]
    # A Python handler (not SIG_IGN, which exec would pass on to the server) so that a
    # SIGTERM to the group reaches the server while the guard stays to report its exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    print(f"=== harness guard pid={os.getpid()}", flush=True)
    server = subprocess.Popen(command, preexec_fn=_terminate_with_guard)
    shutting_down = threading.Event()

    def watch() -> None:
        while os.read(lifeline, 1):
            pass
        shutting_down.set()
        terminate_group()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    code = server.wait()
    if shutting_down.is_set():
        watcher.join()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
