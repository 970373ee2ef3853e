"""SLO checks, goodput, and the capacity search's logic."""

from __future__ import annotations

import pytest

from harness.config.slo import Slo
from harness.contract.records import RequestRecord
from harness.metrics.point_metrics import point_metrics
from harness.metrics.slo import goodput, judge
from harness.run.capacity_search import SearchStep, capacity_record, search

from .factories import metrics, point_result
from .requests_files import requests_file


def record(index, ttft, e2e, tokens=5, error=None, intended=None):
    chunks = [] if error else [ttft] + [ttft + (e2e - ttft) * (k + 1) / (tokens - 1)
                                        for k in range(tokens - 1)]
    return RequestRecord(index, 10, tokens, 0.0, done_time=e2e, chunk_times=chunks,
                         chunk_tokens=[1] * len(chunks), prompt_tokens=10,
                         completion_tokens=None if error else tokens, error=error,
                         intended_time=intended)


def test_violations_name_each_missed_limit(tmp_path):
    records = [record(i, 0.1 * (i + 1), 1.0) for i in range(10)]
    m = point_metrics(requests_file(tmp_path, records), 2.0)
    assert judge(m, Slo(ttft_p50_ms=1000)).violations == []
    missed = judge(m, Slo(ttft_p90_ms=500, max_error_rate=0.0)).violations
    assert len(missed) == 1 and missed[0].startswith("ttft_p90_ms 910.0 > 500")


def test_error_rate_limit(tmp_path):
    records = [record(0, 0.1, 1.0), record(1, 0.1, 1.0, error="HTTP 500")]
    m = point_metrics(requests_file(tmp_path, records), 1.0)
    assert judge(m, Slo(max_error_rate=0.25)).violations == ["error rate 0.5 > 0.25"]
    assert judge(m, Slo()).violations == ["error rate 0.5 > 0"], "no failed request by default"


def test_open_loop_slo_counts_from_the_intended_send(tmp_path):
    # sent 2 s late: TTFT from send is 0.1 s, from the schedule 2.1 s
    late = [RequestRecord(0, 10, 5, 2.0, done_time=3.0, chunk_times=[2.1, 2.5, 2.6, 2.7, 2.8],
                          chunk_tokens=[1] * 5, prompt_tokens=10, completion_tokens=5,
                          intended_time=0.0)]
    m = point_metrics(requests_file(tmp_path, late), 3.0)
    assert judge(m, Slo(ttft_p50_ms=500)).violations == ["ttft_p50_ms 2100.0 > 500"]


def test_goodput_counts_good_requests_and_misses_errors(tmp_path):
    records = [record(0, 0.1, 1.0), record(1, 0.9, 1.0), record(2, 0.1, 1.0, error="x")]
    stored = requests_file(tmp_path, records)
    assert goodput(stored, 2.0, Slo(ttft_p95_ms=500)) == pytest.approx(0.5)


def test_goodput_with_an_itl_limit_reads_failed_requests_without_tokens(tmp_path):
    # a failed request without a token last in its row group, beside ones that streamed
    records = [record(0, 0.1, 1.0), record(1, 0.1, 1.0, error="x"), record(2, 0.1, 1.0),
               record(3, 0.1, 1.0, error="y")]
    stored = requests_file(tmp_path, records, batch_records=2)
    assert goodput(stored, 1.0, Slo(itl_p99_ms=500)) == pytest.approx(2.0)


def fake_measure(capacity: float, calls: list):
    def measure(rate: float) -> SearchStep:
        calls.append(rate)
        return SearchStep(rate, f"search-r{rate:g}", rate <= capacity, [])
    return measure


def test_search_brackets_the_capacity_in_bounded_steps():
    calls: list[float] = []
    result = search(fake_measure(10.0, calls), 1.0, 64.0, 8)
    assert len(calls) <= 8
    assert result.best.rate <= 10.0
    failing = [s.rate for s in result.steps if not s.meets]
    assert min(failing) / result.best.rate < 1.5, "the bracket is tight after 8 steps"


def test_search_without_any_rate_meeting():
    result = search(fake_measure(0.5, []), 1.0, 8.0, 6)
    assert result.best is None and len(result.steps) == 1


def test_search_that_meets_at_the_top_stops_without_a_cap():
    calls: list[float] = []
    result = search(fake_measure(100.0, calls), 1.0, 8.0, 6)
    assert calls == [1.0, 8.0] and result.best.rate == 8.0


def test_a_top_that_meets_grows_the_range_until_a_rate_misses():
    calls: list[float] = []
    result = search(fake_measure(20.0, calls), 1.0, 8.0, 4, cap=64.0)
    assert calls[:4] == [1.0, 8.0, 16.0, 32.0]  # doubling above the top until a miss ...
    assert calls[4:] == [22.6, 19.0]  # ... then bisecting with the steps left
    assert result.best.rate == 19.0


