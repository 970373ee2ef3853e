"""What every engine is and what it gives the load generator once it is up."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

# Request features beyond the plain OpenAI completions API. An engine declares (or, for an
# external server, the harness probes) which it accepts; the client sends only those.
TOKEN_IDS = "token_ids"  # prompt as a list of token ids
INCLUDE_USAGE = "include_usage"  # stream_options.include_usage
CONTINUOUS_USAGE = "continuous_usage_stats"  # usage on every chunk
IGNORE_EOS = "ignore_eos"  # vLLM: do not stop at EOS
MIN_TOKENS = "min_tokens"  # vLLM: at least this many tokens
HF_GENERATION_CONFIG = "hf_generation_config"  # transformers serve: generation_config JSON


class EngineError(Exception):
    """The server could not be started or died; `log_tail` holds its last log lines."""

    def __init__(self, reason: str, log_tail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


@dataclass(frozen=True)
class ServerHandle:
    """A running server: where to send requests and which request extensions it accepts."""

    base_url: str
    model: str
    extensions: frozenset[str]
    metrics_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    secret: str | None = field(default=None, repr=False)
    cache_reset_url: str | None = None  # POST here empties the prefix cache

    def redact(self, text: str) -> str:
        """Text safe to store: the API key, if any, replaced."""
        return text.replace(self.secret, "***") if self.secret else text


class Engine(ABC):
    """Start a server, hand out its ServerHandle, stop it. Use as a context manager."""

    kind: str
    log_path: Path

    @abstractmethod
    def start(self) -> ServerHandle: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    def describe(self) -> str:
        """One line for the plan: what will be started or used."""

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
