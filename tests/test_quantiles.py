"""Exact order statistics read in passes, against numpy on the same values; and the pooled ITL
of a point beyond the in-memory limit against the same point held whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.contract.records import RequestRecord
from harness.metrics import quantiles
from harness.metrics.point_metrics import point_metrics
from harness.metrics.samples import PERCENTILES

from .requests_files import requests_file

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


def gaps_point(tmp_path):
    """60 requests of 30 chunks of 1 or 2 tokens: 1,740 gaps, about 2,600 per token."""
    rng = np.random.default_rng(3)
    records = []
    for index in range(60):
        record = RequestRecord(index, 8, 30, send_time=float(index))
        record.chunk_times.extend((index + 0.1 + np.cumsum(rng.exponential(0.02, 30))).tolist())
        record.chunk_tokens.extend(rng.integers(1, 3, 30).tolist())
        records.append(record)
    return requests_file(tmp_path, records, batch_records=7)


class Counted:
    """A requests file that counts how often it is read."""

    def __init__(self, stored):
        self.stored, self.reads = stored, 0

    def batches(self, chunks=False):
        self.reads += 1
        return self.stored.batches(chunks)


def test_samples_that_let_their_values_go_are_gathered_again_the_same(tmp_path, monkeypatch):
    stored = Counted(gaps_point(tmp_path))
    held = point_metrics(stored, 60.0)
    assert stored.reads == 1
    # room for one pooled sample, not both: the larger lets its values go
    monkeypatch.setattr(quantiles, "IN_MEMORY_VALUES", held.itl_per_token_ms.n + 1)
    assert point_metrics(stored, 60.0) == held
    assert stored.reads == 1 + 2, "one more pass, to gather the values let go"


def test_pooled_itl_beyond_the_memory_limit_equals_the_itl_held_whole(tmp_path, monkeypatch):
    stored = gaps_point(tmp_path)
    held = point_metrics(stored, 60.0)
    monkeypatch.setattr(quantiles, "IN_MEMORY_VALUES", 100)
    monkeypatch.setattr(quantiles, "GATHER_LIMIT", 50)
    streamed = point_metrics(stored, 60.0)
    for name in ("itl_ms", "itl_per_token_ms"):
        beyond, whole = getattr(streamed, name), getattr(held, name)
        assert beyond.n == whole.n and beyond.n > 100
        assert beyond.mean == pytest.approx(whole.mean)
        for p in PERCENTILES:
            assert getattr(beyond, f"p{p}") == pytest.approx(getattr(whole, f"p{p}"), rel=1e-12)
            low, high = getattr(beyond, f"p{p}_ci")
            whole_low, whole_high = getattr(whole, f"p{p}_ci")
            assert low <= getattr(whole, f"p{p}") <= high
            # order-statistic and bootstrap intervals agree roughly at this n
            assert high - low == pytest.approx(whole_high - whole_low, rel=0.6)
    assert held.itl_ms.n == 60 * 29
    assert streamed.ttft_ms == held.ttft_ms  # 60 values: still held
