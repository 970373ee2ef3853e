"""`harness selftest client`, the lag measures, the jobs runner, and the fast client's
equivalence with the aiohttp one."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time

import aiohttp
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.contract.records import RequestRecord
from harness.contract.server import INCLUDE_USAGE, ServerHandle
from harness.engines.transformers import TRANSFORMERS_EXTENSIONS
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.load.client import stream_completion
from harness.load.health import (
    LAG_STEP_S,
    LagSummary,
    LagTally,
    LoopLag,
    client_problems,
)
from harness.load.processes import run_in_processes
from harness.load.session import StreamSession
from harness.mock import MockServer, Schedule
from harness.run.selftest import (
    KeyedRequests,
    StreamsResult,
    _problems,
    cpus_apart,
    dispatch_summary,
    selftest_client,
    streams_point,
)

from .aiohttp_reference import stream_completion_aiohttp
from .sse_peer import running_peer

SCHEDULE = Schedule(0.005)


def test_selftest_measures_and_reports_every_row():
    rows = selftest_client([1, 8], duration_s=0.3, tokens=8, schedule=SCHEDULE)
    assert [row.streams for row in rows] == [1, 8]
    for row in rows:
        assert row.errors == 0 and row.chunks == row.expected_chunks > 0
        assert row.requests == row.streams * round(0.3 / ((8 + 2) * 0.005))
        assert 0 <= row.error_p50_ms <= row.error_p99_ms <= row.error_max_ms < 1000
        assert row.chunks_per_s > 0 and row.offered_per_s > 0
        assert row.dispatch.n == row.requests and row.loop_lag.n > 0


def app() -> typer.Typer:
    from harness.cli import app as harness_app

    return harness_app


def test_the_command_prints_json_and_exits_by_its_verdict():
    result = CliRunner().invoke(app(), ["selftest", "client", "--streams", "2", "--duration",
                                        "0.2", "--tokens", "4", "--interval-ms", "5",
                                        "--format", "json"])
    report = json.loads(result.stdout)
    row = report["rows"][0]
    assert row["streams"] == 2 and row["errors"] == 0
    assert result.exit_code == (0 if row["kept_up"] else 1)


def test_bad_stream_counts_are_a_user_error():
    result = CliRunner().invoke(app(), ["selftest", "client", "--streams", "1,x"])
    assert result.exit_code == 2
    assert "--streams" in result.stderr and "Traceback" not in result.stderr


def test_the_verdict_names_each_reason():
    row = StreamsResult(64, 10, 1, 90, 100, 1.0, 6400.0, 5000.0, 0.5, 12.0, 30.0,
                        LagSummary(10, 1, 11, 12), LagSummary(10, 1, 2, 3), 20.0, [])
    failed = RequestRecord(0, 4, 8, 0.0, error="HTTP 500: x")
    problems = _problems(row, 10.0, [failed])
    assert problems == ["1 requests failed (HTTP 500: x)", "90 of 100 chunks arrived",
                        "timing error p99 12.0 ms > 10 ms", "dispatch lag p99 11.0 ms > 10 ms",
                        "the mock server itself lagged (step lag p99 20.0 ms): inconclusive"]


def test_loop_lag_sees_a_blocked_loop():
    async def go(block_s: float) -> LagSummary:
        async with LoopLag(0.002) as lag:
            await asyncio.sleep(0.03)
            time.sleep(block_s)  # what a slow callback does to everything else
            await asyncio.sleep(0.03)
        return lag.summary()
    blocked = asyncio.run(go(0.05))
    assert blocked.n > 2 and blocked.max_ms >= 40
    assert client_problems(blocked, None, limit_ms=10)[0].startswith(
        "event-loop lag p99")
    assert asyncio.run(go(0.0)).max_ms < 40


def test_dispatch_lag_is_send_minus_intended_of_first_attempts():
    records = [RequestRecord(0, 1, 1, send_time=1.002, intended_time=1.0),
               RequestRecord(1, 1, 1, send_time=2.0, intended_time=None),  # closed loop
               RequestRecord(2, 1, 1, send_time=3.010, intended_time=3.0),
               # a retry keeps its first attempt's intended time: its backoff is no lag
               RequestRecord(2, 1, 1, send_time=4.5, intended_time=3.0, attempt=2)]
    lag = dispatch_summary(records)
    assert lag.n == 2 and lag.max_ms == pytest.approx(10)
    assert lag.p99_ms == pytest.approx(2 + 8 * 0.99)  # between 2 and 10 ms, linearly
    assert client_problems(LagSummary(), lag.p99_ms, limit_ms=5) == [
        "dispatch lag p99 9.9 ms > 5 ms"]


def test_two_client_processes_share_one_clock_and_the_schedule():
    point = streams_point(4, 2, 3, SCHEDULE)
    offsets = point.phases[0].offsets
    with MockServer(SCHEDULE) as mock:
        result = run_in_processes(mock.handle(), point, KeyedRequests(3), processes=2,
                                  connections=4, timeout_s=10)
        written = {k: s for r in mock.take_stamps() for k, s in r["requests"]}
    assert multiprocessing.active_children() == []
    assert [r.index for r in result.records] == list(range(8))
    for record, offset in zip(result.records, offsets, strict=True):
        assert record.ok, record.error
        assert record.intended_time == pytest.approx(result.start + offset)
        assert record.send_time >= record.intended_time
        stamps = written[record.index + 1]
        assert all(w <= a for w, a in zip(stamps, record.chunk_times, strict=True))


SCENARIOS = [("multi-token", VLLM_EXTENSIONS, 5.0), ("multi-token", {INCLUDE_USAGE}, 5.0),
             ("error-mid-stream", VLLM_EXTENSIONS, 5.0), ("http-400", VLLM_EXTENSIONS, 5.0),
             ("hang", VLLM_EXTENSIONS, 0.3), ("no-tokens", VLLM_EXTENSIONS, 5.0),
             ("usage-on-finish-chunk", TRANSFORMERS_EXTENSIONS, 5.0),
             ("echo-auth", VLLM_EXTENSIONS, 5.0)]


def test_the_fast_session_records_exactly_what_aiohttp_does():
    def essence(record: RequestRecord) -> tuple:
        return (record.chunk_tokens, len(record.chunk_times), record.prompt_tokens,
                record.completion_tokens, record.finish_reason, record.error)

    async def go():
        async with running_peer() as (url, _):
            for scenario, extensions, timeout_s in SCENARIOS:
                server = ServerHandle(url, scenario, frozenset(extensions),
                                      headers={"Authorization": "Bearer sk-9"}, secret="sk-9")
                async with aiohttp.ClientSession() as session:
                    slow = await stream_completion_aiohttp(session, server, 0, [5, 6], 6,
                                                           timeout_s)
                async with StreamSession() as session:  # twice: a kept-alive connection too
                    fast = [await stream_completion(session, server, 0, [5, 6], 6, timeout_s)
                            for _ in range(2)]
                assert essence(fast[0]) == essence(fast[1]) == essence(slow), scenario
                for record in fast:
                    assert record.send_time <= (record.first_token_time or record.done_time)
                    assert (record.last_token_time or record.send_time) <= record.done_time
    asyncio.run(go())


def test_cpus_apart_gives_the_server_its_own_cpu_and_gives_it_back():
    mine = os.sched_getaffinity(0)
    with cpus_apart(1) as server:
        if len(mine) > 1:
            assert server == {max(mine)} and os.sched_getaffinity(0) == mine - server
        else:
            assert server is None
    assert os.sched_getaffinity(0) == mine


@given(st.lists(st.floats(0.0, 0.2), min_size=1, max_size=300))
def test_the_loop_lag_tally_agrees_with_every_sample_kept(lags):
    tally = LagTally()
    for lag in lags:
        tally.add(lag)
    counted, kept = tally.summary(), LagSummary.of(lags)
    step_ms = LAG_STEP_S * 1e3
    assert counted.n == kept.n and counted.max_ms == kept.max_ms
    assert counted.p50_ms == pytest.approx(kept.p50_ms, abs=step_ms)
    assert counted.p99_ms == pytest.approx(kept.p99_ms, abs=step_ms)
