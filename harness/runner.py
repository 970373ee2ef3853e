"""Run a plan: for each cell start the engine, warm it up, measure its points, stop it.

Engines are always stopped (context manager), finished points are written as soon as they
are measured, and a cell whose server fails is recorded with its log tail while the run goes on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pandas as pd

from harness.config import DUMMY_PREFIX, ExperimentConfig
from harness.dummy_model import dummy_model_dir, ensure_dummy_model
from harness.engines import EngineError, ServerHandle, VllmEngine
from harness.engines.vllm import log_tail
from harness.load.client import RequestRecord
from harness.load.closed_loop import run_closed_loop
from harness.load.prompts import PromptFactory, allowed_token_ids, salt_of
from harness.metrics import output_tokens, point_metrics, prompt_tokens
from harness.plan import Cell, Point
from harness.report.progress import RunDisplay
from harness.store import RunStore, now_iso
from harness.telemetry.server_metrics import scrape_once, settled_token_deltas


@dataclass
class RunOutcome:
    measured: int = 0
    skipped: int = 0
    failed_cells: dict[str, str] = field(default_factory=dict)


def resolve_model(model: str, create: bool = True) -> tuple[str, dict]:
    """A model the engine can load, plus options it needs (dummy shapes load random weights).

    With create=False nothing is written (for --dry-run).
    """
    if model.startswith(DUMMY_PREFIX):
        shape = model[len(DUMMY_PREFIX):]
        directory = ensure_dummy_model(shape) if create else dummy_model_dir(shape)
        return str(directory), {"load_format": "dummy"}
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model, {}


def served_name(config: ExperimentConfig, model: str) -> str:
    if config.served_model_name:
        return config.served_model_name
    return model[len(DUMMY_PREFIX):] if model.startswith(DUMMY_PREFIX) else model


def engine_for(config: ExperimentConfig, cell: Cell, store: RunStore,
               create: bool = True) -> VllmEngine:
    model, extra = resolve_model(cell.model, create)
    options = {"generation_config": "vllm", **extra, **cell.options,
               "max_num_seqs": cell.max_num_seqs,
               "tensor_parallel_size": cell.tensor_parallel_size, "seed": config.seed}
    return VllmEngine(model, served_name(config, cell.model), options, store.server_log(cell.id),
                      env=config.engine.env, python=config.engine.python,
                      startup_timeout_s=config.engine.startup_timeout_s)


class Runner:
    def __init__(self, config: ExperimentConfig, run_name: str, store: RunStore,
                 display: RunDisplay):
        self.config = config
        self.run_name = run_name
        self.store = store
        self.display = display
        self.outcome = RunOutcome()
        self._vocab: dict[str, list[int]] = {}

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
        engine = engine_for(self.config, cell, self.store)
        self.display.say(f"[bold]{cell.id}[/bold]: starting vLLM (max_num_seqs="
                         f"{cell.max_num_seqs}, log {self.store.server_log(cell.id)})")
        remaining = list(todo)
        try:
            with engine:
                began = time.monotonic()
                server = engine.start()
                self.display.say(f"{cell.id}: ready in {time.monotonic() - began:.0f} s")
                self.warm_up(cell, server, engine.model)
                while remaining:
                    self.measure(cell, remaining[0], server, engine)
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

    def prompts(self, model_dir: str, cell: Cell, stream: str) -> PromptFactory:
        if model_dir not in self._vocab:
            self._vocab[model_dir] = allowed_token_ids(model_dir)
        return PromptFactory(self._vocab[model_dir], self.config.workload.input_tokens,
                             self.config.seed, salt_of(self.run_name, cell.id, stream))

    def warm_up(self, cell: Cell, server: ServerHandle, model_dir: str) -> None:
        n = self.config.load.warmup_requests
        if n == 0:
            return
        records, _, _ = asyncio.run(run_closed_loop(
            server, self.prompts(model_dir, cell, "warmup"), self.config.workload.output_tokens,
            min(cell.max_num_seqs, n), requests=n, timeout_s=self.config.load.request_timeout_s))
        errors = sum(not r.ok for r in records)
        if errors:
            self.display.say(f"[yellow]{cell.id}: {errors} of {n} warmup requests failed: "
                             f"{next(r.error for r in records if not r.ok)}[/yellow]")

    def measure(self, cell: Cell, point: Point, server: ServerHandle, engine: VllmEngine) -> None:
        load = self.config.load
        label = f"{cell.id} {point.id}"
        self.display.point_started(label, point.requests)
        started_at = now_iso()
        try:
            records, start, end, server_tokens = asyncio.run(self._load_point(
                cell, point, server, engine.model))
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise EngineError(f"server stopped answering during point {point.id}: {err}",
                              log_tail(engine.log_path)) from None
        if not engine.alive():
            raise EngineError(f"server died during point {point.id}", log_tail(engine.log_path))
        metrics = point_metrics(records, start, end)
        result = {
            "schema": 1, "run": self.run_name, "cell": cell.id, "point": point.id,
            "variant": cell.variant, "max_num_seqs": cell.max_num_seqs,
            "tensor_parallel_size": cell.tensor_parallel_size, "concurrency": point.concurrency,
            "planned": {"requests": point.requests, "duration_s": point.duration_s,
                        "input_tokens": self.config.workload.input_tokens,
                        "output_tokens": self.config.workload.output_tokens,
                        "request_timeout_s": load.request_timeout_s},
            "started_at": started_at, "ended_at": now_iso(),
            "metrics": metrics.model_dump(), "server": server_tokens,
        }
        self.store.save_point(cell.id, point.id, result, requests_frame(records, start))
        self.outcome.measured += 1
        self.display.point_finished(
            f"{label}: {metrics.completed}/{metrics.requests} ok, "
            f"{metrics.output_throughput:,.1f} out tok/s, TTFT p50 "
            f"{metrics.ttft_ms.p50 or 0:,.1f} ms, tokens {server_tokens['token_check']}")

    async def _load_point(self, cell: Cell, point: Point, server: ServerHandle, model_dir: str):
        before = await scrape_once(server.metrics_url)
        records, start, end = await run_closed_loop(
            server, self.prompts(model_dir, cell, point.id), self.config.workload.output_tokens,
            point.concurrency, requests=point.requests, duration_s=point.duration_s,
            timeout_s=self.config.load.request_timeout_s,
            on_record=lambda _r: self.display.request_done())
        client = (sum(prompt_tokens(r) for r in records if r.prompt_tokens is not None),
                  sum(output_tokens(r) for r in records if r.completion_tokens is not None))
        server_counts = await settled_token_deltas(server.metrics_url, before, client)
        return records, start, end, token_check(records, client, server_counts)


def token_check(records: list[RequestRecord], client: tuple[int, int],
                server: tuple[int, int]) -> dict:
    """Client usage totals against the engine's own counters over the same point."""
    errors = sum(not r.ok for r in records)
    if client == server:
        verdict = "match"
    elif errors:
        verdict = f"unverifiable ({errors} errors)"
    else:
        verdict = "mismatch"
    return {"prompt_tokens": server[0], "generation_tokens": server[1],
            "client_prompt_tokens": client[0], "client_generation_tokens": client[1],
            "token_check": verdict}


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
