"""Metric definitions against hand-computed values, read from requests files as a run reads
them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.contract.records import RequestRecord
from harness.metrics.point_metrics import (
    BURST_GAP_S,
    PhaseSpan,
    burst_tokens,
    e2e,
    itl,
    itl_per_token,
    phase_metrics,
    point_metrics,
    tpot,
    ttft,
)
from harness.metrics.samples import distribution

from .requests_files import requests_file, rows_of


def record(index=0, send=0.0, chunks=(), tokens=None, usage=None, error=None, max_tokens=None):
    tokens = list(tokens) if tokens is not None else [1] * len(chunks)
    n = usage if usage is not None else sum(tokens)
    return RequestRecord(index=index, input_tokens=10, max_tokens=max_tokens or n, send_time=send,
                         done_time=(chunks[-1] if chunks else send) + 0.001,
                         chunk_times=list(chunks), chunk_tokens=tokens,
                         prompt_tokens=None if error else 10,
                         completion_tokens=None if error else n, error=error)


def gaps_of(records):
    """Each record's own gaps between chunks, pooled: ITL computed record by record."""
    return [b - a for r in records
            for a, b in zip(r.chunk_times, r.chunk_times[1:], strict=False)]


def gaps_per_token_of(records):
    return [(b - a) / k for r in records
            for a, b, k in zip(r.chunk_times, r.chunk_times[1:], r.chunk_tokens[1:],
                               strict=False)
            for _ in range(k)]


def bursts_of(records):
    """(tokens that came in a burst, tokens after the first), record by record."""
    burst = sum(k - 1 for r in records for k in r.chunk_tokens)
    burst += sum(gap < BURST_GAP_S for gap in gaps_of(records))
    return burst, sum(max(sum(r.chunk_tokens) - 1, 0) for r in records)


def test_per_request_definitions(tmp_path):
    r = record(send=1.0, chunks=[1.2, 1.3, 1.5, 1.6])
    rows = rows_of(tmp_path, [r])
    assert ttft(rows)[0] == pytest.approx(0.2)
    assert e2e(rows)[0] == pytest.approx(0.6)
    assert tpot(rows)[0] == pytest.approx((0.6 - 0.2) / 3)


def test_tpot_divides_by_tokens_not_chunks(tmp_path):
    # two chunks carrying 1 and 4 tokens: 5 tokens, TPOT over 4 gaps; ITL stays per chunk
    r = record(send=0.0, chunks=[0.1, 0.5], tokens=[1, 4])
    assert tpot(rows_of(tmp_path, [r]))[0] == pytest.approx(0.4 / 4)
    m = point_metrics(requests_file(tmp_path, [r]), 1.0)
    assert m.itl_ms.n == 1 and m.itl_ms.p50 == pytest.approx(400.0)


def test_single_token_has_no_tpot(tmp_path):
    assert np.isnan(tpot(rows_of(tmp_path, [record(chunks=[0.1])]))[0])


def test_point_metrics_hand_computed(tmp_path):
    records = [
        record(0, 0.0, [0.1, 0.2, 0.3]),
        record(1, 0.0, [0.2, 0.4, 0.6]),
        record(2, 0.1, [], error="HTTP 400: too long"),
    ]
    m = point_metrics(requests_file(tmp_path, records), 2.0)
    assert (m.requests, m.completed, m.errors) == (3, 2, 1)
    assert m.error_rate == pytest.approx(1 / 3)
    assert m.prompt_tokens == 20 and m.output_tokens == 6
    assert m.request_throughput == pytest.approx(1.0)
    assert m.output_throughput == pytest.approx(3.0)
    assert m.total_token_throughput == pytest.approx(13.0)
    assert m.ttft_ms.n == 2 and m.ttft_ms.mean == pytest.approx(150.0)
    assert m.e2e_ms.p50 == pytest.approx(450.0)
    assert m.tpot_ms.mean == pytest.approx((100.0 + 200.0) / 2)
    assert m.itl_ms.n == 4
    assert m.output_length_mismatches == 0
    assert m.errors_by_kind == {"other": 1}


def test_output_length_mismatch_is_counted(tmp_path):
    short = record(0, 0.0, [0.1, 0.2], max_tokens=5)
    assert point_metrics(requests_file(tmp_path, [short]), 1.0).output_length_mismatches == 1


