"""`harness selftest client`: proof that the client is not what limits a measurement.

It starts the mock server (harness.mock) in its own processes, streams from it with the
harness's own client at each number of concurrent streams, and compares every chunk's arrival
stamp with the stamp the server took when it wrote that chunk. Both are time.perf_counter(),
CLOCK_MONOTONIC on Linux: one clock for every process on the machine.

Also here: run_jobs, a list of scheduled requests sent from one or several processes on one
shared clock (the lag checks every real run makes are in harness.load.health).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from harness.engines.base import ServerHandle
from harness.load.client import stream_completion
from harness.load.health import (
    LagSummary,
    LoopLag,
    client_problems,
    dispatch_at,
    dispatch_summary,
)
from harness.load.loop import run_fast
from harness.load.session import StreamSession
from harness.mock import MockServer, Schedule
from harness.records import RequestRecord

START_LEAD_S = 0.2  # from handing out the jobs to the shared start
WORKER_START_TIMEOUT_S = 60.0


# --- scheduled requests, from one process or several -------------------------------------------

@dataclass(frozen=True)
class Job:
    """One request and when to send it: `offset_s` after the shared start."""

    index: int
    prompt: list[int] | str
    max_tokens: int
    offset_s: float
    input_tokens: int | None = None


@dataclass
class JobsResult:
    records: list[RequestRecord]  # by index; intended_time set on each
    start: float  # the shared start (perf_counter)
    end: float  # the last reply
    loop_lag: list[LagSummary] = field(default_factory=list)  # one per process

    @property
    def worst_loop_lag(self) -> LagSummary:
        return max(self.loop_lag, key=lambda lag: lag.p99_ms, default=LagSummary())


async def send_jobs(server: ServerHandle, jobs: Sequence[Job], timeout_s: float,
                    start: Callable[[], float], connections: int = 0,
                    ) -> tuple[list[RequestRecord], float, LagSummary]:
    """Open `connections` connections, then call `start()` for the shared start and send each
    job at start + offset_s from this event loop: the records, the start and the loop lag."""

    async def send(session: StreamSession, job: Job, intended: float) -> RequestRecord:
        record = await stream_completion(session, server, job.index, job.prompt,
                                         job.max_tokens, timeout_s, job.input_tokens)
        record.intended_time = intended
        return record

    async with StreamSession() as session:
        await session.preconnect(server.base_url, connections)
        t0 = start()
        async with LoopLag() as lag:
            tasks = await dispatch_at(jobs, lambda job: t0 + job.offset_s,
                                      lambda job, intended: send(session, job, intended))
            records = await asyncio.gather(*tasks)
    return list(records), t0, lag.summary()


def run_jobs(server: ServerHandle, jobs: Sequence[Job], *, processes: int = 1,
             connections: int = 0, timeout_s: float = 600.0) -> JobsResult:
    """Send the jobs from `processes` processes (round-robin by send time) sharing one start,
    each with connections/processes connections opened beforehand.

    perf_counter is CLOCK_MONOTONIC on Linux, so the start and every stamp mean the same in
    each process. With one process the jobs are sent from this one, on a new event loop.
    """
    ordered = sorted(jobs, key=lambda j: j.offset_s)
    share = -(-connections // max(processes, 1))
    if processes <= 1:
        records, start, lag = run_fast(send_jobs(server, ordered, timeout_s, _soon, share))
        return _result(records, start, [lag])
    context = multiprocessing.get_context("spawn")  # no fork: the caller may hold a loop
    pipes, workers = [], []
    try:
        for number in range(processes):
            parent, child = context.Pipe()
            worker = context.Process(target=_job_worker, daemon=True, args=(
                child, server, ordered[number::processes], timeout_s, share))
            worker.start()
            pipes.append(parent)
            workers.append(worker)
        for pipe in pipes:  # started, connected: the start can be close
            if not pipe.poll(WORKER_START_TIMEOUT_S):
                raise RuntimeError("a client process did not start")
            if isinstance(message := pipe.recv(), BaseException):
                raise message
        start = _soon()
        for pipe in pipes:
            pipe.send(start)
        results = [pipe.recv() for pipe in pipes]
        for result in results:
            if isinstance(result, BaseException):
                raise result
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
            worker.join()
    records = [record for part, _, _ in results for record in part]
    return _result(records, start, [lag for _, _, lag in results])


def _soon() -> float:
    return time.perf_counter() + START_LEAD_S


def _job_worker(pipe, server: ServerHandle, jobs: list[Job], timeout_s: float,
                connections: int) -> None:
    def shared_start() -> float:
        pipe.send("ready")
        return pipe.recv()

    try:
        result = run_fast(send_jobs(server, jobs, timeout_s, shared_start, connections))
    except Exception as err:  # for the parent to raise
        result = err
    pipe.send(result)


def _result(records: list[RequestRecord], start: float, lags: list[LagSummary]) -> JobsResult:
    records.sort(key=lambda r: r.index)
    end = max((r.done_time for r in records), default=start)
    return JobsResult(records, start, end, lags)


# --- the measurement -------------------------------------------------------------------------

@dataclass
class StreamsResult:
    """One row of the self-test: the client at `streams` concurrent streams."""

    streams: int
    requests: int
    errors: int
    chunks: int
    expected_chunks: int
    window_s: float
    offered_per_s: float  # what the schedule offers
    chunks_per_s: float  # what arrived, over the window
    error_p50_ms: float  # arrival stamp - write stamp
    error_p99_ms: float
    error_max_ms: float
    dispatch: LagSummary
    loop_lag: LagSummary  # the worst process's
    server_lag_p99_ms: float  # how late the mock server's own steps ran
    problems: list[str]

    @property
    def kept_up(self) -> bool:
        return not self.problems


def streams_jobs(streams: int, requests_per_stream: int, tokens: int,
                 schedule: Schedule) -> list[Job]:
    """`streams` streams of back-to-back requests: request j of stream s leaves at
    (j + s/streams) request lengths (a request length is its steps plus two, so one request
    has ended before the next leaves; the streams start spread over the first one, as they
    would be in a steady load). The first prompt token (index + 1) names the request for
    the server's stamps."""
    period = request_length(tokens, schedule)
    jobs = []
    for stream in range(streams):
        for turn in range(requests_per_stream):
            index = stream * requests_per_stream + turn
            offset = (turn + stream / streams) * period
            jobs.append(Job(index, [index + 1, 1, 1, 1], tokens, offset))
    return jobs


def request_length(tokens: int, schedule: Schedule) -> float:
    return (schedule.chunks(tokens) + 2) * schedule.interval_s


def measure_streams(mock: MockServer, streams: int, duration_s: float, tokens: int,
                    processes: int = 1, timeout_s: float = 60.0) -> StreamsResult:
    """Stream from the running mock for about `duration_s` at `streams` concurrent streams."""
    schedule = mock.schedule
    per_stream = max(1, round(duration_s / request_length(tokens, schedule)))
    jobs = streams_jobs(streams, per_stream, tokens, schedule)
    mock.take_stamps()  # forget what came before
    result = run_jobs(mock.handle(), jobs, processes=processes, connections=streams,
                      timeout_s=timeout_s)
    reports = mock.take_stamps()
    written = {key: stamps for report in reports for key, stamps in report["requests"]}
    errors_s, chunks = [], 0
    for record in result.records:
        chunks += len(record.chunk_times)
        stamps = written.get(record.index + 1, [])
        errors_s += [arrived - sent for arrived, sent in zip(record.chunk_times, stamps,
                                                             strict=False)]
    failed = sum(not r.ok for r in result.records)
    expected = len(jobs) * schedule.chunks(tokens)
    last_chunk = max((r.last_token_time or result.start for r in result.records),
                     default=result.start)
    window = max(last_chunk - result.start, 1e-9)
    error = LagSummary.of(errors_s)
    row = StreamsResult(
        streams, len(jobs), failed, chunks, expected, window,
        expected / _span(jobs, tokens, schedule), chunks / window,
        error.p50_ms, error.p99_ms, error.max_ms, dispatch_summary(result.records),
        result.worst_loop_lag,
        max((r["step_lag_p99_s"] for r in reports), default=0.0) * 1e3, [])
    row.problems = _problems(row, schedule.interval_s * 1e3, result.records)
    return row


def _span(jobs: Sequence[Job], tokens: int, schedule: Schedule) -> float:
    """From the start to the last chunk of the last request, on schedule."""
    return max(job.offset_s for job in jobs) + (schedule.chunks(tokens) + 1) * schedule.interval_s


def _problems(row: StreamsResult, limit_ms: float, records: list[RequestRecord]) -> list[str]:
    """The criterion: every request succeeded, every chunk arrived, and the p99 of the timing
    error, the dispatch lag and the event-loop lag each stayed within one step interval."""
    problems = []
    if row.errors:
        first = next(r.error for r in records if not r.ok)
        problems.append(f"{row.errors} requests failed ({first})")
    if row.chunks != row.expected_chunks:
        problems.append(f"{row.chunks} of {row.expected_chunks} chunks arrived")
    if row.error_p99_ms > limit_ms:
        problems.append(f"timing error p99 {row.error_p99_ms:.1f} ms > {limit_ms:g} ms")
    problems += client_problems(row.loop_lag, row.dispatch.p99_ms, limit_ms)
    if row.server_lag_p99_ms > limit_ms:
        problems.append(f"the mock server itself lagged (step lag p99 "
                        f"{row.server_lag_p99_ms:.1f} ms): inconclusive")
    return problems


@contextlib.contextmanager
def cpus_apart(server_cpus: int) -> Iterator[set[int] | None]:
    """Keep this process (and the client processes it starts) off the last `server_cpus`
    CPUs, for the mock server to run on (yielded; None where there are too few CPUs).

    Without it Linux tends to wake the client on the CPU of the server that wrote to it,
    where it waits until the server has written a whole step: at 64 streams that alone
    made the timing error p50 0.8 ms instead of 0.2 ms on a 2-vCPU VM.
    """
    try:
        mine = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        mine = set()
    if len(mine) <= server_cpus:
        yield None
        return
    server = set(sorted(mine)[-server_cpus:])
    try:
        os.sched_setaffinity(0, mine - server)
    except OSError:  # not allowed here: share the CPUs
        yield None
        return
    try:
        yield server
    finally:
        os.sched_setaffinity(0, mine)


def selftest_client(streams: Sequence[int], duration_s: float, tokens: int,
                    schedule: Schedule, processes: int = 1,
                    server_workers: int = 1) -> list[StreamsResult]:
    """The whole self-test: one mock server on CPUs of its own, one row per stream count."""
    with cpus_apart(server_workers) as server_cpus, \
            MockServer(schedule, workers=server_workers, cpus=server_cpus) as mock:
        return [measure_streams(mock, count, duration_s, tokens, processes)
                for count in streams]
