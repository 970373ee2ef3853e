"""`harness selftest client`: proof that the client is not what limits a measurement.

It starts the mock server (harness.mock) in its own processes, streams from it with the
harness's own client at each number of concurrent streams, and compares every chunk's arrival
stamp with the stamp the server took when it wrote that chunk. Both are time.perf_counter(),
CLOCK_MONOTONIC on Linux: one clock for every process on the machine.

The requests go through the executor that `harness run` uses (harness.load.generator), from
one process or several sharing one start (harness.load.processes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from harness.contract.plan import PhaseSpec, Point
from harness.contract.records import RequestRecord, requests_table
from harness.load.health import LagSummary, client_problems
from harness.load.processes import run_in_processes
from harness.load.workload import PlannedRequest
from harness.metrics.point_metrics import dispatch_lag
from harness.mock import MockServer, Schedule
from harness.store.requests_file import TableRequests


@dataclass(frozen=True)
class KeyedRequests:
    """Requests of `tokens` tokens whose first prompt token (index + 1) names them for the
    mock server's stamps (a RequestSource for the executor)."""

    tokens: int
    turns: int = 1
    think_time_s: float = 0.0

    def chain(self, index: int) -> list[PlannedRequest]:
        return [PlannedRequest([index + 1, 1, 1, 1], 4, self.tokens)]


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


def streams_point(streams: int, requests_per_stream: int, tokens: int,
                  schedule: Schedule) -> Point:
    """`streams` streams of back-to-back requests, as one open-loop phase of explicit send
    times: request j of stream s leaves at (j + s/streams) request lengths (a request length
    is its steps plus two, so one request has ended before the next leaves; the streams start
    spread over the first one, as they would be in a steady load)."""
    period = request_length(tokens, schedule)
    offsets = sorted((turn + stream / streams) * period
                     for stream in range(streams) for turn in range(requests_per_stream))
    return Point(f"streams{streams}", "open",
                 (PhaseSpec("main", None, len(offsets), None, None, offsets=tuple(offsets)),))


def request_length(tokens: int, schedule: Schedule) -> float:
    return (schedule.chunks(tokens) + 2) * schedule.interval_s


def measure_streams(mock: MockServer, streams: int, duration_s: float, tokens: int,
                    processes: int = 1, timeout_s: float = 60.0) -> StreamsResult:
    """Stream from the running mock for about `duration_s` at `streams` concurrent streams."""
    schedule = mock.schedule
    per_stream = max(1, round(duration_s / request_length(tokens, schedule)))
    point = streams_point(streams, per_stream, tokens, schedule)
    mock.take_stamps()  # forget what came before
    result = run_in_processes(mock.handle(), point, KeyedRequests(tokens), processes=processes,
                              connections=streams, timeout_s=timeout_s)
    reports = mock.take_stamps()
    written = {key: stamps for report in reports for key, stamps in report["requests"]}
    errors_s, chunks = [], 0
    for record in result.records:
        chunks += len(record.chunk_times)
        stamps = written.get(record.index + 1, [])
        errors_s += [arrived - sent for arrived, sent in zip(record.chunk_times, stamps,
                                                             strict=False)]
    failed = sum(not r.ok for r in result.records)
    offsets = point.phases[0].offsets
    expected = len(offsets) * schedule.chunks(tokens)
    last_chunk = max((r.last_token_time or result.start for r in result.records),
                     default=result.start)
    window = max(last_chunk - result.start, 1e-9)
    error = LagSummary.of(errors_s)
    row = StreamsResult(
        streams, len(offsets), failed, chunks, expected, window,
        expected / _span(offsets, tokens, schedule), chunks / window,
        error.p50_ms, error.p99_ms, error.max_ms, dispatch_summary(result.records),
        result.loop_lag,
        max((r["step_lag_p99_s"] for r in reports), default=0.0) * 1e3, [])
    row.problems = _problems(row, schedule.interval_s * 1e3, result.records)
    return row


def dispatch_summary(records: Sequence[RequestRecord]) -> LagSummary:
    """The dispatch lag (harness.metrics.point_metrics.dispatch_lag) of these records,
    summarized: read as the metrics read a point's requests, from the table they make."""
    batches = TableRequests(requests_table(list(records), 0.0)).batches()
    lags = np.concatenate([np.empty(0), *(dispatch_lag(batch.rows) for batch in batches)])
    return LagSummary.of(lags[~np.isnan(lags)].tolist())


def _span(offsets: Sequence[float], tokens: int, schedule: Schedule) -> float:
    """From the start to the last chunk of the last request, on schedule."""
    return max(offsets) + (schedule.chunks(tokens) + 1) * schedule.interval_s


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
