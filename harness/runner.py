"""Run a plan: for each cell start the engine, warm it up, measure its points, stop it.

Engines are always stopped (context manager), finished points are written as soon as they
are measured, and a cell whose server fails is recorded with its log tail while the run goes on.
Around every load point: a GPU energy window (NVML), a CPU energy window (RAPL) and the
engine's own metrics (Prometheus), each where it is available.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pandas as pd

from harness.config import DUMMY_PREFIX, ExperimentConfig
from harness.dummy_model import dummy_model_dir, ensure_dummy_model, ensure_dummy_weights
from harness.engines import Engine, EngineError, ServerHandle
from harness.engines.base import TOKEN_IDS
from harness.engines.external import ExternalEngine
from harness.engines.transformers import TransformersEngine
from harness.engines.vllm import VllmEngine
from harness.load.client import RequestRecord
from harness.load.closed_loop import run_closed_loop
from harness.load.prompts import PromptFactory, TextCodec, allowed_token_ids, salt_of
from harness.metrics import output_tokens, point_metrics, prompt_tokens
from harness.plan import Cell, Point
from harness.report.progress import RunDisplay
from harness.store import RunStore, now_iso
from harness.telemetry import server_metrics as sm
from harness.telemetry.nvml import GpuMonitor, Unavailable, energy_metrics
from harness.telemetry.rapl import RaplMonitor


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


def open_gpu_monitor(config: ExperimentConfig, cell: Cell) -> GpuMonitor | Unavailable:
    """NVML for exactly the GPUs that serve this cell (none known for a remote server)."""
    visible = config.engine.gpus
    if config.engine.kind == "external" and visible is None:
        return Unavailable("external server: set engine.gpus to measure local GPUs")
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return GpuMonitor.open(visible, cell.tensor_parallel_size,
                           sample_hz=config.telemetry.sample_hz)


class Runner:
    def __init__(self, config: ExperimentConfig, run_name: str, store: RunStore,
                 display: RunDisplay):
        self.config = config
        self.run_name = run_name
        self.store = store
        self.display = display
        self.outcome = RunOutcome()

    def run(self, plan: list[Cell]) -> RunOutcome:
        for cell in plan:
            todo = [p for p in cell.points if not self.store.point_done(cell.id, p.id)]
            skipped = len(cell.points) - len(todo)
            self.outcome.skipped += skipped
            self.display.points_skipped(skipped)
            if not todo:
                self.display.say(f"[dim]{cell.id}: all {skipped} points already measured[/dim]")
                continue
            self.run_cell(cell, todo)
        return self.outcome

    def run_cell(self, cell: Cell, todo: list[Point]) -> None:
        engine = make_engine(self.config, cell, self.store)
        self.display.say(f"[bold]{cell.id}[/bold]: starting {engine.kind} "
                         f"(log {self.store.server_log(cell.id)})")
        remaining = list(todo)
        try:
            with engine, open_gpu_monitor(self.config, cell) as gpus, RaplMonitor.open() as cpu:
                began = time.monotonic()
                server = engine.start()
                self.display.say(f"{cell.id}: ready in {time.monotonic() - began:.0f} s")
                self.store.record_telemetry(cell.id, gpus.static_facts(), gpus.reason,
                                            cpu.reason)
                prompts = PromptSource(self.config, cell, server, self.run_name)
                self.warm_up(cell, server, prompts)
                idle = gpus.idle_baseline(self.config.telemetry.idle_baseline_s)
                while remaining:
                    self.measure(cell, remaining[0], server, engine, prompts, (gpus, cpu, idle))
                    remaining.pop(0)
            self.store.clear_failure(cell.id)
        except EngineError as err:
            self.fail(cell, remaining, err.reason, err.log_tail)

    def fail(self, cell: Cell, remaining: list[Point], reason: str, tail: str) -> None:
        self.outcome.failed_cells[cell.id] = reason
        self.store.record_failure(cell.id, {
            "cell": cell.id, "variant": cell.variant, "max_num_seqs": cell.max_num_seqs,
            "tensor_parallel_size": cell.tensor_parallel_size, "reason": reason,
            "log_tail": tail, "points": [{"id": p.id, "concurrency": p.concurrency}
                                         for p in remaining]})
        self.display.points_skipped(len(remaining))
        last = tail.splitlines()[-1] if tail else ""
        self.display.say(f"[red]{cell.id}: failed: {reason}[/red]\n  [dim]{last}[/dim]")

    def warm_up(self, cell: Cell, server: ServerHandle, prompts: PromptSource) -> None:
        n = self.config.load.warmup_requests
        if n == 0:
            return
        records, _, _ = asyncio.run(run_closed_loop(
            server, prompts.stream("warmup"), self.config.workload.output_tokens,
            min(cell.max_num_seqs or n, n), requests=n,
            timeout_s=self.config.load.request_timeout_s))
        errors = [r for r in records if not r.ok]
        if errors:
            self.display.say(f"[yellow]{cell.id}: {len(errors)} of {n} warmup requests failed: "
                             f"{errors[0].error}[/yellow]")

    def measure(self, cell: Cell, point: Point, server: ServerHandle, engine: Engine,
                prompts: PromptSource, telemetry: tuple) -> None:
        gpus, cpu, idle = telemetry
        label = f"{cell.id} {point.id}"
        self.display.point_started(label, point.requests)
        started_at = now_iso()
        gpus.begin_window(point.id)
        cpu.begin_window(point.id)
        try:
            records, start, end, engine_view = asyncio.run(self._load_point(
                cell, point, server, prompts))
        except (TimeoutError, aiohttp.ClientError) as err:
            raise EngineError(f"server stopped answering during point {point.id}: {err}",
                              engine.log_tail()) from None
        finally:
            gpu_window, cpu_window = gpus.end_window(point.id), cpu.end_window(point.id)
        if not engine.alive():
            raise EngineError(f"server died during point {point.id}", engine.log_tail())
        metrics = point_metrics(records, start, end)
        energy = energy_metrics(gpu_window, prompt_tokens=metrics.prompt_tokens,
                                output_tokens=metrics.output_tokens, idle_w=idle.mean_power_w)
        if energy["energy_j"] is None:
            energy["energy_note"] = f"not measured: {energy['energy_note']}"
        result = {
            "schema": 1, "run": self.run_name, "cell": cell.id, "point": point.id,
            "engine": engine.kind, "variant": cell.variant, "max_num_seqs": cell.max_num_seqs,
            "tensor_parallel_size": cell.tensor_parallel_size, "concurrency": point.concurrency,
            "planned": {"requests": point.requests, "duration_s": point.duration_s,
                        "input_tokens": self.config.workload.input_tokens,
                        "output_tokens": self.config.workload.output_tokens,
                        "request_timeout_s": self.config.load.request_timeout_s},
            "started_at": started_at, "ended_at": now_iso(),
            "metrics": metrics.model_dump(), "server": engine_view,
            "energy": {**energy, "window": gpu_window.summary(), "idle": idle.summary()},
            "cpu_energy": cpu_window.summary(),
        }
        self.store.save_point(cell.id, point.id, result, requests_frame(records, start),
                              gpu_window.samples)
        self.outcome.measured += 1
        self.display.point_finished(
            f"{label}: {metrics.completed}/{metrics.requests} ok, "
            f"{metrics.output_throughput:,.1f} out tok/s, TTFT p50 "
            f"{metrics.ttft_ms.p50 or 0:,.1f} ms, tokens {engine_view['token_check']}")

    async def _load_point(self, cell: Cell, point: Point, server: ServerHandle,
                          prompts: PromptSource):
        url = server.metrics_url
        async with aiohttp.ClientSession() as session:
            before = await sm.scrape(session, url, server.headers) if url else None
            stop = asyncio.Event()
            interval = self.config.telemetry.engine_metrics_interval_s
            sampler = (asyncio.create_task(sm.sample_until(session, url, stop, interval))
                       if url else None)
            try:
                records, start, end = await run_closed_loop(
                    server, prompts.stream(point.id), self.config.workload.output_tokens,
                    point.concurrency, requests=point.requests, duration_s=point.duration_s,
                    timeout_s=self.config.load.request_timeout_s,
                    on_record=lambda _r: self.display.request_done())
            finally:
                stop.set()
                samples = await sampler if sampler else []
            client = (sum(prompt_tokens(r) for r in records if r.prompt_tokens is not None),
                      sum(output_tokens(r) for r in records if r.completion_tokens is not None))
            after = await sm.settled_after(session, url, before, client) if url else None
        errors = sum(not r.ok for r in records)
        view = sm.token_check(client, before, after, errors)
        if before is not None and after is not None:
            view["engine"] = sm.engine_stats(before, after, samples, cell.max_num_seqs)
        return records, start, end, view


class PromptSource:
    """Prompt factories for one cell: token ids where the server takes them, else text."""

    def __init__(self, config: ExperimentConfig, cell: Cell, server: ServerHandle,
                 run_name: str):
        tokenizer = config.tokenizer or resolve_model(cell.model, create=False)[0]
        try:
            self.vocab = allowed_token_ids(tokenizer)
            self.text = None if TOKEN_IDS in server.extensions else TextCodec.load(tokenizer)
        except (OSError, ValueError) as err:
            raise EngineError(f"cannot load tokenizer {tokenizer!r} to build prompts "
                              f"(set `tokenizer:` to an HF id or local path): "
                              f"{str(err).splitlines()[0]}") from None
        self.config, self.cell, self.run_name = config, cell, run_name

    def stream(self, name: str) -> PromptFactory:
        return PromptFactory(self.vocab, self.config.workload.input_tokens, self.config.seed,
                             salt_of(self.run_name, self.cell.id, name), self.text)


def requests_frame(records: list[RequestRecord], start: float) -> pd.DataFrame:
    """One row per request; times in seconds from the start of the point's window."""
    rows = []
    for r in records:
        rows.append({
            "index": r.index, "input_tokens": r.input_tokens, "max_tokens": r.max_tokens,
            "send_s": r.send_time - start,
            "first_token_s": None if r.first_token_time is None else r.first_token_time - start,
            "last_token_s": None if r.last_token_time is None else r.last_token_time - start,
            "done_s": r.done_time - start,
            "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "finish_reason": r.finish_reason, "error": r.error,
            "chunk_s": [t - start for t in r.chunk_times], "chunk_tokens": list(r.chunk_tokens),
        })
    frame = pd.DataFrame(rows)
    for column in ("prompt_tokens", "completion_tokens"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame
