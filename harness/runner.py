"""Run a plan: for each cell start the engine, warm it up, measure its points (and search
its capacity at the SLO), stop it.

Engines are always stopped (context manager), finished points are written as soon as they
are measured, and a cell whose server fails is recorded with its log tail while the run goes on.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.capacity import SearchStep, capacity_record, search
from harness.config import DUMMY_PREFIX, ExperimentConfig
from harness.dummy_model import dummy_model_dir, ensure_dummy_model, ensure_dummy_weights
from harness.engines import Engine, EngineError
from harness.engines.base import TOKEN_IDS
from harness.engines.external import ExternalEngine
from harness.engines.transformers import TransformersEngine
from harness.engines.vllm import VllmEngine
from harness.load.client import run_fast
from harness.load.executor import run_point
from harness.load.prompts import TextCodec, allowed_token_ids, salt_of
from harness.load.workload import Workload
from harness.plan import Cell, PhaseSpec, Point, rate_point
from harness.point import CellContext, PointMeasurer
from harness.report.progress import RunDisplay
from harness.store import RunStore, read_json, write_json
from harness.telemetry.monitor import EnergyMonitor


@dataclass
class RunOutcome:
    measured: int = 0
    skipped: int = 0
    failed_cells: dict[str, str] = field(default_factory=dict)


def resolve_model(model: str, create: bool = True, weights: bool = False) -> tuple[str, dict]:
    """A model the engine can load, plus options it needs (dummy shapes load random weights).

    With create=False nothing is written (for --dry-run).
    """
    if model.startswith(DUMMY_PREFIX):
        shape = model[len(DUMMY_PREFIX):]
        if not create:
            return str(dummy_model_dir(shape)), {} if weights else {"load_format": "dummy"}
        if weights:
            return str(ensure_dummy_weights(shape)), {}
        return str(ensure_dummy_model(shape)), {"load_format": "dummy"}
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model, {}


def served_name(config: ExperimentConfig, model: str) -> str:
    if config.served_model_name:
        return config.served_model_name
    return model[len(DUMMY_PREFIX):] if model.startswith(DUMMY_PREFIX) else model


def make_engine(config: ExperimentConfig, cell: Cell, store: RunStore,
                create: bool = True) -> Engine:
    engine = config.engine
    log = store.server_log(cell.id)
    if engine.kind == "external":
        return ExternalEngine(engine.url, served_name(config, cell.model), log,
                              engine.api_key_env, timeout_s=engine.startup_timeout_s)
    common = dict(env=engine.env, python=engine.python,
                  startup_timeout_s=engine.startup_timeout_s, gpus=engine.gpus)
    if engine.kind == "transformers":
        model, _ = resolve_model(cell.model, create, weights=True)
        return TransformersEngine(model, cell.options, log, **common)
    model, extra = resolve_model(cell.model, create)
    options = {"generation_config": "vllm", **extra, **cell.options,
               "max_num_seqs": cell.max_num_seqs,
               "tensor_parallel_size": cell.tensor_parallel_size, "seed": config.seed}
    return VllmEngine(model, served_name(config, cell.model), options, log, **common)


def open_energy_monitor(config: ExperimentConfig, cell: Cell) -> EnergyMonitor:
    """NVML for exactly the GPUs that serve this cell (none known for a remote server), and
    RAPL for the CPU packages."""
    visible = config.engine.gpus
    if config.engine.kind == "external" and visible is None:
        return EnergyMonitor.without_gpus("external server: set engine.gpus to measure local GPUs")
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return EnergyMonitor.open(visible, cell.tensor_parallel_size,
                              sample_hz=config.telemetry.sample_hz)


class Runner:
    def __init__(self, config: ExperimentConfig, run_name: str, store: RunStore,
                 display: RunDisplay):
        self.config = config
        self.run_name = run_name
        self.store = store
        self.display = display
        self.outcome = RunOutcome()
        self.measurer = PointMeasurer(config, run_name, store, display)

    def run(self, plan: list[Cell]) -> RunOutcome:
        for cell in plan:
            todo = [p for p in cell.points if not self.store.point_done(cell.id, p.id)]
            skipped = len(cell.points) - len(todo)
            self.outcome.skipped += skipped
            self.display.points_skipped(skipped)
            searching = self.config.capacity is not None and \
                not self.store.capacity_json(cell.id).exists()
            if not todo and not searching:
                self.display.say(f"[dim]{cell.id}: all {skipped} points already measured[/dim]")
                if self.config.capacity is not None:
                    self.display.points_skipped(self.config.capacity.steps)
                continue
            self.run_cell(cell, todo)
        return self.outcome

    def run_cell(self, cell: Cell, todo: list[Point]) -> None:
        engine = make_engine(self.config, cell, self.store)
        self.display.say(f"[bold]{cell.id}[/bold]: starting {engine.kind} "
                         f"(log {self.store.server_log(cell.id)})")
        remaining = list(todo)
        try:
            with engine, open_energy_monitor(self.config, cell) as energy:
                began = time.monotonic()
                server = engine.start()
                self.display.say(f"{cell.id}: ready in {time.monotonic() - began:.0f} s")
                self.store.record_telemetry(cell.id, energy.static_facts(), energy.gpu_reason,
                                            energy.cpu_reason)
                prompts = PromptSource(self.config, cell, server.extensions, self.run_name)
                self.warm_up(cell, server, prompts)
                idle = energy.idle_baseline(self.config.telemetry.idle_baseline_s)
                ctx = CellContext(cell, engine, server, prompts.workload, energy, idle)
                while remaining:
                    self.measurer.measure(ctx, remaining[0])
                    self.outcome.measured += 1
                    remaining.pop(0)
                if self.config.capacity is not None:
                    self.search_capacity(ctx)
            self.store.clear_failure(cell.id)
        except EngineError as err:
            self.fail(cell, remaining, err.reason, err.log_tail)

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
        cap, cell = self.config.capacity, ctx.cell
        results: dict[str, dict] = {}

        def measure(rate: float) -> SearchStep:
            point = rate_point(rate, self.config.load, kind="search", duration_s=cap.duration_s,
                               arrival=cap.arrival)
            if self.store.point_done(cell.id, point.id):
                result = read_json(self.store.point_json(cell.id, point.id))
                self.display.points_skipped(1)
            else:
                result = self.measurer.measure(ctx, point)
                self.outcome.measured += 1
            results[point.id] = result
            return SearchStep(rate, point.id, result["slo"]["meets"],
                              result["slo"]["violations"])

        found = search(measure, cap.min_rate, cap.max_rate, cap.steps)
        self.display.points_skipped(cap.steps - len(found.steps))
        record = capacity_record(found, results, self.config.slo)
        write_json(self.store.capacity_json(cell.id), record)
        if record["meets_slo"]:
            bound = " (the top of the searched range)" if record["at_upper_bound"] else ""
            self.display.say(f"[green]{cell.id}: capacity at SLO {record['rate_rps']:g} req/s"
                             f"{bound}, {record['output_throughput']:,.1f} out tok/s[/green]")
        else:
            self.display.say(f"[yellow]{cell.id}: no searched rate meets the SLO "
                             f"(lowest {cap.min_rate:g} req/s)[/yellow]")

    def fail(self, cell: Cell, remaining: list[Point], reason: str, tail: str) -> None:
        self.outcome.failed_cells[cell.id] = reason
        self.store.record_failure(cell.id, {
            "cell": cell.id, "variant": cell.variant, "max_num_seqs": cell.max_num_seqs,
            "tensor_parallel_size": cell.tensor_parallel_size, "reason": reason,
            "log_tail": tail, "points": [{"id": p.id, "concurrency": p.concurrency,
                                          "rate": p.rate} for p in remaining]})
        self.display.points_skipped(len(remaining))
        last = tail.splitlines()[-1] if tail else ""
        self.display.say(f"[red]{cell.id}: failed: {reason}[/red]\n  [dim]{last}[/dim]")


class PromptSource:
    """The cell's tokenizer, read once; a Workload per stream of requests (token ids where
    the server takes them, else text)."""

    def __init__(self, config: ExperimentConfig, cell: Cell, extensions: frozenset[str],
                 run_name: str):
        tokenizer = config.tokenizer or resolve_model(cell.model, create=False)[0]
        try:
            self.vocab = allowed_token_ids(tokenizer)
            self.text = None if TOKEN_IDS in extensions else TextCodec.load(tokenizer)
        except (OSError, ValueError) as err:
            raise EngineError(f"cannot load tokenizer {tokenizer!r} to build prompts "
                              f"(set `tokenizer:` to an HF id or local path): "
                              f"{str(err).splitlines()[0]}") from None
        self.config, self.cell, self.run_name = config, cell, run_name

    def workload(self, stream: str) -> Workload:
        return Workload(self.config.workload, self.vocab, self.text, self.config.seed,
                        salt_of(self.run_name, self.cell.id, stream),
                        salt_of(self.run_name, self.cell.id, "shared-prefix"))
