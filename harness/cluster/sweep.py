"""The driver of a cluster sweep: one Ray task per cell that has work left, as many in
flight as the cluster's GPUs (or executor.max_in_flight) allow, their progress shown as it
comes, a cell whose task or node is lost retried (bounded), Ctrl-C cancelling every task.

Everything a cell writes lands in the driver's results directory through the ResultSink, so
the directory has the shape of a local run's and resume works the same way."""

from __future__ import annotations

import os
from collections import deque
from types import ModuleType
from typing import Any, Protocol

from harness.cluster.sink import ResultSink
from harness.cluster.task import CellReport, run_cell
from harness.config import ExperimentConfig
from harness.config.executor import RayExecutor
from harness.contract.placement import ClusterView
from harness.contract.plan import Cell
from harness.contract.progress import (
    CellAlreadyDone,
    CellRetried,
    Event,
    PointFinished,
    PointsSkipped,
)
from harness.run.runner import Runner, RunOutcome
from harness.store.run_store import RunStore

POLL_S = 0.5
CANCEL_GRACE_S = 40.0  # the engine's own stop takes up to 20 s, then the guard's
TAIL_LINES = 40


class CellsDisplay(Protocol):
    """The driver's display: it shows every event the cells send; the sweep's bar moves only
    by `advance`, which the driver calls once per point it counts."""

    def __call__(self, event: Event) -> None: ...
    def advance(self, count: int) -> None: ...
    def cell_stopped(self, cell: str) -> None: ...


