"""An OpenAI-compatible server that is already running: another box, or a hosted API.

Nothing is launched or stopped. The API key comes from the environment variable the config
names and only ever travels in the Authorization header: it is never written to results, logs
or error messages. Which request extensions the server accepts is found out by probing, from
the richest set (vLLM's) down to plain OpenAI; /metrics is used only if it answers.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness.config import ExperimentConfig
from harness.contract.plan import Cell
from harness.contract.server import INCLUDE_USAGE, TOKEN_IDS, ServerHandle
from harness.engines.base import Engine, EngineError
from harness.engines.http import completion_ok, get_status, open_url
from harness.engines.models import served_name
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.load.sse import completion_payload

# Tried in order; the first set the server accepts is used.
PROBES: list[frozenset[str]] = [
    VLLM_EXTENSIONS,
    VLLM_EXTENSIONS - {TOKEN_IDS},
    frozenset({INCLUDE_USAGE}),
    frozenset(),
]


def probe_body(model: str, extensions: frozenset[str]) -> dict:
    """A two-token request using exactly `extensions`, built as the client builds them."""
    prompt = [10, 11, 12] if TOKEN_IDS in extensions else "hello"
    return completion_payload(ServerHandle("", model, extensions), prompt, 2)


class ExternalEngine(Engine):
    kind = "external"

    @classmethod
    def for_cell(cls, config: ExperimentConfig, cell: Cell, log_path: Path,
                 create: bool = True) -> ExternalEngine:
        engine = config.engine
        return cls(engine.url, served_name(config, cell.model), log_path, engine.api_key_env,
                   timeout_s=engine.startup_timeout_s)

    def __init__(self, url: str, model: str, log_path: Path, api_key_env: str | None = None,
                 timeout_s: float = 120.0):
        self.url = url.rstrip("/")
        self.model = model
        self.log_path = log_path
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self._handle: ServerHandle | None = None

    def _key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise EngineError(f"environment variable {self.api_key_env} (engine.api_key_env) "
                              "is not set")
        return key

    def start(self) -> ServerHandle:
        key = self._key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        lines = [f"external server {self.url}, model {self.model}"]
        reasons = []
        for extensions in PROBES:
            ok, why = completion_ok(self.url, probe_body(self.model, extensions), headers,
                                    timeout=self.timeout_s)
            accepted = ", ".join(sorted(extensions)) or "plain OpenAI"
            lines.append(f"probe [{accepted}]: {'accepted' if ok else 'refused: ' + why}")
            if ok:
                metrics = self.url + "/metrics" if self._has_metrics(headers) else None
                lines.append(f"/metrics: {'used' if metrics else 'not available'}")
                self._write_log(lines, key)
                self._handle = ServerHandle(self.url, self.model, extensions, metrics, headers,
                                            secret=key)
                return self._handle
            reasons.append(why)
        self._write_log(lines, key)
        raise EngineError(_redact(f"{self.url} did not complete a request: {reasons[-1]}", key),
                          self.log_tail())

    def _has_metrics(self, headers: dict[str, str]) -> bool:
        if get_status(self.url + "/metrics", headers, timeout=5) != 200:
            return False
        import urllib.request

        request = urllib.request.Request(self.url + "/metrics", headers=headers)
        try:
            with open_url(request, 5) as response:
                text = response.read().decode(errors="replace")
            return any(f.name.startswith("vllm:") for f in text_string_to_metric_families(text))
        except (OSError, ValueError):
            return False

    def _write_log(self, lines: list[str], key: str | None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write("\n".join(_redact(line, key) for line in lines) + "\n")

    def alive(self) -> bool:
        return self._handle is not None

    def describe(self) -> str:
        key = f", key from ${self.api_key_env}" if self.api_key_env else ""
        return f"running server at {self.url}{key}"

    def stop(self) -> None:
        self._handle = None  # not ours to stop


def _redact(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text
