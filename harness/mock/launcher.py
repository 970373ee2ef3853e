"""The mock server started from Python: `python -m harness.mock` as a subprocess, with the
ports and pids it reports, and the write stamps fetched from its workers."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

from harness.contract.server import ServerHandle
from harness.engines.http import open_url
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.mock.supervisor import alive
from harness.mock.token_schedule import Schedule


class MockServer:
    """`python -m harness.mock` as a subprocess, in its own session; stopped (the whole
    process group killed) on exit from the `with` block, on any error, and when this process
    dies (the server watches its stdin, which only this process holds)."""

    def __init__(self, schedule: Schedule = Schedule(), workers: int = 1,
                 startup_timeout_s: float = 20.0, cpus: set[int] | None = None,
                 faults: str | None = None):
        self.schedule = schedule
        self.faults = faults  # a fault plan, as harness.mock.faults parses it
        self.workers = workers
        self.cpus = cpus  # where its processes may run (Linux); None: anywhere
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self.worker_ports: list[int] = []
        self.pids: list[int] = []  # the supervisor, then the workers
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, model: str = "mock") -> ServerHandle:
        """What the client needs: the extensions are vLLM's, as the mock speaks vLLM."""
        return ServerHandle(self.base_url, model, VLLM_EXTENSIONS)

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "harness.mock", "--port", "0", "--watch-stdin",
                   "--workers", str(self.workers),
                   "--interval-ms", repr(self.schedule.interval_s * 1000),
                   "--tokens-per-chunk", str(self.schedule.tokens_per_chunk)]
        if self.schedule.tokens is not None:
            command += ["--tokens", str(self.schedule.tokens)]
        if self.faults:
            command += ["--faults", self.faults]
        if self.cpus:
            command += ["--cpus", ",".join(map(str, sorted(self.cpus)))]
        return command

    def start(self) -> MockServer:
        self._errors = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(self._command(), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._errors,
                                      start_new_session=True)
        try:
            ready = json.loads(self._ready_line())
        except BaseException:
            self.stop()
            raise
        self.port = ready["port"]
        self.worker_ports = [worker["control_port"] for worker in ready["workers"]]
        self.pids = [self._proc.pid] + [worker["pid"] for worker in ready["workers"]]
        return self

    def _ready_line(self) -> str:
        deadline = time.monotonic() + self.startup_timeout_s
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self._proc.poll() is not None:
                self._errors.seek(0)
                why = self._errors.read().decode(errors="replace").strip()[-500:]
                raise RuntimeError(f"mock server did not start: {why or 'timed out'}")
            if select.select([self._proc.stdout], [], [], min(left, 0.1))[0]:
                line += os.read(self._proc.stdout.fileno(), 4096)
        return line.decode()

    def stop(self) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)  # nothing to save: kill the group
        except ProcessLookupError:
            pass
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._errors):
            stream.close()
        self._proc = None
        deadline = time.monotonic() + 5.0  # the workers are not our children: see them go
        while any(map(alive, self.pids)) and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take_stamps(self) -> list[dict]:
        """Each worker's write stamps since the last call (then forgotten there), with how
        late its steps ran: [{"pid", "requests": [[key, [stamp, ...]], ...], ...}]."""
        reports = []
        for port in self.worker_ports:
            url = f"http://127.0.0.1:{port}/mock/stamps"
            with open_url(url, 30) as response:
                reports.append(json.loads(response.read()))
        return reports
