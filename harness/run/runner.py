"""Run a plan: for each cell start the engine, warm it up, measure its points (and search
its capacity at the SLO), stop it.

Engines are always stopped (context manager), finished points are written as soon as they
are measured, and a cell whose server fails is recorded with its log tail while the run goes on.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Protocol

from harness.config import ExperimentConfig
from harness.config.trace import read_trace
from harness.contract.manifest import CellTelemetry
from harness.contract.plan import Cell, PhaseSpec, Point, rate_point
from harness.contract.results import CellFailure, PointRef, PointResult
from harness.contract.server import TOKEN_IDS
from harness.engines.base import EngineError
from harness.engines.models import resolve_model
from harness.engines.registry import make_engine
from harness.load.file_prompts import FilePromptRequests
from harness.load.generator import RequestSource, run_point
from harness.load.loop import run_fast
from harness.load.prompts import TextCodec, allowed_token_ids, load_tokenizer, salt_of
from harness.load.trace import TraceRequests
from harness.load.workload import Workload
from harness.run.capacity_search import SearchStep, capacity_record, search
from harness.run.fidelity_pass import FidelityPass
from harness.run.point_measurer import CellContext, PointMeasurer
from harness.store.run_store import RunStore, now_iso
from harness.telemetry.monitor import EnergyMonitor


class Progress(Protocol):
    """What a run reports as it goes (the command line shows it)."""

    def say(self, message: str) -> None: ...
    def points_skipped(self, count: int) -> None: ...
    def point_started(self, label: str, total: int | None) -> None: ...
    def request_done(self) -> None: ...
    def point_finished(self, result: PointResult) -> None: ...


@dataclass
class RunOutcome:
    measured: int = 0
    skipped: int = 0
    failed_cells: dict[str, str] = field(default_factory=dict)


def open_energy_monitor(config: ExperimentConfig, cell: Cell) -> EnergyMonitor:
    """NVML for exactly the GPUs that serve this cell (none known for a remote server), and
    RAPL for the CPU packages."""
    visible = config.engine.gpus
    if not config.engine.local and visible is None:
        return EnergyMonitor.without_gpus("external server: set engine.gpus to measure local "
                                          "GPUs")
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return EnergyMonitor.open(visible, cell.tensor_parallel_size,
                              sample_hz=config.telemetry.sample_hz)


def cell_telemetry(energy: EnergyMonitor) -> CellTelemetry:
    return CellTelemetry(
        gpus=energy.static_facts(),
        gpu_energy="measured (NVML energy counter)" if energy.gpu_reason is None
        else f"not measured: {energy.gpu_reason}",
        cpu_energy="measured (RAPL package counters)" if energy.cpu_reason is None
        else f"not measured: {energy.cpu_reason}")


class Runner:
    def __init__(self, config: ExperimentConfig, run_name: str, store: RunStore,
                 display: Progress):
        self.config = config
        self.run_name = run_name
        self.store = store
        self.display = display
        self.outcome = RunOutcome()
        self.measurer = PointMeasurer(config, run_name, store)
        self.fidelity = FidelityPass(config, run_name, store, display.say)

    def run(self, plan: list[Cell]) -> RunOutcome:
        for cell in plan:
            todo = [p for p in cell.points if not self.store.point_done(cell.id, p.id)]
            skipped = len(cell.points) - len(todo)
            self.outcome.skipped += skipped
            self.display.points_skipped(skipped)
            search = self.config.capacity_search
            searching = search is not None and self.store.read_capacity(cell.id) is None
            if not todo and not searching:
                self.display.say(f"[dim]{cell.id}: all {skipped} points already measured[/dim]")
                if search is not None:
                    self.display.points_skipped(search.steps)
                continue
            self.run_cell(cell, todo)
        return self.outcome

    def run_cell(self, cell: Cell, todo: list[Point]) -> None:
        engine = make_engine(self.config, cell, self.store.server_log(cell.id))
        self.display.say(f"[bold]{cell.id}[/bold]: starting {engine.kind} "
                         f"(log {self.store.server_log(cell.id)})")
        remaining = list(todo)
        try:
            with engine, open_energy_monitor(self.config, cell) as energy:
                began = time.monotonic()
                server = engine.start()
                self.display.say(f"{cell.id}: ready in {time.monotonic() - began:.0f} s")
                self.store.record_telemetry(cell.id, cell_telemetry(energy))
                prompts = PromptSource(self.config, cell, server.extensions, self.run_name)
                self.warm_up(cell, server, prompts)
                if self.fidelity.needed(cell):  # once per variant, on its first cell
                    self.fidelity.run(cell, server, prompts.vocab)
                idle = energy.idle_baseline(self.config.telemetry.idle_baseline_s)
                ctx = CellContext(cell, engine, server, prompts.workload, energy, idle)
                while remaining:
                    self.measure(ctx, remaining[0])
                    remaining.pop(0)
                if self.config.capacity_search is not None:
                    self.search_capacity(ctx)
            self.store.clear_failure(cell.id)
        except EngineError as err:
            self.fail(cell, remaining, err.reason, err.log_tail)

    def measure(self, ctx: CellContext, point: Point) -> PointResult:
        self.display.point_started(f"{ctx.cell.id} {point.id}", point.requests)
        result = self.measurer.measure(ctx, point, self.display.request_done)
        self.outcome.measured += 1
        self.display.point_finished(result)
        return result

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
            self.display.say(f"[yellow]{cell.id}: {len(errors)} of {len(load.records)} warmup "
                             f"requests failed: {errors[0].error}[/yellow]")

    def search_capacity(self, ctx: CellContext) -> None:
        """Bisection on the open-loop rate for the highest load that meets every SLO."""
        cap, cell = self.config.capacity_search, ctx.cell
        results: dict[str, PointResult] = {}
        rates = cap.rates(self.best_rate(cell))
        if rates is None:
            self.display.points_skipped(cap.steps)
            self.display.say(f"[yellow]{cell.id}: no capacity search: no point measured a rate "
                             "to derive its range from (set capacity.max_rate)[/yellow]")
            return

        def measure(rate: float) -> SearchStep:
            point = rate_point(rate, self.config.load, kind="search", duration_s=cap.duration_s,
                               arrival=cap.arrival)
            result = self.store.read_point(cell.id, point.id)
            if result is None:
                result = self.measure(ctx, point)
            else:
                self.display.points_skipped(1)
            results[point.id] = result
            return SearchStep(rate, point.id, result.slo.meets, result.slo.violations)

        found = search(measure, *rates, cap.steps)
        self.display.points_skipped(cap.steps - len(found.steps))
        record = capacity_record(found, results, self.config.slo)
        self.store.save_capacity(cell.id, record)
        if record.meets_slo:
            bound = " (the top of the searched range)" if record.at_upper_bound else ""
            self.display.say(f"[green]{cell.id}: capacity at SLO {record.rate_rps:g} req/s"
                             f"{bound}, {record.output_throughput:,.1f} out tok/s[/green]")
        else:
            self.display.say(f"[yellow]{cell.id}: no searched rate meets the SLO "
                             f"(lowest {rates[0]:.3g} req/s)[/yellow]")

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
        self.display.points_skipped(len(remaining))
        last = tail.splitlines()[-1] if tail else ""
        self.display.say(f"[red]{cell.id}: failed: {reason}[/red]\n  [dim]{last}[/dim]")


class PromptSource:
    """The cell's tokenizer, read once; the requests of each stream (a point, the warmup):
    generated prompts, a prompts file, or the trace replay, as text or as token ids
    (workload.prompt; text where the server takes no ids)."""

    def __init__(self, config: ExperimentConfig, cell: Cell, extensions: frozenset[str],
                 run_name: str):
        # a dummy shape: its config and tokenizer files (written if missing), never weights
        tokenizer = config.tokenizer or resolve_model(cell.model)[0]
        wants_ids = config.workload.prompt == "token_ids"
        if wants_ids and TOKEN_IDS not in extensions:
            raise EngineError(f"the {config.engine.kind} server takes no token-id prompts: "
                              "set workload.prompt: text")
        try:
            self.vocab = allowed_token_ids(tokenizer)
            self.text = None if wants_ids else TextCodec.load(tokenizer)
            self.tokenizer = load_tokenizer(tokenizer)
        except (OSError, ValueError) as err:
            raise EngineError(f"cannot load tokenizer {tokenizer!r} to build prompts "
                              f"(set `tokenizer:` to an HF id or local path): "
                              f"{str(err).splitlines()[0]}") from None
        self.config, self.cell, self.run_name = config, cell, run_name

    def workload(self, stream: str, trace: bool = False) -> RequestSource:
        """The requests of `stream`; with `trace`, its replay of load.trace."""
        salt = salt_of(self.run_name, self.cell.id, stream)
        base = Workload(self.config.workload, self.vocab, self.text, self.config.seed, salt,
                        salt_of(self.run_name, self.cell.id, "shared-prefix"))
        if trace:
            config = self.config.load.trace
            replay = read_trace(config, self.config.max_model_len)
            return TraceRequests(replay, base, config.block_tokens)
        if self.config.workload.prompts is not None:
            try:
                return FilePromptRequests(self.config.workload, self.tokenizer,
                                          self.text is None, self.config.seed, salt,
                                          self.config.max_model_len)
            except ValueError as err:
                raise EngineError(str(err)) from None
        return base
