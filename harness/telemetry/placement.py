"""Does the server compute on exactly the GPUs measured for it?

NVML lists the processes computing on each GPU (nvmlDeviceGetComputeRunningProcesses); the
server is its process group (the guard leads it: harness/engines/process.py). A server process
on a GPU that is not measured, or a measured GPU without one, makes the energy wrong: the cell
fails. In a container with a PID namespace of its own, NVML may list the host's pids, which
this namespace does not have (or list none): then nothing can be judged, and it says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Placement:
    """The verdict: `problem` fails the cell (one line); `unchecked` says why nothing could be
    judged (a warning); both None: the server runs on exactly the measured GPUs."""

    problem: str | None = None
    unchecked: str | None = None


def judge(measured: list[str], on_gpus: dict[str, set[int]], server: set[int],
          exists: Callable[[int], bool] | None = None) -> Placement:
    """`measured`: the measured GPUs' UUIDs; `on_gpus`: UUID -> pids NVML lists on it (every
    GPU it can read); `server`: the server's pids; `exists`: whether a pid is a process of this
    PID namespace (default: /proc)."""
    exists = exists or pid_exists
    listed = set().union(*on_gpus.values())
    if not listed:
        return Placement(unchecked="GPU placement not checked: NVML lists no process "
                                   "computing on any GPU")
    if not listed & server and not all(exists(pid) for pid in listed):
        return Placement(unchecked="GPU placement not checked: NVML lists processes this PID "
                                   "namespace does not have (a container without --pid=host?)")
    for uuid, pids in sorted(on_gpus.items()):
        strays = sorted(pids & server)
        if strays and uuid not in measured:
            return Placement(problem=f"the server computes on {uuid} (pid {strays[0]}), which "
                                     f"is not measured (measured: {', '.join(measured)})")
    for uuid in measured:
        if uuid in on_gpus and not on_gpus[uuid] & server:
            return Placement(problem=f"no server process computes on measured GPU {uuid}: "
                                     "its energy would not be the server's")
    return Placement()


def pid_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()
