"""One cell as a Ray task: the local runner on a scratch directory of the node, each file
shipped to the driver's ResultSink as soon as it is written, progress sent as events.

A resumed or retried cell first pulls what the driver already has (finished points, the
capacity record, the server log), so the runner skips those points exactly as a local run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import ExperimentConfig
from harness.contract.manifest import CellTelemetry
from harness.contract.placement import NodeRef
from harness.contract.plan import Cell
from harness.contract.progress import CellOnNode, Event, RequestsDone
from harness.contract.results import CapacityRecord, CellFailure, PointResult
from harness.run.runner import Runner
from harness.store.run_store import RunStore

REQUESTS_FLUSH_S = 0.5


@dataclass
class CellReport:
    """What a finished task returns to the driver."""

    cell: str
    node: NodeRef
    measured: int
    skipped: int
    failure: str | None  # the reason, when the cell failed (recorded in failed.json)


def this_node() -> NodeRef:
    import ray

    return NodeRef(id=ray.get_runtime_context().get_node_id(),
                   address=ray.util.get_node_ip_address(), hostname=socket.gethostname())


class ShippingStore(RunStore):
    """A RunStore on the node's scratch directory that ships every file it writes."""

    def __init__(self, root: Path, sink: Any, node: NodeRef):
        super().__init__(root)
        self.sink, self.node = sink, node

    def ship(self, path: Path, wait: bool = False) -> None:
        """Send the file to the driver; with `wait`, return once it (and everything sent
        before it) is written there."""
        if path.is_file():
            sent = self.sink.write.remote(str(path.relative_to(self.root)), path.read_bytes())
            if wait:
                import ray

                ray.get(sent)

    def pull(self, cell: str) -> None:
        import ray

        for relative, data in ray.get(self.sink.stored.remote(cell)).items():
            (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.root / relative).write_bytes(data)

    def save_point(self, result: PointResult, requests: pd.DataFrame | Path,
                   telemetry: pd.DataFrame | None = None) -> None:
        result = result.model_copy(update={"node": self.node})
        super().save_point(result, requests, telemetry)
        cell, point = result.cell, result.point
        for path in (self.requests_parquet(cell, point), self.telemetry_parquet(cell, point),
                     self.point_json(cell, point), self.checksums(cell, point),
                     self.server_log(cell)):
            self.ship(path)  # the JSON after the parquet files: it marks the point finished;
            # its checksums after it, as a local save writes them last

    def save_capacity(self, cell: str, record: CapacityRecord) -> None:
        super().save_capacity(cell, record)
        self.ship(self.capacity_json(cell))

    def record_failure(self, failure: CellFailure) -> None:
        super().record_failure(failure.model_copy(update={"node": self.node}))
        self.ship(self.server_log(failure.cell))
        self.ship(self.failure_json(failure.cell))

    def clear_failure(self, cell: str) -> None:
        super().clear_failure(cell)
        self.sink.remove.remote(str(self.failure_json(cell).relative_to(self.root)))

    def record_telemetry(self, cell: str, telemetry: CellTelemetry) -> None:
        self.sink.record_telemetry.remote(cell, telemetry)  # run.json is the driver's


class RemoteProgress:
    """The runner's events, sent to the driver (finished requests batched: one event per
    REQUESTS_FLUSH_S at most, and before any other event)."""

    def __init__(self, sink: Any, cell: str, attempt: int):
        self.sink, self.cell, self.attempt = sink, cell, attempt
        self.requests, self.flushed = 0, time.monotonic()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RequestsDone):
            self.requests += event.count
            if time.monotonic() - self.flushed >= REQUESTS_FLUSH_S:
                self.flush()
            return
        self.flush()
        self.sink.event.remote(self.cell, self.attempt, event)

    def flush(self) -> None:
        if self.requests:
            self.sink.event.remote(self.cell, self.attempt, RequestsDone(self.cell,
                                                                         self.requests))
        self.requests, self.flushed = 0, time.monotonic()


def run_cell(config: ExperimentConfig, run_name: str, cell: Cell, sink: Any,
             attempt: int, workdir: str) -> CellReport:
    """The body of a cell's Ray task: start, measure and stop the cell's engine here, in the
    driver's working directory where the node has it (relative paths of the config: traces,
    prompts and lengths files, as on a shared filesystem or the same image)."""
    restore = _cancellable()
    node = this_node()
    scratch = Path(tempfile.mkdtemp(prefix=f"harness-{cell.id}-"))
    store = ShippingStore(scratch, sink, node)
    here = os.getcwd()
    if Path(workdir).is_dir():
        os.chdir(workdir)
    try:
        store.pull(cell.id)
        progress = RemoteProgress(sink, cell.id, attempt)
        progress(CellOnNode(cell.id, node.hostname, node.address, node.id, attempt))
        outcome = Runner(config, run_name, store, progress).run([cell])
        progress.flush()
        return CellReport(cell.id, node, outcome.measured, outcome.skipped,
                          outcome.failed_cells.get(cell.id))
    finally:
        try:
            store.ship(store.server_log(cell.id), wait=True)  # all there when this returns
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            os.chdir(here)
            restore()


def _cancellable():
    """Let ray.cancel interrupt this task. It does so with _thread.interrupt_main, which does
    nothing while SIGINT is ignored or at its default, as in workers of a node started from a
    background job (nohup, `cmd &`, a CI runner): the cell then ran on after Ctrl-C for the
    whole cancel grace, measuring points. Returns what puts the old disposition back."""
    try:
        previous = signal.getsignal(signal.SIGINT)
        if callable(previous):
            return lambda: None
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread: nothing to change
        return lambda: None
    return lambda: signal.signal(signal.SIGINT, previous)
