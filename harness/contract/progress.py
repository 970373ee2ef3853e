"""What a run reports as it goes: typed events that the runner emits and the command line
renders (harness/commands/progress.py), the same locally and from a cluster's cell tasks,
which send them back to the driver. Nothing below harness/commands/ formats them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from harness.contract.fidelity import FidelityRecord
from harness.contract.results import CapacityRecord, PointResult


@dataclass(frozen=True)
class CellStarting:
    cell: str
    engine: str  # the engine's kind
    log: str  # where its server log goes


@dataclass(frozen=True)
class CellOnNode:
    """A cluster task took the cell on this node."""

    cell: str
    hostname: str
    address: str
    node_id: str
    attempt: int  # 0 for the first


@dataclass(frozen=True)
class CellReady:
    cell: str
    seconds: float  # from start to ready


@dataclass(frozen=True)
class CellAlreadyDone:
    """Every point of the cell was measured before (a resumed run)."""

    cell: str
    points: int


@dataclass(frozen=True)
class PointsSkipped:
    """Points that need no measuring: stored already, or left by a search or a failed cell."""

    cell: str
    count: int


@dataclass(frozen=True)
class PointStarted:
    cell: str
    point: str
    requests: int | None  # what the point sends, where it is a count


@dataclass(frozen=True)
class RequestsDone:
    cell: str
    count: int = 1


@dataclass(frozen=True)
class PointFinished:
    result: PointResult


@dataclass(frozen=True)
class WarmupFailed:
    cell: str
    failed: int
    sent: int
    first_error: str


@dataclass(frozen=True)
class FidelityMeasured:
    cell: str
    record: FidelityRecord


@dataclass(frozen=True)
class CapacitySearched:
    """A cell's capacity search ended (`record.meets_slo`: a rate met the SLO)."""

    cell: str
    record: CapacityRecord
    lowest_rate: float


@dataclass(frozen=True)
class NoCapacitySearch:
    cell: str
    reason: str


@dataclass(frozen=True)
class CellFailed:
    cell: str
    reason: str
    log_line: str  # the last line of the server's log


@dataclass(frozen=True)
class CellRetried:
    """A cluster task or its node was lost; the cell runs again."""

    cell: str
    why: str
    attempt: int
    retries: int


@dataclass(frozen=True)
class Notice:
    """Anything else worth a line."""

    text: str
    level: Literal["info", "warning"] = "info"


Event = (CellStarting | CellOnNode | CellReady | CellAlreadyDone | PointsSkipped
         | PointStarted | RequestsDone | PointFinished | WarmupFailed | FidelityMeasured
         | CapacitySearched | NoCapacitySearch | CellFailed | CellRetried | Notice)
Emit = Callable[[Event], None]
