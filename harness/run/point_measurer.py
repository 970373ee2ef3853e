"""Measure one load point on a running server and write it: the load itself, and around it the
energy window (GPU energy through NVML, CPU energy through RAPL) and the engine's own metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from harness.config import ExperimentConfig
from harness.contract.plan import Cell, Point
from harness.contract.records import RequestRecord
from harness.contract.results import (
    ClientHealth,
    LagStats,
    Planned,
    PlannedPhase,
    PointMetrics,
    PointResult,
    ServerView,
)
from harness.contract.server import ServerHandle
from harness.engines.base import Engine, EngineError
from harness.load.generator import (
    LoadResult,
    Prebuilt,
    RequestSource,
    chains_needed,
    run_point,
    soon,
)
from harness.load.health import LAG_LIMIT_MS, client_problems
from harness.load.loop import run_fast
from harness.load.prompts import salt_of
from harness.load.watchdog import ServerHung, unless_hung
from harness.metrics.point_metrics import PhaseSpan
from harness.metrics.reading import read_point
from harness.metrics.steady import with_energy
from harness.store.requests_file import ParquetRequests
from harness.store.run_store import ResultsLost, RunStore, now_iso
from harness.store.spool import RequestSpool, spool_path
from harness.telemetry import server_metrics as sm
from harness.telemetry.energy import point_energy
from harness.telemetry.measurement import Measurement
from harness.telemetry.monitor import EnergyMonitor


@dataclass
class CellContext:
    """What every point of a running cell shares."""

    cell: Cell
    engine: Engine
    server: ServerHandle
    workload_for: Callable[..., RequestSource]  # (stream name, trace=False) -> its requests
    energy: EnergyMonitor
    idle: Measurement
    prefix_cache: str = "not reset"  # how the next point finds it (Runner.reset_cache)


class PointMeasurer:
    """Measures points on a running cell and stores each as a PointResult."""

    def __init__(self, config: ExperimentConfig, run_name: str, store: RunStore):
        self.config, self.run_name, self.store = config, run_name, store

    def measure(self, ctx: CellContext, point: Point,
                on_request: Callable[[], None] | None = None) -> PointResult:
        cell = ctx.cell
        started_at = now_iso()
        salt = salt_of(self.run_name, cell.id, point.id)
        # every prompt is built before the windows open (Prebuilt says why)
        requests = Prebuilt(ctx.workload_for(point.id),
                            chains_needed(point, self.config.seed, salt))
        trace = Prebuilt(ctx.workload_for(point.trace_stream, trace=True),
                         chains_needed(point, self.config.seed, salt, trace=True)
                         ) if point.replays_trace else None
        spool = RequestSpool(spool_path(self.store.requests_parquet(cell.id, point.id)))
        self.store.check_present(cell.id, point.id)  # (a removed folder is not made again)
        spool.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            result = self._measure(ctx, point, (requests, trace), spool, started_at,
                                   on_request)
        finally:
            spool.discard()  # (already moved into place when the point was saved)
        return result

    def _measure(self, ctx: CellContext, point: Point,
                 requests: tuple[RequestSource, RequestSource | None], spool: RequestSpool,
                 started_at: str, on_request: Callable[[], None] | None) -> PointResult:
        cell, engine = ctx.cell, ctx.engine
        ctx.energy.begin_window(point.id)
        try:
            load, server_view = run_fast(self._run(ctx, point, requests, spool, on_request))
        except BaseException as err:
            ctx.energy.cancel_window(point.id)  # a failed point stores no energy
            if isinstance(err, (TimeoutError, aiohttp.ClientError, ServerHung)):
                raise EngineError(f"server stopped answering during point {point.id}: {err}",
                                  engine.log_tail()) from None
            raise
        window = ctx.energy.end_window(point.id)
        if not engine.alive():
            raise EngineError(f"server died during point {point.id}", engine.log_tail())
        try:
            requests_file = spool.close()
        except OSError as err:
            self.store.check_present(cell.id, point.id)
            raise ResultsLost(f"{self.store.root}: cannot write the requests of point "
                              f"{cell.id}/{point.id} ({err.strerror or err}); earlier points "
                              f"are kept") from None
        # every figure is read from what is stored, in one pass over the file
        reading = read_point(ParquetRequests(requests_file), load.end - load.start,
                             phase_spans(point, load), self.config.slo,
                             self.config.sustain if at_constant_rate(point) else None)
        metrics = reading.metrics
        result = PointResult(
            run=self.run_name, cell=cell.id, point=point.id, kind=point.kind,
            engine=engine.kind, variant=cell.variant, max_num_seqs=cell.max_num_seqs,
            tensor_parallel_size=cell.tensor_parallel_size, concurrency=point.concurrency,
            rate=point.rate, planned=self.planned(point), metrics=metrics, slo=reading.slo,
            phases=reading.phases, server=server_view, client=client_health(load, metrics),
            energy=point_energy(window, ctx.idle, prompt_tokens=metrics.prompt_tokens,
                                output_tokens=metrics.output_tokens),
            cpu_energy=window.cpu_summary(),
            started_at=started_at, ended_at=now_iso(), prefix_cache=ctx.prefix_cache,
            steady=with_energy(reading.steady, window.samples, load.start, window.gpu.reason),
            sustained=reading.sustained, repeat=point.repeat, workload=cell.workload)
        self.store.save_point(result, requests_file, window.samples)
        return result

    async def _run(self, ctx: CellContext, point: Point,
                   requests: tuple[RequestSource, RequestSource | None], spool: RequestSpool,
                   on_request: Callable[[], None] | None) -> tuple[LoadResult, ServerView]:
        """`requests`: the workload's, and the trace's for a point with a trace phase."""
        server, url = ctx.server, ctx.server.metrics_url
        tally = Tally()
        async with aiohttp.ClientSession() as session:
            before = await sm.scrape(session, url, server.headers) if url else None
            stop = asyncio.Event()
            interval = self.config.telemetry.engine_metrics_interval_s
            sampler = (asyncio.create_task(sm.sample_until(session, url, stop, interval))
                       if url else None)
            try:
                timeout_s = self.config.load.request_timeout_s
                load = await unless_hung(run_point(
                    server, point, requests[0], seed=self.config.seed,
                    salt=salt_of(self.run_name, ctx.cell.id, point.id),
                    timeout_s=timeout_s, retry=self.config.load.retry,
                    on_record=_recorder(spool, tally, on_request),
                    start=lambda: spool.begin(soon()), trace=requests[1],
                    keep_records=False),
                    session, server.base_url, timeout_s, server.headers)
            finally:
                stop.set()
                samples = await sampler if sampler else []
            client = (tally.prompt_tokens, tally.output_tokens)
            after = await sm.settled_after(session, url, before, client) if url else None
        view = sm.token_check(client, before, after, tally.failed)
        if before is not None and after is not None:
            view.engine = sm.engine_stats(before, after, samples, ctx.cell.max_num_seqs)
        return load, view

    def planned(self, point: Point) -> Planned:
        phases = [PlannedPhase(**{key: value for key, value in vars(phase).items()
                                  if key != "offsets"}) for phase in point.phases]
        inputs, outputs = planned_lengths(self.config, point)
        return Planned(phases=phases, input_tokens=inputs, output_tokens=outputs,
                       request_timeout_s=self.config.load.request_timeout_s)


@dataclass
class Tally:
    """The client's usage totals over every attempt that got a usage report, and its failed
    attempts: what the engine's own counters are checked against (token_check)."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    failed: int = 0

    def add(self, record: RequestRecord) -> None:
        if record.prompt_tokens is not None:
            self.prompt_tokens += record.prompt_tokens
        if record.completion_tokens is not None:
            self.output_tokens += record.completion_tokens
        self.failed += not record.ok


