"""What every engine is: start a server, hand out its ServerHandle (harness/contract/server.py),
stop it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from harness.config import ExperimentConfig
from harness.contract.plan import Cell
from harness.contract.server import ServerHandle
from harness.engines.cores import CoreSplit


class EngineError(Exception):
    """The server could not be started or died; `log_tail` holds its last log lines."""

    def __init__(self, reason: str, log_tail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


class Engine(ABC):
    """Start a server, hand out its ServerHandle, stop it. Use as a context manager.

    Each kind is built for a cell from the config (`for_cell`) and says what its interpreter
    must have installed (`requires`, `distributions`: the package whose version run.json
    records); harness/engines/registry.py lists the kinds."""

    kind: str
    log_path: Path
    requires: tuple[str, ...] = ()  # modules the engine's interpreter must be able to import
    distributions: tuple[str, ...] = ()  # the engine's package, under any of these names
    install_hint: str = ""

    @classmethod
    @abstractmethod
    def for_cell(cls, config: ExperimentConfig, cell: Cell, log_path: Path,
                 create: bool = True) -> Engine:
        """The engine for one cell (create=False writes nothing: for --dry-run)."""

    @abstractmethod
    def start(self) -> ServerHandle: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    def describe(self) -> str:
        """One line for the plan: what will be started or used."""

    def client_cores(self) -> CoreSplit | None:
        """Where the engine computes on the CPU: the cores its threads are bound to and the
        ones the client should keep to (None: no split, the client runs anywhere)."""
        return None

    def reset_prefix_cache(self) -> str:
        """Empty the server's prefix cache; what happened, in words ("reset", or "not reset"
        and why), as a point stores it."""
        return "not reset (the engine offers no reset)"

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
