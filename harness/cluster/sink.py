"""The driver's end of a cluster sweep: a Ray actor on the driver's node that writes what
cell tasks send into the results directory (atomically, in the order sent) and keeps their
progress events until the driver reads them."""

from __future__ import annotations

from pathlib import Path

from harness.contract.manifest import CellTelemetry
from harness.contract.progress import Event
from harness.store.run_store import RunStore, write_atomic


class ResultSink:
    """Run as a Ray actor (`ray.remote(ResultSink)`); every path is relative to the run."""

    def __init__(self, root: str):
        self.store = RunStore(Path(root))
        self.events: list[tuple[str, int, Event]] = []

    def _path(self, relative: str) -> Path:
        path = (self.store.root / relative).resolve()
        cells = (self.store.root / "cells").resolve()
        if cells not in path.parents:
            raise ValueError(f"{relative}: not a file of a cell")
        return path

    def stored(self, cell: str) -> dict[str, bytes]:
        """What a cell already has here (finished points, capacity, its server log), for a
        task that resumes it: paths relative to the run."""
        root, cell_dir = self.store.root, self.store.cell_dir(cell)
        found = [*cell_dir.glob("points/*.json"), self.store.capacity_json(cell),
                 self.store.server_log(cell)]
        return {str(path.relative_to(root)): path.read_bytes() for path in found
                if path.is_file()}

    def write(self, relative: str, data: bytes) -> None:
        write_atomic(self._path(relative), data)

    def remove(self, relative: str) -> None:
        self._path(relative).unlink(missing_ok=True)

    def record_telemetry(self, cell: str, telemetry: CellTelemetry) -> None:
        self.store.record_telemetry(cell, telemetry)

    def event(self, cell: str, attempt: int, event: Event) -> None:
        self.events.append((cell, attempt, event))

    def drain(self) -> list[tuple[str, int, Event]]:
        events, self.events = self.events, []
        return events
