"""Measure one load point on a running server and write it: the load itself, and around it the
energy window (GPU energy through NVML, CPU energy through RAPL) and the engine's own metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from harness.config import ExperimentConfig
from harness.engines import Engine, EngineError, ServerHandle
from harness.load.client import run_fast
from harness.load.executor import LoadResult, run_point
from harness.load.health import LAG_LIMIT_MS, client_problems, dispatch_lag
from harness.load.prompts import salt_of
from harness.load.workload import Workload
from harness.metrics import output_tokens, phase_metrics, point_metrics, prompt_tokens
from harness.plan import Cell, Point
from harness.records import RequestRecord, requests_frame
from harness.report.progress import RunDisplay
from harness.slo import slo_summary
from harness.store import RunStore, now_iso
from harness.telemetry import server_metrics as sm
from harness.telemetry.energy import energy_metrics
from harness.telemetry.measurement import Measurement
from harness.telemetry.monitor import EnergyMonitor


@dataclass
class CellContext:
    """What every point of a running cell shares."""

    cell: Cell
    engine: Engine
    server: ServerHandle
    workload_for: Callable[[str], Workload]  # stream name -> its requests
    energy: EnergyMonitor
    idle: Measurement


class PointMeasurer:
    def __init__(self, config: ExperimentConfig, run_name: str, store: RunStore,
                 display: RunDisplay):
        self.config, self.run_name, self.store, self.display = config, run_name, store, display

    def measure(self, ctx: CellContext, point: Point) -> dict:
        cell, engine = ctx.cell, ctx.engine
        self.display.point_started(f"{cell.id} {point.id}", point.requests)
        cache = self.prepare_cache(ctx.server)
        started_at = now_iso()
        ctx.energy.begin_window(point.id)
        try:
            load, engine_view = run_fast(self._run(ctx, point))
        except (TimeoutError, aiohttp.ClientError) as err:
            raise EngineError(f"server stopped answering during point {point.id}: {err}",
                              engine.log_tail()) from None
        finally:
            window = ctx.energy.end_window(point.id)
        if not engine.alive():
            raise EngineError(f"server died during point {point.id}", engine.log_tail())
        result = self.result(ctx, point, load, engine_view, window)
        result.update(started_at=started_at, ended_at=now_iso(), prefix_cache=cache)
        self.store.save_point(cell.id, point.id, result, requests_frame(load.records, load.start),
                              window.samples)
        self.display.point_finished(summary_line(cell, point, result))
        return result

    def prepare_cache(self, server: ServerHandle) -> str:
        """Reset the prefix cache so earlier points cannot flatter this one, unless the
        workload studies caching."""
        if self.config.workload.studies_caching:
            return "kept (the workload studies caching)"
        if server.cache_reset_url is None:
            return "not reset (the engine offers no reset)"
        ok, why = reset_cache(server)
        return "reset" if ok else f"not reset: {why}"

    async def _run(self, ctx: CellContext, point: Point) -> tuple[LoadResult, dict]:
        server, url = ctx.server, ctx.server.metrics_url
        async with aiohttp.ClientSession() as session:
            before = await sm.scrape(session, url, server.headers) if url else None
            stop = asyncio.Event()
            interval = self.config.telemetry.engine_metrics_interval_s
            sampler = (asyncio.create_task(sm.sample_until(session, url, stop, interval))
                       if url else None)
            try:
                load = await run_point(
                    server, point, ctx.workload_for(point.id), seed=self.config.seed,
                    salt=salt_of(self.run_name, ctx.cell.id, point.id),
                    timeout_s=self.config.load.request_timeout_s, retry=self.config.load.retry,
                    on_record=lambda _r: self.display.request_done())
            finally:
                stop.set()
                samples = await sampler if sampler else []
            client = client_tokens(load.records)
            after = await sm.settled_after(session, url, before, client) if url else None
        view = sm.token_check(client, before, after, sum(not r.ok for r in load.records))
        if before is not None and after is not None:
            view["engine"] = sm.engine_stats(before, after, samples, ctx.cell.max_num_seqs)
        return load, view

    def result(self, ctx: CellContext, point: Point, load: LoadResult, engine_view: dict,
               window: Measurement) -> dict:
        cell = ctx.cell
        metrics = point_metrics(load.records, load.start, load.end)
        energy = energy_metrics(window, prompt_tokens=metrics.prompt_tokens,
                                output_tokens=metrics.output_tokens,
                                idle_w=ctx.idle.mean_gpu_power_w)
        if energy["energy_j"] is None:
            energy["energy_note"] = f"not measured: {energy['energy_note']}"
        phases = {}
        if len(point.phases) > 1:
            for name, m in phase_metrics(load.records, load.phases).items():
                mine = [r for r in load.records if r.phase == name]
                phases[name] = {"metrics": m.model_dump(),
                                "slo": slo_summary(mine, m, self.config.slo)}
        workload = self.config.workload
        return {
            "schema": 1, "run": self.run_name, "cell": cell.id, "point": point.id,
            "kind": point.kind, "engine": ctx.engine.kind, "variant": cell.variant,
            "max_num_seqs": cell.max_num_seqs, "tensor_parallel_size": cell.tensor_parallel_size,
            "concurrency": point.concurrency, "rate": point.rate,
            "planned": {"phases": [vars(p) for p in point.phases],
                        "input_tokens": workload.input_tokens.describe(),
                        "output_tokens": workload.output_tokens.describe(),
                        "request_timeout_s": self.config.load.request_timeout_s},
            "metrics": metrics.model_dump(),
            "slo": slo_summary(load.records, metrics, self.config.slo),
            "phases": phases, "server": engine_view, "client": client_health(load),
            "energy": {**energy, "window": window.gpu_summary(),
                       "idle": ctx.idle.gpu_summary()},
            "cpu_energy": window.cpu_summary(),
        }


def client_health(load: LoadResult) -> dict:
    """Did the client keep up? Event-loop lag and dispatch lag against LAG_LIMIT_MS."""
    dispatch = dispatch_lag(load.records)
    problems = client_problems(load.loop_lag, dispatch)
    return {"kept_up": not problems, "problems": problems, "limit_ms": LAG_LIMIT_MS,
            "loop_lag_ms": {"n": load.loop_lag.n, "p50": load.loop_lag.p50_ms,
                            "p99": load.loop_lag.p99_ms, "max": load.loop_lag.max_ms},
            "dispatch_lag_ms": {"n": dispatch.n, "p50": dispatch.p50_ms, "p99": dispatch.p99_ms,
                                "max": dispatch.max_ms}}


def client_tokens(records: list[RequestRecord]) -> tuple[int, int]:
    """The client's usage totals over every attempt that got a usage report."""
    return (sum(prompt_tokens(r) for r in records if r.prompt_tokens is not None),
            sum(output_tokens(r) for r in records if r.completion_tokens is not None))


def reset_cache(server: ServerHandle) -> tuple[bool, str]:
    from harness.engines.http import post_json

    try:
        status, text = post_json(server.cache_reset_url, {}, server.headers, timeout=30)
    except OSError as err:
        return False, str(err)
    return status == 200, f"HTTP {status}: {text[:100]}"


def summary_line(cell: Cell, point: Point, result: dict) -> str:
    m = result["metrics"]
    parts = [f"{cell.id} {point.id}: {m['completed']}/{m['requests']} ok",
             f"{m['output_throughput']:,.1f} out tok/s",
             f"TTFT p50 {m['ttft_ms']['p50'] or 0:,.1f} ms",
             f"tokens {result['server']['token_check']}"]
    if not result["client"]["kept_up"]:
        parts.append(f"[yellow]the client fell behind: "
                     f"{'; '.join(result['client']['problems'])}[/yellow]")
    if m["burst_delivery"]:
        parts.append(f"[yellow]burst delivery ({m['burst_share']:.0%} of tokens)[/yellow]")
    if result["slo"] is not None:
        parts.append("SLO met" if result["slo"]["meets"] else
                     f"SLO missed: {'; '.join(result['slo']['violations'])}")
    return ", ".join(parts)