def test_empty_sample_has_count_zero_and_no_values():
    d = distribution([])
    assert d.n == 0 and d.p99 is None


def test_a_point_without_requests_has_no_samples(tmp_path):
    m = point_metrics(requests_file(tmp_path, []), 1.0)
    assert (m.requests, m.completed, m.ttft_ms.n, m.itl_ms.n) == (0, 0, 0, 0)
    assert m.error_rate == 0.0 and m.burst_share is None


def test_percentiles_interpolate_linearly_between_ranks():
    # 1, 2, 3, 4 s: the p-th percentile sits at rank p/100 x 3 between them (as numpy's and
    # vllm bench serve's default): p50 at 1.5 -> 2.5 s, p90 at 2.7 -> 3.7 s, p99 at 2.97
    d = distribution([1.0, 2.0, 3.0, 4.0])
    assert (d.n, d.mean) == (4, pytest.approx(2500.0))
    assert [d.p50, d.p90, d.p95, d.p99] == pytest.approx([2500.0, 3700.0, 3850.0, 3970.0])
    assert distribution([0.25]).p99 == pytest.approx(250.0)


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_within_the_sample(values):
    d = distribution(values)
    assert min(values) * 1000 - 1e-6 <= d.p50 <= d.p90 <= d.p95 <= d.p99
    assert d.p99 <= max(values) * 1000 + 1e-6
    assert d.n == len(values)


def test_open_loop_latencies_also_count_from_the_intended_send(tmp_path):
    # scheduled at 1.0, sent 0.3 s late, first token 0.1 s after sending, last 0.5 s after
    late = record(send=1.3, chunks=[1.4, 1.6, 1.8])
    late.intended_time = 1.0
    m = point_metrics(requests_file(tmp_path, [late], start=1.0), 1.0)
    assert m.ttft_ms.p50 == pytest.approx(100.0) and m.e2e_ms.p50 == pytest.approx(500.0)
    assert m.ttft_from_intended_ms.p50 == pytest.approx(400.0)
    assert m.e2e_from_intended_ms.p50 == pytest.approx(800.0)
    assert m.dispatch_lag_ms.p50 == pytest.approx(300.0)


def test_a_retried_request_counts_once_with_its_final_attempt(tmp_path):
    # request 0 failed after streaming 2 tokens, then succeeded in 0.4 s; request 1 failed
    # twice (its last attempt is the error); request 2 succeeded at once
    first = record(0, 0.0, [0.1, 0.2], error="HTTP 500: overloaded")
    first.chunk_tokens = [1, 1]
    first.error_kind = "http"
    retry = record(0, 1.0, [1.1, 1.2, 1.4])
    retry.attempt = 2
    lost = [record(1, 0.0, [], error="timeout after 5 s"), record(1, 1.0, [], error="x")]
    lost[0].error_kind, lost[1].error_kind = "timeout", "reset"
    lost[1].attempt = 2
    records = [first, lost[0], record(2, 0.0, [0.3, 0.5, 0.6]), retry, lost[1]]
    m = point_metrics(requests_file(tmp_path, records, batch_records=2), 2.0)
    assert (m.requests, m.attempts, m.completed, m.errors) == (3, 5, 2, 1)
    assert (m.failed_attempts, m.retried_requests) == (3, 2)
    assert m.error_rate == pytest.approx(1 / 3)
    assert m.errors_by_kind == {"reset": 1}  # the last attempt's cause, not the first's
    assert m.e2e_ms.n == 2 and m.e2e_ms.p50 == pytest.approx(500.0)  # of 400 and 600 ms
    assert m.retry_prompt_tokens == 3 * 10 and m.retry_output_tokens == 2
    assert m.output_tokens == 6 and m.prompt_tokens == 20


def test_each_phase_is_measured_over_its_own_window_and_its_drain(tmp_path):
    a = record(0, 0.5, [0.6, 0.7])
    a.phase = "average"
    b = [record(i, 2.0 + i / 10, [2.5 + i / 10, 2.6 + i / 10]) for i in range(1, 4)]
    for r in b:
        r.phase = "peak"
    spans = [PhaseSpan("average", 0.0, 2.0), PhaseSpan("peak", 2.0, 4.0)]
    phases = phase_metrics(requests_file(tmp_path, [a, *b]), spans)
    assert phases["average"].duration_s == pytest.approx(2.0)
    assert phases["average"].request_throughput == pytest.approx(0.5)
    assert phases["peak"].requests == 3 and phases["peak"].duration_s == pytest.approx(2.0)
    late = record(9, 3.9, [4.5, 5.0])
    late.phase = "peak"
    drained = phase_metrics(requests_file(tmp_path, [a, *b, late]), spans)["peak"]
    assert drained.duration_s == pytest.approx(5.0 + 0.001 - 2.0)  # to its last reply