def _recorder(spool: RequestSpool, tally: Tally, on_request: Callable[[], None] | None
              ) -> Callable[[RequestRecord], None]:
    """Each finished attempt goes to the spool and the tally (and ticks the progress bar)."""
    def record(finished: RequestRecord) -> None:
        tally.add(finished)
        spool.add(finished)
        if on_request is not None:
            on_request()
    return record


def planned_lengths(config: ExperimentConfig, point: Point) -> tuple[str, str]:
    """What the point's prompt and output lengths follow, in words."""
    workload, trace = config.workload, config.load.trace
    source = f"from the {trace.format} trace {trace.file}" if trace is not None else ""
    if point.kind == "trace" and trace is not None:
        return source, source
    if workload.prompts is not None:
        outputs = workload.output_tokens.describe()
        if workload.prompts.output_from_file:
            outputs = f"from {workload.prompts.file}, else {outputs}"
        lengths = f"the prompts of {workload.prompts.file}", outputs
    else:
        lengths = workload.input_tokens.describe(), workload.output_tokens.describe()
    replays = ", ".join(phase.name for phase in point.phases if phase.trace)
    return tuple(f"{text}; phase {replays} {source}" if replays else text for text in lengths)


def at_constant_rate(point: Point) -> bool:
    """An open-loop point of one phase at one rate: what the `sustain` rules judge (a capacity
    search step, a `load.rates` point)."""
    if len(point.phases) != 1 or point.phases[0].rate is None:
        return False
    start, end = point.phases[0].rate
    return start == end


def phase_spans(point: Point, load: LoadResult) -> list[PhaseSpan]:
    """The phases of a profile as they ran, in seconds from the point's start (none for a
    point of one phase: its metrics are the point's)."""
    if len(point.phases) < 2:
        return []
    return [PhaseSpan(window.name, window.start - load.start, window.end - load.start)
            for window in load.phases]


def client_health(load: LoadResult, metrics: PointMetrics) -> ClientHealth:
    """Did the client keep up? Event-loop lag and dispatch lag against LAG_LIMIT_MS."""
    lag = load.loop_lag
    problems = client_problems(lag, metrics.dispatch_lag_ms.p99)
    return ClientHealth(kept_up=not problems, problems=problems, limit_ms=LAG_LIMIT_MS,
                        loop_lag_ms=LagStats(n=lag.n, p50=lag.p50_ms, p99=lag.p99_ms,
                                             max=lag.max_ms))

