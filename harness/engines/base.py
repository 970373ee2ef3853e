"""What every engine gives the load generator once it is up."""

from __future__ import annotations

from dataclasses import dataclass


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