def chunked(index, send, gaps, tokens):
    times = (send + np.cumsum(gaps)).tolist()
    return record(index, send, times, tokens=tokens)


records_with_chunks = st.lists(st.integers(0, 6).flatmap(lambda n: st.tuples(
    st.lists(st.floats(1e-5, 0.01), min_size=n, max_size=n),
    st.lists(st.integers(1, 4), min_size=n, max_size=n))), max_size=12)


@settings(max_examples=40, deadline=None)
@given(records_with_chunks, st.integers(1, 5))
def test_pooled_gaps_and_bursts_are_each_records_never_across_records(tmp_path_factory, drawn,
                                                                      batch):
    records = [chunked(i, float(i), gaps, tokens) for i, (gaps, tokens) in enumerate(drawn)]
    stored = requests_file(tmp_path_factory.mktemp("pooled"), records, batch_records=batch)
    found, per_token, bursts = [], [], [0, 0]
    for read in stored.batches(chunks=True):
        everyone = np.ones(len(read.rows), dtype=bool)
        found += itl(read.chunks, everyone).tolist()
        per_token += itl_per_token(read.chunks, everyone).tolist()
        bursts = np.add(bursts, burst_tokens(read.rows, read.chunks, everyone)).tolist()
    assert found == pytest.approx(gaps_of(records))
    assert per_token == pytest.approx(gaps_per_token_of(records))
    assert tuple(bursts) == bursts_of(records)


def test_bursts_are_flagged_not_reported_as_speed(tmp_path):
    # 32 tokens: the first at 0.2 s, then all within 0.3 ms (what the 2-core CPU engine does)
    burst = record(send=0.0, chunks=[0.2 + k * 0.00001 for k in range(32)])
    steady = record(index=1, send=0.0, chunks=[0.2 + k * 0.02 for k in range(32)])
    assert bursts_of([burst]) == (31, 31) and bursts_of([steady]) == (0, 31)
    m = point_metrics(requests_file(tmp_path, [burst]), 1.0)
    assert m.burst_delivery and m.burst_share == pytest.approx(1.0)
    assert not point_metrics(requests_file(tmp_path, [steady]), 1.0).burst_delivery


def test_multi_token_chunks_count_as_bursts(tmp_path):
    # stream interval 4: chunks of 1, 4, 4 tokens 20 ms apart: 6 of 8 later tokens came at once
    r = record(send=0.0, chunks=[0.1, 0.12, 0.14], tokens=[1, 4, 4])
    m = point_metrics(requests_file(tmp_path, [r]), 1.0)
    assert m.burst_share == pytest.approx(6 / 8)
    assert m.itl_per_token_ms.n == 8 and m.itl_per_token_ms.p50 == pytest.approx(5.0)


def test_confidence_intervals_bracket_the_percentiles_and_small_samples_are_flagged():
    d = distribution(np.linspace(0.01, 1.0, 50))
    assert d.p99_low_n
    for p in ("p50", "p90", "p99"):
        low, high = getattr(d, f"{p}_ci")
        assert low <= getattr(d, p) <= high
    assert not distribution(np.linspace(0.01, 1.0, 500)).p99_low_n


def test_beyond_the_bootstrap_limit_intervals_are_order_statistics(monkeypatch):
    import harness.metrics.samples as samples

    values = np.random.default_rng(5).exponential(0.05, 5_000)
    boot = distribution(values)
    monkeypatch.setattr(samples, "BOOTSTRAP_LIMIT", 1_000)
    ranked = distribution(values)
    ordered = np.sort(values) * 1000
    for p in (50, 90, 95, 99):
        assert getattr(ranked, f"p{p}") == getattr(boot, f"p{p}")
        low, high = getattr(ranked, f"p{p}_ci")
        assert low in ordered and high in ordered and low <= getattr(ranked, f"p{p}") <= high
        boot_low, boot_high = getattr(boot, f"p{p}_ci")
        assert high - low == pytest.approx(boot_high - boot_low, rel=0.5)
