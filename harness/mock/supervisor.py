"""The server process: worker processes forked onto one shared port, under a supervisor that
prints where they listen and takes them all down when any of them, or it, goes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import threading
from dataclasses import asdict

from harness.load.loop import new_event_loop
from harness.mock.clock import StepClock
from harness.mock.faults import Fault, FaultCycle
from harness.mock.http import Connection, listener
from harness.mock.token_schedule import Schedule


def _serve_worker(port: int, schedule: Schedule, report_fd: int,
                  faults: tuple[Fault, ...] = ()) -> None:
    """Serve the shared port and a private control port until killed."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    clock = StepClock(loop, schedule)
    cycle = FaultCycle(faults)  # the control port never serves completions
    shared, control = listener(port, True), listener(0, False)

    async def start() -> None:
        for sock in (shared, control):
            await loop.create_server(lambda: Connection(clock, cycle), sock=sock,
                                     backlog=4096)

    loop.run_until_complete(start())
    os.write(report_fd, f"{os.getpid()} {control.getsockname()[1]}\n".encode())
    os.close(report_fd)
    loop.run_forever()


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its supervisor dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _fork_workers(probe: socket.socket, schedule: Schedule, workers: int,
                  faults: tuple[Fault, ...]) -> tuple[list[int], int]:
    port = probe.getsockname()[1]
    read_fd, write_fd = os.pipe()
    pids = []
    for _ in range(workers):
        # Fork before any event loop or thread exists in this process: nothing to corrupt.
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            probe.close()
            _die_with_parent()
            try:
                _serve_worker(port, schedule, write_fd, faults)
            finally:
                os._exit(1)
        pids.append(pid)
    os.close(write_fd)
    return pids, read_fd


def _read_reports(read_fd: int, workers: int) -> list[dict]:
    text = b""
    while text.count(b"\n") < workers:
        data = os.read(read_fd, 4096)
        if not data:
            raise RuntimeError("a worker died before it was ready")
        text += data
    os.close(read_fd)
    return [{"pid": int(pid), "control_port": int(cport)}
            for pid, cport in (line.split() for line in text.decode().splitlines())]


def _run_on(cpus: set[int]) -> None:
    try:
        os.sched_setaffinity(0, cpus)  # the workers inherit it
    except (OSError, AttributeError) as err:
        print(f"warning: running on every CPU: {err}", file=sys.stderr)


def serve(port: int, schedule: Schedule, workers: int, watch_stdin: bool,
          cpus: set[int] | None = None, faults: tuple[Fault, ...] = ()) -> int:
    """Start the workers (on `cpus` only, if given; injecting `faults`, harness.mock.faults),
    print one JSON line when they are ready, supervise them."""
    if cpus:
        _run_on(cpus)
    # Bound, not listening: it holds the port (a free one if 0) while the workers bind it.
    probe = listener(port, True, listen=False)
    port = probe.getsockname()[1]
    pids, read_fd = _fork_workers(probe, schedule, workers, faults)

    def stop(*_: object) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        reports = _read_reports(read_fd, workers)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        stop()
    probe.close()  # every worker has bound the port by now
    print(json.dumps({"port": port, "schedule": asdict(schedule), "workers": reports}),
          flush=True)
    if watch_stdin:  # the parent holds our stdin; EOF means it is gone, however it went
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), stop()), daemon=True).start()
    os.waitpid(-1, 0)  # any worker that exits takes the server down with it
    print("error: a worker exited", file=sys.stderr)
    stop()
    return 1


def alive(pid: int) -> bool:
    """Linux: the process exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
