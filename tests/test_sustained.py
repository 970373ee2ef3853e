"""A rate counts only if it is sustained: what arrives over the steady window is served, and
the latency of the last arrivals does not climb away from the first (docs/metrics.md)."""

from __future__ import annotations

from array import array

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from harness.config.slo import Slo
from harness.config.sustain import SustainConfig
from harness.contract.records import RequestRecord
from harness.metrics.samples import read
from harness.metrics.slo import judge
from harness.metrics.sustained import SustainTally

from .factories import metrics
from .requests_files import requests_file

RULES = SustainConfig()


def record(index: int, arrival: float, ttft: float, e2e: float, tokens: int = 4
           ) -> RequestRecord:
    """A request scheduled at `arrival`, sent then, its tokens spread over [ttft, e2e]."""
    times = np.linspace(arrival + ttft, arrival + e2e, tokens)
    return RequestRecord(index=index, input_tokens=8, max_tokens=tokens, send_time=arrival,
                         done_time=arrival + e2e, chunk_times=array("d", times),
                         chunk_tokens=array("i", [1] * tokens), prompt_tokens=8,
                         completion_tokens=tokens, intended_time=arrival)


def judged(tmp_path, records, rules: SustainConfig = RULES):
    tally = SustainTally(rules)
    read(requests_file(tmp_path, sorted(records, key=lambda r: r.done_time)), [tally])
    return tally.judge()


def test_a_server_that_keeps_up_sustains_its_rate(tmp_path):
    # 10 req/s for 10 s, each served in 200 ms
    found = judged(tmp_path, [record(i, i / 10, 0.05, 0.2) for i in range(100)])
    assert found.sustained, found.reason
    assert found.offered_rps == found.achieved_rps or abs(
        found.achieved_rps / found.offered_rps - 1) < 0.05
    assert found.waiting <= 3  # only what was in flight (10 req/s x 0.2 s)


def test_a_queue_that_grows_is_not_sustained_whatever_the_window_shows(tmp_path):
    # 20 req/s offered, one server finishing one request per 0.1 s: a queue grows
    records, free = [], 0.0
    for i in range(80):
        arrival = i / 20
        start = max(arrival, free)
        free = start + 0.1
        records.append(record(i, arrival, start - arrival + 0.02, free - arrival))
    found = judged(tmp_path, records)
    assert not found.sustained
    assert found.reason.startswith("achieved ") and " of " in found.reason
    assert found.achieved_rps < 0.6 * found.offered_rps and found.waiting > 30


def test_a_climbing_latency_is_not_sustained_though_every_request_completes(tmp_path):
    # everything completes, within a request or two of keeping up, but TTFT climbs 50 -> 300 ms
    records = [record(i, i / 10, 0.05 + 0.25 * i / 99, 0.06 + 0.25 * i / 99)
               for i in range(100)]
    found = judged(tmp_path, records)
    assert not found.sustained and found.reason.startswith("TTFT climbed")


def test_a_window_too_short_for_a_queue_to_show_is_not_taken_as_sustained(tmp_path):
    found = judged(tmp_path, [record(i, i / 10, 0.05, 0.2) for i in range(12)])
    assert not found.sustained and found.reason.startswith("too short to tell: ")
    longer = judged(tmp_path, [record(i, i / 10, 0.05, 0.2) for i in range(12)],
                    SustainConfig(min_requests=5))
    assert longer.sustained, longer.reason


def test_a_retried_request_arrives_with_its_first_attempt_and_ends_with_its_last(tmp_path):
    records = [record(i, i / 10, 0.05, 0.2) for i in range(100)]
    failed = record(100, 9.95, 0.01, 0.02)
    failed.fail("http", "HTTP 500")
    retry = record(100, 9.95, 0.5, 0.6)
    retry.attempt, retry.send_time = 2, 10.3
    found = judged(tmp_path, [*records, failed, retry])
    assert found.arrived == 100 + 1 - 2  # the window: first completion (0.2 s) to 9.95 s


@given(st.floats(min_value=0.01, max_value=0.5), st.integers(min_value=40, max_value=120))
def test_a_steady_server_at_any_latency_and_rate_is_sustained(tmp_path_factory, e2e, rate):
    tmp_path = tmp_path_factory.mktemp("steady")
    records = [record(i, i / rate, e2e / 4, e2e) for i in range(rate * 8)]
    found = judged(tmp_path, records)
    assert found.sustained, found.reason


def test_a_point_not_sustained_misses_its_slo_whatever_its_percentiles_say(tmp_path):
    records, free = [], 0.0
    for i in range(80):
        arrival, start = i / 20, max(i / 20, free)
        free = start + 0.1
        records.append(record(i, arrival, start - arrival + 0.02, free - arrival))
    found = judged(tmp_path, records)
    loose = Slo(ttft_p95_ms=60_000)
    assert judge(metrics(), loose).meets
    missed = judge(metrics(), loose, found)
    assert not missed.meets and missed.shortfall > 1.5
    assert missed.violations == [f"not sustained ({found.reason})"]
    assert judge(metrics(), loose, judged(tmp_path, [record(i, i / 10, 0.05, 0.2)
                                                      for i in range(100)])).meets


def test_the_report_draws_each_search_step_with_how_it_came_out(tmp_path):
    from harness.contract.results import SloVerdict, Sustained
    from harness.report.run_report.search import search_figure, search_frame
    from harness.store.run_store import RunStore

    from .factories import manifest, point_result, write_run

    slo = Slo(ttft_p95_ms=500)
    steps = {2.0: (True, True), 8.0: (True, False), 4.0: (False, True)}  # rate: meets, kept up
    points = [point_result("bf16-b4", "bf16", 4, None, metrics(), point=f"search-r{rate:g}",
                           kind="search", rate=rate,
                           slo=SloVerdict(limits=slo, meets=meets and kept, violations=[]),
                           sustained=Sustained(sustained=kept, offered_rps=rate,
                                               achieved_rps=rate if kept else rate / 2))
              for rate, (meets, kept) in steps.items()]
    run = manifest(config={"slo": {"ttft_p95_ms": 500}})
    found = RunStore(write_run(tmp_path / "run", points, run)).load()
    frame = search_frame(found).set_index("rate")
    assert frame.loc[8.0, "outcome"] == "not sustained" and frame.loc[8.0, "achieved"] == 4.0
    assert frame.loc[2.0, "outcome"] == "met" and frame.loc[4.0, "outcome"] == "missed"
    assert frame["limit"].unique().tolist() == ["ttft_p95_ms"]
    assert search_figure([found]).spec is not None
