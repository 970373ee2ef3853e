"""Run a plan: for each cell start the engine, warm it up, measure its points (and search
its capacity at the SLO), stop it.

Engines are always stopped (context manager), finished points are written as soon as they
are measured, and a cell whose server fails is recorded with its log tail while the run goes on.
What happens is reported as typed events (harness/contract/progress.py); the command line
renders them.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

from harness.config import ExperimentConfig
from harness.contract.manifest import CellTelemetry
from harness.contract.plan import Cell, PhaseSpec, Point, rate_point, repeated
from harness.contract.progress import (
    CapacitySearched,
    CellAlreadyDone,
    CellFailed,
    CellReady,
    CellStarting,
    Emit,
    FidelityMeasured,
    NoCapacitySearch,
    Notice,
    PointFinished,
    PointsSkipped,
    PointStarted,
    RequestsDone,
    WarmupFailed,
)
from harness.contract.results import (
    CapacityRecord,
    CapacityRepeat,
    CellFailure,
    PointRef,
    PointResult,
)
from harness.engines.base import Engine, EngineError
from harness.engines.cores import CoreSplit, pinned
from harness.engines.models import resolve_model
from harness.engines.process import ProcessEngine
from harness.engines.registry import make_engine
from harness.load.generator import run_point
from harness.load.loop import run_fast
from harness.load.prompt_source import PromptsError, PromptSource
from harness.run.capacity_search import SearchStep, capacity_record, rounded, search
from harness.run.fidelity_pass import FidelityPass
from harness.run.point_measurer import CellContext, PointMeasurer
from harness.store.run_store import RunStore, now_iso
from harness.telemetry.gpus import TelemetryError, visible_devices
from harness.telemetry.monitor import EnergyMonitor


@dataclass
class RunOutcome:
    measured: int = 0
    skipped: int = 0
    failed_cells: dict[str, str] = field(default_factory=dict)


def open_energy_monitor(config: ExperimentConfig, cell: Cell, **options) -> EnergyMonitor:
    """NVML for exactly the GPUs that serve this cell (none known for a remote server), and
    RAPL for the CPU packages. The GPUs: engine.gpus, else engine.env's CUDA_VISIBLE_DEVICES,
    else the harness's own; the first `cell.gpus` of them. `options` go to
    EnergyMonitor.open."""
    engine = config.engine
    if not engine.local and engine.gpus is None:
        return EnergyMonitor.without_gpus("external server: set engine.gpus to measure local "
                                          "GPUs")
    devices = visible_devices(engine.gpus, getattr(engine, "env", {}), os.environ)
    return EnergyMonitor.open(devices.visible, cell.gpus, order=devices.order,
                              **{"sample_hz": config.telemetry.sample_hz, **options})


def cell_telemetry(energy: EnergyMonitor, cores: CoreSplit | None = None) -> CellTelemetry:
    return CellTelemetry(
        cores=cores.describe() if cores is not None else None,
        gpus=energy.static_facts(),
        gpu_energy=gpu_energy_status(energy),
        cpu_energy="measured (RAPL package counters)" if energy.cpu_reason is None
        else f"not measured: {energy.cpu_reason}",
        sources=energy.sources, warnings=energy.warnings)


def gpu_energy_status(energy: EnergyMonitor) -> str:
    """How the cell's GPU energy was measured, in words, as far as its windows tell."""
    if energy.gpu_reason is not None:
        return f"not measured: {energy.gpu_reason}"
    failures, windows = energy.gpu_failures, energy.gpu_windows
    if failures and len(failures) == windows:
        return f"not measured: {failures[0]}"
    if failures:
        return (f"measured (NVML energy counter) in {windows - len(failures)} of {windows} "
                f"windows; not in the others: {failures[0]}")
    return "measured (NVML energy counter)"


def tokenizer_for(config: ExperimentConfig, cell: Cell) -> str:
    """The tokenizer the cell's prompts are built with: the config's, or the model's (a dummy
    shape's directory, its config and tokenizer files written if missing, never weights)."""
    return config.tokenizer or resolve_model(cell.model)[0]