class ClusterSweep:
    def __init__(self, ray: ModuleType, config: ExperimentConfig, run_name: str,
                 store: RunStore, display: CellsDisplay, view: ClusterView):
        self.ray, self.config, self.run_name = ray, config, run_name
        self.store, self.display, self.view = store, display, view
        self.executor: RayExecutor = config.executor
        # the local runner's bookkeeping: the same failed.json, counts and messages
        self.local = Runner(config, run_name, store, self.local_event)
        self.outcome: RunOutcome = self.local.outcome
        self.credited: dict[str, int] = {}  # points of a cell already counted on the bar
        self.progressed: dict[tuple[str, int], int] = {}  # the same per attempt
        self.measured_in: dict[tuple[str, int], int] = {}  # points measured, per attempt

    # --- the sweep ---------------------------------------------------------------------

    def run(self, plan: list[Cell]) -> RunOutcome:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = self.ray.get_runtime_context().get_node_id()
        self.sink = self.ray.remote(ResultSink).options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
            max_restarts=-1, max_task_retries=-1,  # it only writes files: a restart loses none
        ).remote(str(self.store.root.resolve()))
        self.task = self.ray.remote(run_cell)
        waiting = deque(cell for cell in plan if self.has_work(cell))
        pending: dict[Any, tuple[Cell, int]] = {}
        try:
            while waiting or pending:
                while waiting and len(pending) < (self.executor.max_in_flight or len(plan)):
                    cell = waiting.popleft()
                    if self.schedulable(cell):
                        pending[self.submit(cell, 0)] = (cell, 0)
                ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                self.replay()
                for ref in ready:
                    cell, attempt = pending.pop(ref)
                    retry = self.collect(ref, cell, attempt)
                    if retry is not None:
                        pending[self.submit(cell, retry)] = (cell, retry)
            self.replay()
        except KeyboardInterrupt:
            self.cancel(list(pending))
            raise
        return self.outcome

    def has_work(self, cell: Cell) -> bool:
        """As the local runner decides: points not finished, or a capacity search not done."""
        todo = [p for p in cell.points if not self.store.point_done(cell.id, p.id)]
        searching = self.config.capacity is not None and \
            self.store.read_capacity(cell.id) is None
        if todo or searching:
            return True
        skipped = len(cell.points) + (self.config.capacity.steps if self.config.capacity else 0)
        self.outcome.skipped += len(cell.points)
        self.display.advance(skipped)
        self.display(CellAlreadyDone(cell.id, len(cell.points)))
        return False

    def submit(self, cell: Cell, attempt: int) -> Any:
        options: dict[str, Any] = {"num_gpus": cell.gpus, "num_cpus": 1,
                                   "max_retries": 0}
        if self.executor.gpu_type:
            options["accelerator_type"] = self.executor.gpu_type
        return self.task.options(**options, name=f"harness-{cell.id}").remote(
            self.config, self.run_name, cell, self.sink, attempt, os.getcwd())

    def schedulable(self, cell: Cell) -> bool:
        """A cell no live node can hold is failed as unschedulable; the rest run."""
        gpu_type, need = self.executor.gpu_type, cell.gpus
        largest = max((node.get("Resources", {}).get("GPU", 0.0) for node in self.ray.nodes()
                       if node.get("Alive") and (gpu_type is None or node.get(
                           "Resources", {}).get(f"accelerator_type:{gpu_type}"))), default=0)
        if largest >= need:
            return True
        kind = f" of type {gpu_type}" if gpu_type else ""
        self.fail(cell, f"unschedulable: needs {need} GPU(s){kind} on one node; the largest "
                        f"live node{kind} has {largest:g}", "")
        return False

    def collect(self, ref: Any, cell: Cell, attempt: int) -> int | None:
        """Take a finished task's report; the next attempt's number when it is to be retried."""
        exceptions = self.ray.exceptions
        try:
            report: CellReport = self.ray.get(ref)
        except exceptions.RayTaskError as err:  # the task itself raised: not retried
            self.fail(cell, f"the cell's task failed: {last_line(err)}", self.log_tail(cell))
            return None
        except exceptions.RayError as err:  # the worker or its node was lost
            self.replay()
            self.display.cell_stopped(cell.id)
            why = f"{type(err).__name__}: {first_sentence(err)}"
            if attempt < self.executor.max_retries and self.schedulable(cell):
                self.display(CellRetried(cell.id, why, attempt + 1, self.executor.max_retries))
                return attempt + 1
            if attempt >= self.executor.max_retries:
                self.fail(cell, f"its task was lost {attempt + 1} time(s), last: {why}",
                          self.log_tail(cell))
            return None
        self.replay()
        earlier = sum(n for (name, tried), n in self.measured_in.items()
                      if name == cell.id and tried < attempt)
        self.outcome.skipped += max(0, report.skipped - earlier)  # kept from this run: measured
        if report.failure is not None:
            self.outcome.failed_cells[cell.id] = report.failure
        return None

    def fail(self, cell: Cell, reason: str, tail: str) -> None:
        remaining = [p for p in cell.points if not self.store.point_done(cell.id, p.id)]
        self.local.fail(cell, remaining, reason, tail)

    def log_tail(self, cell: Cell) -> str:
        try:
            text = self.store.server_log(cell.id).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-TAIL_LINES:])

    def cancel(self, refs: list[Any]) -> None:
        """Interrupt every task (its engine stops as on Ctrl-C locally), then kill what is
        left: the guard on each node stops a server whose task died."""
        for ref in refs:
            self.ray.cancel(ref)
        _, left = self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        for ref in left:
            self.ray.cancel(ref, force=True)
        if left:
            self.ray.wait(left, num_returns=len(left), timeout=10)
        self.replay()

    # --- progress ----------------------------------------------------------------------

    def local_event(self, event: Event) -> None:
        """An event of the driver's own bookkeeping (a cell failed before or without its
        task): its skipped points move the bar at once."""
        if isinstance(event, PointsSkipped):
            self.display.advance(event.count)
        else:
            self.display(event)

    def replay(self) -> None:
        """Show what the tasks reported since the last look."""
        for cell, attempt, event in self.ray.get(self.sink.drain.remote()):
            if isinstance(event, PointsSkipped):
                self.advance(cell, attempt, event.count)
                continue
            self.display(event)
            if isinstance(event, PointFinished):
                self.outcome.measured += 1
                key = (cell, attempt)
                self.measured_in[key] = self.measured_in.get(key, 0) + 1
                self.advance(cell, attempt, 1)

    def advance(self, cell: str, attempt: int, count: int) -> None:
        """Move the sweep's bar; a retried cell's skipped points were counted already."""
        done = self.progressed.get((cell, attempt), 0) + count
        self.progressed[(cell, attempt)] = done
        credited = self.credited.get(cell, 0)
        if done > credited:
            self.display.advance(done - credited)
            self.credited[cell] = done


def last_line(err: BaseException) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(err).__name__


def first_sentence(err: BaseException) -> str:
    """'Task failed because the node it was running on is dead or unavailable' of Ray's
    paragraph."""
    return last_line(err).split(". ")[0].rstrip(".")
