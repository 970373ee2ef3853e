"""Exact order statistics read in passes, against numpy on the same values; and the pooled ITL
of a point beyond the in-memory limit against the same point held whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.contract.records import RequestRecord
from harness.metrics import quantiles
from harness.metrics.point_metrics import PERCENTILES, pooled_distribution
from harness.store.requests_file import select

values = st.lists(st.one_of(st.floats(0, 5, allow_nan=False),
                            st.sampled_from([0.0, 0.001, 0.5])),  # repeats, as real gaps
                  min_size=1, max_size=300)


def reader(data: np.ndarray, pieces: int = 4):
    return lambda: iter(np.array_split(data, pieces))


@given(values, st.data())
def test_order_statistics_are_exactly_the_sorted_values(raw, data):
    array = np.asarray(raw)
    ranks = data.draw(st.lists(st.integers(0, array.size - 1), min_size=1, max_size=6))
    with pytest.MonkeyPatch.context() as patch:  # tiny bins and gathers: many passes
        patch.setattr(quantiles, "BINS", 4)
        patch.setattr(quantiles, "GATHER_LIMIT", 3)
        read = reader(array)
        found = quantiles.order_statistics(read, sorted(set(ranks)), quantiles.summarize(read))
    ordered = np.sort(array)
    assert found == {rank: float(ordered[rank]) for rank in ranks}


@given(values)
def test_streamed_percentiles_are_numpys_and_inside_their_intervals(raw):
    array = np.asarray(raw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quantiles, "BINS", 8)
        patch.setattr(quantiles, "GATHER_LIMIT", 10)
        read = reader(array, 3)
        pcts, cis = quantiles.streamed_percentiles(read, PERCENTILES, quantiles.summarize(read))
    for p in PERCENTILES:
        assert pcts[p] == pytest.approx(float(np.percentile(array, p)), rel=1e-12, abs=1e-15)
        low, high = cis[p]
        assert low <= pcts[p] + 1e-12 and pcts[p] <= high + 1e-12


def test_pooled_itl_beyond_the_memory_limit_equals_the_itl_held_whole(monkeypatch):
    rng = np.random.default_rng(3)
    records = []
    for index in range(60):
        record = RequestRecord(index, 8, 30, send_time=float(index))
        record.chunk_times.extend((index + 0.1 + np.cumsum(rng.exponential(0.02, 30))).tolist())
        record.chunk_tokens.extend(rng.integers(1, 3, 30).tolist())
        records.append(record)
    held = pooled_distribution(select(records))
    per_token = pooled_distribution(select(records), per_token=True)
    monkeypatch.setattr(quantiles, "IN_MEMORY_VALUES", 100)
    monkeypatch.setattr(quantiles, "GATHER_LIMIT", 50)
    streamed = pooled_distribution(select(records))
    assert streamed.n == held.n == 60 * 29
    assert streamed.mean == pytest.approx(held.mean)
    for p in PERCENTILES:
        assert getattr(streamed, f"p{p}") == pytest.approx(getattr(held, f"p{p}"), rel=1e-12)
        low, high = getattr(streamed, f"p{p}_ci")
        held_low, held_high = getattr(held, f"p{p}_ci")
        assert low <= getattr(held, f"p{p}") <= high
        # order-statistic and bootstrap intervals agree roughly at this n
        assert high - low == pytest.approx(held_high - held_low, rel=0.6)
    streamed_tokens = pooled_distribution(select(records), per_token=True)
    assert streamed_tokens.n == per_token.n
    assert streamed_tokens.p99 == pytest.approx(per_token.p99, rel=1e-12)
