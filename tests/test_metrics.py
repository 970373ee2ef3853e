"""Metric definitions against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.metrics import (
    burst_tokens,
    distribution,
    e2e,
    itls,
    itls_per_token,
    point_metrics,
    tpot,
    ttft,
)
from harness.records import RequestRecord


def record(index=0, send=0.0, chunks=(), tokens=None, usage=None, error=None, max_tokens=None):
    tokens = list(tokens) if tokens is not None else [1] * len(chunks)
    n = usage if usage is not None else sum(tokens)
    return RequestRecord(index=index, input_tokens=10, max_tokens=max_tokens or n, send_time=send,
                         done_time=(chunks[-1] if chunks else send) + 0.001,
                         chunk_times=list(chunks), chunk_tokens=tokens,
                         prompt_tokens=None if error else 10,
                         completion_tokens=None if error else n, error=error)


def test_per_request_definitions():
    r = record(send=1.0, chunks=[1.2, 1.3, 1.5, 1.6])
    assert ttft(r) == pytest.approx(0.2)
    assert e2e(r) == pytest.approx(0.6)
    assert tpot(r) == pytest.approx((0.6 - 0.2) / 3)
    assert itls(r) == pytest.approx([0.1, 0.2, 0.1])


def test_tpot_divides_by_tokens_not_chunks():
    # two chunks carrying 1 and 4 tokens: 5 tokens, TPOT over 4 gaps; ITL stays per chunk
    r = record(send=0.0, chunks=[0.1, 0.5], tokens=[1, 4])
    assert tpot(r) == pytest.approx(0.4 / 4)
    assert itls(r) == pytest.approx([0.4])


def test_single_token_has_no_tpot():
    assert tpot(record(chunks=[0.1])) is None


def test_point_metrics_hand_computed():
    records = [
        record(0, 0.0, [0.1, 0.2, 0.3]),
        record(1, 0.0, [0.2, 0.4, 0.6]),
        record(2, 0.1, [], error="HTTP 400: too long"),
    ]
    m = point_metrics(records, start=0.0, end=2.0)
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


def test_output_length_mismatch_is_counted():
    short = record(0, 0.0, [0.1, 0.2], max_tokens=5)
    assert point_metrics([short], 0.0, 1.0).output_length_mismatches == 1


def test_empty_sample_has_count_zero_and_no_values():
    d = distribution([])
    assert d.n == 0 and d.p99 is None


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_are_numpy_linear_and_ordered(values):
    d = distribution(values)
    expected = np.percentile(np.asarray(values) * 1000, [50, 90, 95, 99])
    assert [d.p50, d.p90, d.p95, d.p99] == pytest.approx(expected.tolist())
    assert d.p50 <= d.p90 <= d.p95 <= d.p99 or math.isclose(d.p50, d.p99)
    assert d.n == len(values)


def test_itl_per_token_spreads_a_chunk_gap_over_its_tokens():
    r = record(send=0.0, chunks=[0.1, 0.5], tokens=[1, 4])
    assert itls_per_token(r) == pytest.approx([0.1, 0.1, 0.1, 0.1])


def test_bursts_are_flagged_not_reported_as_speed():
    # 32 tokens: the first at 0.2 s, then all within 0.3 ms (what the 2-core CPU engine does)
    burst = record(send=0.0, chunks=[0.2 + k * 0.00001 for k in range(32)])
    steady = record(index=1, send=0.0, chunks=[0.2 + k * 0.02 for k in range(32)])
    assert burst_tokens(burst) == (31, 31)
    assert burst_tokens(steady) == (0, 31)
    m = point_metrics([burst], 0.0, 1.0)
    assert m.burst_delivery and m.burst_share == pytest.approx(1.0)
    assert not point_metrics([steady], 0.0, 1.0).burst_delivery


def test_multi_token_chunks_count_as_bursts():
    # stream interval 4: chunks of 1, 4, 4 tokens 20 ms apart: 6 of 8 later tokens came at once
    r = record(send=0.0, chunks=[0.1, 0.12, 0.14], tokens=[1, 4, 4])
    assert burst_tokens(r) == (6, 8)


def test_confidence_intervals_bracket_the_percentiles_and_small_samples_are_flagged():
    d = distribution(np.linspace(0.01, 1.0, 50))
    assert d.p99_low_n
    for p in ("p50", "p90", "p99"):
        low, high = getattr(d, f"{p}_ci")
        assert low <= getattr(d, p) <= high
    assert not distribution(np.linspace(0.01, 1.0, 500)).p99_low_n
