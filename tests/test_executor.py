"""The executor against a small streaming peer: open-loop timing, closed-loop limits, phases,
retries and conversations."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from harness.config.load import RetryConfig, WorkloadConfig
from harness.contract.plan import PhaseSpec, Point
from harness.contract.server import ServerHandle
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.load.generator import Prebuilt, chains_needed, run_point
from harness.load.health import dispatch_at
from harness.load.workload import Workload

from .requests_files import metrics_of
from .sse_peer import running_peer

VOCAB = list(range(3, 259))


def run(point: Point, scenario: str = "multi-token", retry: RetryConfig | None = None,
        **workload):
    config = WorkloadConfig(**({"input_tokens": 8, "output_tokens": 6} | workload))

    async def go():
        async with running_peer() as (url, payloads):
            server = ServerHandle(url, scenario, VLLM_EXTENSIONS)
            result = await run_point(server, point, Workload(config, VOCAB, None, 0, 1, 2),
                                     seed=0, salt=3, timeout_s=5, retry=retry or RetryConfig())
            return result, payloads
    return asyncio.run(go())


def open_phase(rate, duration=None, requests=None, name="main", arrival="constant"):
    return PhaseSpec(name, duration, requests, None, (rate, rate), arrival)


def test_open_loop_sends_on_schedule(tmp_path):
    result, payloads = run(Point("r20", "open", (open_phase(20.0, requests=10),)))
    assert len(result.records) == len(payloads) == 10
    intended = [r.intended_time - result.start for r in result.records]
    assert intended == pytest.approx([i * 0.05 for i in range(10)])
    lags = [r.send_time - r.intended_time for r in result.records]
    # the intended times above are exact; the actual sends follow them (the bounds leave room
    # for a loaded machine: a late timer there is scheduling, not the executor)
    assert min(lags) >= 0 and sorted(lags)[5] < 0.005 and max(lags) < 0.1, \
        "requests go out when the schedule says"
    m = metrics_of(tmp_path, result.records, result.start, result.end)
    assert m.dispatch_lag_ms.n == 10 and m.ttft_from_intended_ms.n == 10
    assert m.ttft_from_intended_ms.p50 >= m.ttft_ms.p50


def test_closed_loop_sends_exactly_the_budget():
    phase = PhaseSpec("main", None, 7, 3, None)
    result, payloads = run(Point("c3", "closed", (phase,)))
    assert len(result.records) == len(payloads) == 7
    assert all(r.intended_time is None for r in result.records)


def test_profile_phases_keep_their_own_records_and_windows():
    phases = (open_phase(20.0, duration=0.5, name="average"),
              open_phase(60.0, duration=0.5, name="peak"))
    result, _ = run(Point("day", "profile", phases))
    names = [r.phase for r in result.records]
    assert names.count("average") == 10 and names.count("peak") == 30
    average, peak = result.phases
    assert peak.start == pytest.approx(average.start + 0.5)
    assert all(r.intended_time >= peak.start for r in result.records if r.phase == "peak")


def test_retries_are_recorded_and_counted(tmp_path):
    retry = RetryConfig(max_tries=3, backoff_s=0.01)
    result, _ = run(Point("c2", "closed", (PhaseSpec("main", None, 4, 2, None),)),
                    scenario="fail-first", retry=retry)
    assert len(result.records) == 8  # every request failed once, then succeeded
    m = metrics_of(tmp_path, result.records, result.start, result.end)
    assert (m.requests, m.attempts, m.completed, m.errors) == (4, 8, 4, 0)
    assert m.retried_requests == 4 and m.failed_attempts == 4
    assert m.retry_prompt_tokens == 4 * 8


def test_without_retries_a_failure_is_an_error(tmp_path):
    result, _ = run(Point("c2", "closed", (PhaseSpec("main", None, 4, 2, None),)),
                    scenario="fail-first")
    m = metrics_of(tmp_path, result.records, result.start, result.end)
    assert (m.requests, m.errors, m.error_rate) == (4, 4, 1.0)


def test_conversation_turns_go_in_order_with_growing_prompts():
    result, payloads = run(Point("c1", "closed", (PhaseSpec("main", None, 2, 1, None),)),
                           conversation={"turns": 3})
    assert [r.index for r in result.records] == [0, 1, 2, 3, 4, 5]
    sizes = [len(p["prompt"]) for p in payloads]
    assert sizes == [8, 8 + 6 + 8, 8 + 6 + 8 + 6 + 8] * 2


class CountingSource:
    """A Workload that counts which chains were built, and when."""

    def __init__(self, workload: Workload):
        self.workload, self.built = workload, []
        self.turns, self.think_time_s = workload.turns, workload.think_time_s

    def chain(self, index: int):
        self.built.append(index)
        return self.workload.chain(index)


def test_prebuilt_prompts_are_every_chain_the_point_sends_and_the_same_ones():
    point = Point("peak", "profile", (open_phase(40.0, duration=0.5, name="average",
                                                 arrival="poisson"),
                                      PhaseSpec("burst", None, 5, 2, None)))
    config = WorkloadConfig(input_tokens=8, output_tokens=6)
    source = CountingSource(Workload(config, VOCAB, None, 0, 1, 2))
    requests = Prebuilt(source, chains_needed(point, seed=0, salt=3))
    built_up_front = list(source.built)

    async def go():
        async with running_peer() as (url, payloads):
            server = ServerHandle(url, "multi-token", VLLM_EXTENSIONS)
            result = await run_point(server, point, requests, seed=0, salt=3, timeout_s=5,
                                     retry=RetryConfig())
            return result, payloads
    result, payloads = asyncio.run(go())
    sent = sorted(r.index for r in result.records)
    assert built_up_front == sent, "exactly the chains sent were built before the start"
    assert source.built == built_up_front, "none was built while the point ran"
    fresh = Workload(config, VOCAB, None, 0, 1, 2)
    assert sorted(tuple(p["prompt"]) for p in payloads) == sorted(
        tuple(fresh.chain(i)[0].prompt) for i in sent), "prebuilding changes no prompt"


def test_without_keeping_records_every_attempt_goes_to_on_record_and_none_stays(
        tmp_path):
    """`harness run` keeps no record in memory: each finished attempt goes to its spool."""
    point = Point("r40", "open", (open_phase(40.0, requests=12),))
    config = WorkloadConfig(input_tokens=8, output_tokens=6)
    seen = []

    async def go():
        async with running_peer() as (url, payloads):
            server = ServerHandle(url, "multi-token", VLLM_EXTENSIONS)
            result = await run_point(server, point, Workload(config, VOCAB, None, 0, 1, 2),
                                     seed=0, salt=3, timeout_s=5, retry=RetryConfig(),
                                     on_record=seen.append, keep_records=False)
            return result, payloads

    result, payloads = asyncio.run(go())
    assert result.records == [] and len(seen) == len(payloads) == 12
    assert sorted(r.index for r in seen) == list(range(12))
    assert metrics_of(tmp_path, seen, result.start, result.end).completed == 12


def test_dispatch_starts_each_item_at_its_time_and_lets_finished_tasks_go():
    started, alive = [], []

    async def go():
        loop_start = time.perf_counter() + 0.02
        times = loop_start + np.array([0.03, 0.0, 0.01, 0.02])

        async def job(k: int, at: float) -> None:
            started.append((k, time.perf_counter() - at))
            alive.append(sum(not t.done() for t in asyncio.all_tasks()))
            await asyncio.sleep(0.001)

        await dispatch_at(times, job)
        return asyncio.all_tasks()

    left = asyncio.run(go())
    assert [k for k, _ in started] == [1, 2, 3, 0]  # in time order
    assert all(0 <= late < 0.05 for _, late in started)
    assert len(left) == 1  # the main task: every job's task is over and let go


def test_dispatch_raises_the_first_error_and_cancels_the_rest():
    cancelled = []

    async def go():
        start = time.perf_counter()

        async def job(k: int, at: float) -> None:
            try:
                if k == 0:
                    raise RuntimeError("send failed")
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cancelled.append(k)
                raise

        await dispatch_at(start + np.array([0.01, 0.0, 0.0]), job)

    with pytest.raises(RuntimeError, match="send failed"):
        asyncio.run(go())
    assert sorted(cancelled) == [1, 2]
