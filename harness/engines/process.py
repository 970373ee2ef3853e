"""A server run as a subprocess: guarded process group, free port on 127.0.0.1, readiness.

Shape follows vLLM's own `benchmarks/sweep/server.py`: start in a process group of its own, poll
/health while checking the process is alive, then kill the whole group (API server, engine
cores, workers). The group stays in the harness's session: a new session would also be a new
scheduler autogroup on Linux, and on a small machine whose CPUs the engine saturates, the
client then waited up to half its time for a CPU (its requests left seconds late).
Ready means /health answers 200 *and* one real completion succeeds: a server can report healthy
and still die on its first request.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from abc import abstractmethod
from pathlib import Path

from harness.contract.server import ServerHandle
from harness.engines.base import Engine, EngineError
from harness.engines.http import completion_ok, get_status

STOP_GRACE_S = 20.0
KILL_WAIT_S = 10.0
FIRST_REQUEST_RESTARTS = 1  # a server that dies on its very first request is started once more


class DiedOnFirstRequest(EngineError):
    """The server answered /health, then its process died serving the first completion."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessEngine(Engine):
    """Lifecycle shared by engines the harness launches itself."""

    def __init__(self, log_path: Path, *, env: dict[str, str] | None = None,
                 startup_timeout_s: float = 900.0, gpus: str | None = None):
        self.log_path = log_path
        self.env = dict(env or {})
        self.startup_timeout_s = startup_timeout_s
        self.gpus = gpus
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lifeline: int | None = None  # write end of the guard's pipe

    # --- what a concrete engine says ------------------------------------------------------

    @abstractmethod
    def command(self, port: int) -> list[str]: ...

    @abstractmethod
    def handle(self) -> ServerHandle: ...

    def environment(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus
            # NVML numbers GPUs in PCI order; so does CUDA with this (by default it puts the
            # fastest first), so that an index means the same GPU to both
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return env

    def use_gpus(self, uuids: list[str]) -> None:
        """Serve on exactly these GPUs (the measured ones), named by UUID."""
        self.gpus = ",".join(uuids)

    def server_pids(self) -> set[int]:
        """The live processes of the server's group (the guard, the server, its workers)."""
        return group_members(self._proc.pid) if self._proc is not None else set()

    def describe(self) -> str:
        command = self.command(0)
        return " ".join(command[command.index("--port") + 2:])

    def probe_request(self) -> dict:
        """The completion that proves the server can serve (engine-specific fields allowed)."""
        return {"model": self.handle().model, "prompt": "hello", "max_tokens": 2}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> ServerHandle:
        """Start the server; a port taken meanwhile is retried on another, and a server that
        dies on its first request is started once more (transformers serve now and then
        does, while its continuous batching sets up): the cell fails only if it dies again."""
        port_tries, restarts = 3, 0
        while True:
            self.port = free_port()
            self._spawn(self.command(self.port))
            try:
                self._wait_ready()
                return self.handle()
            except DiedOnFirstRequest as err:
                self.stop()
                if restarts >= FIRST_REQUEST_RESTARTS:
                    raise
                restarts += 1
                self._log_line(f"{err.reason}; starting it again")
            except EngineError as err:
                self.stop()
                port_tries -= 1
                if "Address already in use" not in err.log_tail:
                    raise
                if port_tries == 0:
                    raise EngineError("could not bind a free port", self.log_tail()) from None

    def _log_line(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"\n=== harness: {text}\n")

    def _spawn(self, command: list[str]) -> None:
        """Start the server under the guard, in a new process group led by the guard."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        lifeline_read, self._lifeline = os.pipe()
        guarded = [sys.executable, "-m", "harness.engines.guard", str(lifeline_read), *command]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== harness: starting {' '.join(command)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    guarded, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=self.environment(), process_group=0,  # a group of its own
                    pass_fds=(lifeline_read,))
            finally:
                os.close(lifeline_read)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL to what is left after the grace period."""
        proc, self._proc = self._proc, None
        if proc is not None:
            pgid = proc.pid  # the guard leads the server's process group
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline and _group_alive(pgid, proc):
                time.sleep(0.1)
            _signal_group(pgid, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            # a killed process takes a moment to go (a large one frees gigabytes first):
            # return once none of the group is left
            deadline = time.monotonic() + KILL_WAIT_S
            while time.monotonic() < deadline and _group_has_live_members(pgid):
                time.sleep(0.05)
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if not self.alive():
                code = self._proc.returncode if self._proc else None
                raise EngineError(f"server exited with code {code} during startup"
                                  f"{_killed_hint(code)}", self.log_tail())
            if get_status(self.base_url + "/health") == 200:
                break
            if time.monotonic() > deadline:
                raise EngineError(f"server not ready after {self.startup_timeout_s:.0f} s",
                                  self.log_tail())
            time.sleep(0.5)
        while True:
            ok, why = completion_ok(self.base_url, self.probe_request(), self.handle().headers,
                                    timeout=max(30.0, deadline - time.monotonic()))
            if ok:
                return
            time.sleep(1.0)  # let a dying server write its last lines
            # A dropped connection from a live server is retried (transformers serve can drop
            # the first request while it sets up batching); an HTTP error or a death is not.
            if not self.alive():
                code = self._proc.returncode if self._proc else None
                raise DiedOnFirstRequest(f"first completion failed: {why} (the server exited "
                                         f"with code {code}{_killed_hint(code)})",
                                         self.log_tail())
            if why.startswith("HTTP") or time.monotonic() > deadline:
                raise EngineError(f"first completion failed: {why}", self.log_tail())


def _killed_hint(code: int | None) -> str:
    """What an exit by SIGKILL most often means: the kernel's out-of-memory killer."""
    if code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return ": killed, most likely out of memory (see `dmesg`)"
    return ""


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int, leader: subprocess.Popen) -> bool:
    leader.poll()  # reap the leader so its zombie does not keep the group "alive"
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return leader.returncode is None or _group_has_live_members(pgid)


def _group_has_live_members(pgid: int) -> bool:
    """True if a process other than a zombie is in the group (reads /proc, Linux)."""
    if not Path("/proc").is_dir():
        return True
    return bool(group_members(pgid))


def group_members(pgid: int) -> set[int]:
    """The pids of the group's processes that are not zombies (reads /proc, Linux; none
    without it)."""
    proc, members = Path("/proc"), set()
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(entry.name))
    return members