def test_at_least_only_where_the_cap_itself_meets():
    calls: list[float] = []
    found = search(fake_measure(100.0, calls), 1.0, 8.0, 6, cap=50.0)
    assert calls == [1.0, 8.0, 16.0, 32.0, 50.0] and found.best.rate == 50.0
    points = {s.point: point_result("c", "v", 4, None, metrics(s.rate * 500, s.rate * 100),
                                    point=s.point, kind="search", rate=s.rate)
              for s in found.steps}
    assert capacity_record(found, points, Slo(ttft_p95_ms=500), 50.0).at_upper_bound


def test_the_bracket_is_what_the_server_delivered_at_the_rate_above():
    calls: list[float] = []
    found = search(fake_measure(10.0, calls), 1.0, 64.0, 6)
    # past saturation the server delivers less than it was offered: 12 req/s at most
    points = {s.point: point_result("c", "v", 4, None,
                                    metrics(min(s.rate, 12) * 500, min(s.rate, 12) * 100),
                                    point=s.point, kind="search", rate=s.rate)
              for s in found.steps}
    record_ = capacity_record(found, points, Slo(ttft_p95_ms=500))
    above = min(s.rate for s in found.steps if s.rate > found.best.rate)
    assert record_.bracket_rate_rps == above
    assert record_.bracket_output_throughput == min(above, 12) * 100  # measured there


def test_capacity_record_for_the_cost_model():
    calls: list[float] = []
    found = search(fake_measure(10.0, calls), 1.0, 64.0, 6)
    points = {s.point: point_result("c", "v", 4, None, metrics(s.rate * 500, s.rate * 100),
                                    point=s.point, kind="search", rate=s.rate)
              for s in found.steps}
    record_ = capacity_record(found, points, Slo(ttft_p95_ms=500))
    assert record_.meets_slo and record_.rate_rps == found.best.rate
    assert record_.output_throughput == found.best.rate * 100
    assert record_.point == found.best.point and len(record_.steps) == len(calls)
    assert not record_.at_upper_bound


def test_goodput_applies_tpot_and_itl_limits_to_each_request(tmp_path):
    # chunks at 0.1, 0.2, 0.3, 0.4, 0.5 s: TPOT 100 ms, ITL gaps 100 ms each
    steady = record(0, 0.1, 0.5)
    # chunks at 0.1, 0.11, 0.12, 0.13, 0.9 s: TPOT 200 ms, ITL gaps 10, 10, 10, 770 ms
    stalled = RequestRecord(1, 10, 5, 0.0, done_time=1.0,
                            chunk_times=[0.1, 0.11, 0.12, 0.13, 0.9], chunk_tokens=[1] * 5,
                            prompt_tokens=10, completion_tokens=5)
    records = requests_file(tmp_path, [steady, stalled])
    assert goodput(records, 1.0, Slo(tpot_p99_ms=150)) == pytest.approx(1.0)
    # ITL p50 / p99 of each request's own gaps: steady 100 / 100 ms; stalled 10 ms and
    # 10 + 760 x 0.97 = 747 ms. Each limit fails one request; both together fail both.
    assert goodput(records, 1.0, Slo(itl_p50_ms=50)) == pytest.approx(1.0)
    assert goodput(records, 1.0, Slo(itl_p99_ms=500)) == pytest.approx(1.0)
    assert goodput(records, 1.0, Slo(itl_p50_ms=50, itl_p99_ms=500)) == pytest.approx(0.0)
    assert goodput(records, 1.0, Slo(itl_mean_ms=150)) == pytest.approx(1.0)  # 197.5 ms
    assert goodput(records, 1.0, Slo(itl_mean_ms=300)) == pytest.approx(2.0)


def test_two_limits_on_one_metric_each_apply(tmp_path):
    records = requests_file(tmp_path, [record(0, 0.2, 1.0), record(1, 0.05, 1.0)])
    assert goodput(records, 1.0, Slo(ttft_p50_ms=1000)) == pytest.approx(2.0)
    assert goodput(records, 1.0, Slo(ttft_p50_ms=1000, ttft_p99_ms=150)) == pytest.approx(1.0)
    m = point_metrics(records, 1.0)  # TTFT p50 125 ms, p99 198.5 ms
    assert judge(m, Slo(ttft_p50_ms=1000, ttft_p99_ms=150)).violations == [
        "ttft_p99_ms 198.5 > 150"]


def test_the_shortfall_is_the_worst_ratio_to_a_limit(tmp_path):
    stored = requests_file(tmp_path, [record(0, 0.2, 1.0), record(1, 0.1, 1.0, error="x")])
    m = point_metrics(stored, 1.0)
    judged = judge(m, Slo(ttft_p50_ms=100, e2e_p50_ms=2000, max_error_rate=0.25))
    assert not judged.meets and judged.shortfall == pytest.approx(2.0)  # 200 ms / 100 ms
    assert judged.violations == ["ttft_p50_ms 200.0 > 100", "error rate 0.5 > 0.25"]
    assert judge(m, Slo(tpot_p50_ms=1, max_error_rate=1)).shortfall > 1