class Runner:
    def __init__(self, config: ExperimentConfig, run_name: str, store: RunStore, emit: Emit):
        self.config = config
        self.run_name = run_name
        self.store = store
        self.emit = emit
        self.outcome = RunOutcome()
        self.measurer = PointMeasurer(config, run_name, store)
        self.fidelity = FidelityPass(config, run_name, store)

    def run(self, plan: list[Cell]) -> RunOutcome:
        for cell in plan:
            todo = [p for p in cell.points if not self.store.point_done(cell.id, p.id)]
            skipped = len(cell.points) - len(todo)
            self.outcome.skipped += skipped
            self.skip(cell, skipped)
            search = self.config.capacity_search
            searching = search is not None and self.store.read_capacity(cell.id) is None
            if not todo and not searching:
                self.emit(CellAlreadyDone(cell.id, skipped))
                if search is not None:
                    self.skip(cell, search.steps)
                continue
            self.run_cell(cell, todo)
        return self.outcome

    def skip(self, cell: Cell, count: int) -> None:
        if count > 0:
            self.emit(PointsSkipped(cell.id, count))

    def run_cell(self, cell: Cell, todo: list[Point]) -> None:
        engine = make_engine(self.config, cell, self.store.server_log(cell.id))
        self.emit(CellStarting(cell.id, engine.kind, str(self.store.server_log(cell.id))))
        remaining = list(todo)
        config = self.config.for_workload(cell.workload)  # the cell's named workload, if any
        self.measurer = PointMeasurer(config, self.run_name, self.store)
        try:
            with contextlib.ExitStack() as stack, engine, \
                    open_energy_monitor(self.config, cell) as energy:
                if isinstance(engine, ProcessEngine) and energy.gpus:
                    engine.use_gpus([gpu.uuid for gpu in energy.gpus])  # what is measured
                self.warn(cell, energy)
                began = time.monotonic()
                server = engine.start()
                self.emit(CellReady(cell.id, time.monotonic() - began))
                self.check_placement(cell, engine, energy)
                cores = engine.client_cores()
                stack.enter_context(pinned(cores.client if cores else None))
                self.store.record_telemetry(cell.id, cell_telemetry(energy, cores))
                prompts = PromptSource(config, cell, server.extensions, self.run_name,
                                       tokenizer_for(self.config, cell))
                self.warm_up(cell, server, prompts)
                if self.fidelity.needed(cell):  # once per variant, on its first cell
                    self.emit(FidelityMeasured(cell.id, self.fidelity.run(cell, server,
                                                                          prompts.vocab)))
                idle = energy.idle_baseline(self.config.telemetry.idle_baseline_s)
                self.warn(cell, energy)
                ctx = CellContext(cell, engine, server, prompts.workload, energy, idle,
                                  self.reset_cache(engine))
                while remaining:
                    self.measure(ctx, remaining[0])
                    remaining.pop(0)
                if self.config.capacity_search is not None:
                    self.search_capacity(ctx)
                # again, with what the windows found (counters lost, calls that served)
                self.store.record_telemetry(cell.id, cell_telemetry(energy, cores))
            self.store.clear_failure(cell.id)
        except EngineError as err:
            self.fail(cell, remaining, err.reason, err.log_tail)
        except PromptsError as err:
            self.fail(cell, remaining, str(err), engine.log_tail())
        except TelemetryError as err:  # GPUs this cell cannot be measured on (too few, MIG)
            self.fail(cell, remaining, f"engine.gpus / CUDA_VISIBLE_DEVICES: {err}", "")

    def measure(self, ctx: CellContext, point: Point) -> PointResult:
        cell = ctx.cell.id
        self.emit(PointStarted(cell, point.id, point.requests))
        result = self.measurer.measure(ctx, point, lambda: self.emit(RequestsDone(cell)))
        ctx.prefix_cache = self.reset_cache(ctx.engine)  # for the next point
        self.outcome.measured += 1
        self.emit(PointFinished(result))
        self.warn(ctx.cell, ctx.energy)
        return result

    def warn(self, cell: Cell, energy: EnergyMonitor) -> None:
        """Say what went wrong with the cell's energy since the last look (the point or cell
        records it too): energy must never be lost without a word."""
        for text in energy.take_warnings():
            self.emit(Notice(f"{cell.id}: {text}", "warning"))

    def check_placement(self, cell: Cell, engine: Engine, energy: EnergyMonitor) -> None:
        """The server's processes compute on exactly the measured GPUs, or the cell fails
        saying where; only for a server the harness started (its process group is known)."""
        if not isinstance(engine, ProcessEngine):
            return
        placement = energy.placement(engine.server_pids())
        if placement.problem:
            raise EngineError(placement.problem, engine.log_tail())
        if placement.unchecked:
            self.emit(Notice(f"{cell.id}: {placement.unchecked}", "warning"))

    def reset_cache(self, engine: Engine) -> str:
        """Empty the prefix cache after the warmup and after each point (as vLLM's sweep
        does), so what ran before cannot flatter the next point, unless the workload studies
        caching; how the next point finds the cache, in words."""
        if self.measurer.config.workload.studies_caching:
            return "kept (the workload studies caching)"
        return engine.reset_prefix_cache()

    def warm_up(self, cell: Cell, server, prompts: PromptSource) -> None:
        n = self.config.load.warmup_requests
        if n == 0:
            return
        point = Point("warmup", "closed", (PhaseSpec("warmup", None, n,
                                                     min(cell.max_num_seqs or n, n), None),))
        load = run_fast(run_point(server, point, prompts.workload("warmup"),
                                  seed=self.config.seed, salt=0,
                                  timeout_s=self.config.load.request_timeout_s,
                                  retry=self.config.load.retry))
        errors = [r for r in load.records if not r.ok]
        if errors:
            self.emit(WarmupFailed(cell.id, len(errors), len(load.records), errors[0].error))

    def search_capacity(self, ctx: CellContext) -> None:
        """Bisection on the open-loop rate for the highest load that meets every SLO."""
        cap, cell = self.config.capacity_search, ctx.cell
        results: dict[str, PointResult] = {}
        rates = self.search_rates(cell)
        if rates is None:
            self.skip(cell, cap.steps)
            self.emit(NoCapacitySearch(cell.id, "no point measured a rate to derive its "
                                                "range from (set capacity.max_rate)"))
            return

        def measure(rate: float) -> SearchStep:
            result = self.measured(ctx, self.search_point(rate))
            results[result.point] = result
            return SearchStep(rate, result.point, result.slo.meets, result.slo.violations)

        top = rates[1] * cap.grow_to
        found = search(measure, *rates, cap.steps, top, self.give_up)
        self.skip(cell, cap.steps - len(found.steps))
        record = capacity_record(found, results, self.config.slo, rounded(top))
        record.repeats = self.repeat_capacity(ctx, record)
        self.store.save_capacity(cell.id, record)
        self.emit(CapacitySearched(cell.id, record, rates[0]))

    def search_rates(self, cell: Cell) -> tuple[float, float] | None:
        """The search's (min, max) req/s: as configured, or derived from the cell's points."""
        return self.config.capacity_search.rates(self.best_rate(cell))

    def give_up(self, step: SearchStep) -> bool:
        """Whether the search can stop after this step (never, in a sweep)."""
        return False

    def search_point(self, rate: float) -> Point:
        cap = self.config.capacity_search
        return rate_point(rate, self.config.load, kind="search", duration_s=cap.duration_s,
                          arrival=cap.arrival)

    def measured(self, ctx: CellContext, point: Point) -> PointResult:
        """The point as stored, or measured now."""
        result = self.store.read_point(ctx.cell.id, point.id)
        if result is None:
            return self.measure(ctx, point)
        self.skip(ctx.cell, 1)
        return result

    def repeat_capacity(self, ctx: CellContext, record: CapacityRecord) -> list[CapacityRepeat]:
        """The capacity's rate and the bracket's measured capacity.repeats times in all (the
        search's own measurement the first): their spread is the run-to-run noise."""
        rates = [rate for rate in (record.rate_rps, record.bracket_rate_rps) if rate is not None]
        found = []
        for rate in rates:
            for point in repeated(self.search_point(rate), self.config.capacity_search.repeats)[1:]:
                result = self.measured(ctx, point)
                found.append(CapacityRepeat(
                    rate_rps=rate, point=result.point, meets_slo=result.slo.meets,
                    output_throughput=result.metrics.output_throughput,
                    total_token_throughput=result.metrics.total_token_throughput))
        return found

    def best_rate(self, cell: Cell) -> float | None:
        """The highest request rate any of the cell's own points measured (req/s)."""
        measured = [self.store.read_point(cell.id, p.id) for p in cell.points]
        rates = [r.metrics.request_throughput for r in measured if r is not None]
        return max(rates, default=None)

    def fail(self, cell: Cell, remaining: list[Point], reason: str, tail: str) -> None:
        self.outcome.failed_cells[cell.id] = reason
        self.store.record_failure(CellFailure(
            cell=cell.id, variant=cell.variant, max_num_seqs=cell.max_num_seqs,
            tensor_parallel_size=cell.tensor_parallel_size, reason=reason, log_tail=tail,
            points=[PointRef(id=p.id, kind=p.kind, concurrency=p.concurrency, rate=p.rate)
                    for p in remaining], failed_at=now_iso()))
        self.skip(cell, len(remaining))
        self.emit(CellFailed(cell.id, reason, tail.splitlines()[-1] if tail else ""))
