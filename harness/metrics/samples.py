"""The values of one statistic of a point (a `Sample`) and their `Distribution`, and `read`: the
one pass over a point's requests file that feeds every sample of every figure at once.

A figure of a point (its metrics, a phase's, the steady window's, goodput) is a `Tally`: it
takes each batch of rows as the pass reads it and feeds its samples. A sample of up to
quantiles.IN_MEMORY_VALUES values is summarized by `distribution` (numpy percentiles, bootstrap
intervals); one of more values (the pooled gaps of a long point, one per token) keeps only
their count and range, and after the pass its percentiles are found exactly in a few more
passes over the file (harness/metrics/quantiles.py), shared by every such sample, its mean
summed in the first of them. The samples of a point hold IN_MEMORY_VALUES values in all, as one
distribution alone did: a sample that has to let its values go while others still need
theirs, and ends with few enough, has them gathered again in one more pass. So the file is
read once per point, plus those passes when its samples outgrow memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from harness.contract.results import Distribution
from harness.metrics import quantiles
from harness.store.requests_file import Batch, StoredRequests

PERCENTILES = (50, 90, 95, 99)
RELIABLE_P99_N = 100  # below this a p99 is little more than the maximum
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_LIMIT = 20_000  # beyond, order-statistic intervals (a bootstrap of 2 M values: 12 s)


def bootstrap_ci(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """95% percentile-bootstrap intervals of PERCENTILES, shape (len(PERCENTILES), 2)."""
    rng = np.random.default_rng(seed)
    n = values.size
    per_chunk = max(1, 2_000_000 // n)
    estimates = []
    for done in range(0, BOOTSTRAP_RESAMPLES, per_chunk):
        size = min(per_chunk, BOOTSTRAP_RESAMPLES - done)
        picks = values[rng.integers(0, n, size=(size, n))]
        estimates.append(np.percentile(picks, PERCENTILES, axis=1).T)
    return np.percentile(np.concatenate(estimates), [2.5, 97.5], axis=0).T


def distribution(values_s: Iterable[float | None] | np.ndarray) -> Distribution:
    """Percentiles and their intervals, in ms, of values in seconds (None and NaN skipped)."""
    if isinstance(values_s, np.ndarray):
        values = values_s.astype(float) * 1000.0
    else:
        values = np.asarray([v for v in values_s if v is not None], dtype=float) * 1000.0
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Distribution(n=0)
    values = np.sort(values)  # the intervals then do not depend on the order values came in
    pcts = np.percentile(values, PERCENTILES)  # linear interpolation, as vllm bench serve
    cis = bootstrap_ci(values) if values.size <= BOOTSTRAP_LIMIT else [
        [values[rank] for rank in quantiles.interval_ranks(values.size, p)] for p in PERCENTILES]
    fields = {f"p{p}": float(v) for p, v in zip(PERCENTILES, pcts, strict=True)}
    fields |= {f"p{p}_ci": [float(lo), float(hi)]
               for p, (lo, hi) in zip(PERCENTILES, cis, strict=True)}
    return Distribution(n=int(values.size), mean=float(values.mean()),
                        p99_low_n=values.size < RELIABLE_P99_N, **fields)


class Sample:
    """The values of one statistic, in seconds, NaN skipped: its tally `add`s them as it reads
    them, and `values(batch)` gives them again from a batch of the file, for the passes after
    the reading."""

    def __init__(self, values: Callable[[Batch], np.ndarray]):
        self.values = values
        self.n = 0
        self.low, self.high = math.inf, -math.inf  # in ms, as the passes beyond memory count
        self._held: list[np.ndarray] | None = [np.empty(0)]  # None: let go
        self.distribution: Distribution | None = None  # once the reading is over

    def add(self, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        if not values.size:
            return
        self.n += values.size
        if self._held is not None:
            self._held.append(values)
        in_ms = values * 1000.0
        self.low, self.high = min(self.low, float(in_ms.min())), max(self.high,
                                                                     float(in_ms.max()))

    @property
    def holds_all(self) -> bool:
        return self._held is not None

    @property
    def held(self) -> int:
        """How many values it holds (0 once it let them go)."""
        return self.n if self.holds_all else 0

    def let_go(self) -> None:
        self._held = None

    @property
    def fits(self) -> bool:
        """Few enough values to be summarized in memory (`distribution`)?"""
        return self.n <= quantiles.IN_MEMORY_VALUES

    def settle(self, values: np.ndarray | None = None) -> None:
        """Its distribution, of the values it holds (or of `values`, all of them)."""
        self.distribution = distribution(np.concatenate(self._held) if values is None
                                         else values)
        self._held = None


class Tally(Protocol):
    """A figure of a point, fed one batch (with its chunks) at a time."""

    def take(self, batch: Batch) -> None: ...

    def samples(self) -> list[Sample]: ...


def read(stored: StoredRequests, tallies: Sequence[Tally]) -> None:
    """Feed every batch of `stored` to every tally, then give every sample its distribution.
    The samples hold quantiles.IN_MEMORY_VALUES values in all: past that the largest lets its
    values go, to be read again after the pass (`_gather`, or `_settle_beyond_memory` for a
    sample of more values than that)."""
    samples = [sample for tally in tallies for sample in tally.samples()]
    for batch in stored.batches(chunks=True):
        for tally in tallies:
            tally.take(batch)
        while sum(sample.held for sample in samples) > quantiles.IN_MEMORY_VALUES:
            max(samples, key=lambda sample: sample.held).let_go()
    for sample in samples:
        if sample.holds_all:
            sample.settle()
    _gather(stored, [s for s in samples if s.distribution is None and s.fits])
    beyond = [sample for sample in samples if not sample.fits]
    if beyond:
        _settle_beyond_memory(stored, beyond)


def _gather(stored: StoredRequests, let_go: list[Sample]) -> None:
    """The distributions of samples that let their values go but have few enough of them:
    gathered again in passes over `stored`, as many samples a pass as memory holds."""
    while let_go:
        group, size = [], 0
        while let_go and (not group or size + let_go[0].n <= quantiles.IN_MEMORY_VALUES):
            size += let_go[0].n
            group.append(let_go.pop(0))
        gathered: list[list[np.ndarray]] = [[np.empty(0)] for _ in group]
        for batch in stored.batches(chunks=True):
            for sample, values in zip(group, gathered, strict=True):
                values.append(sample.values(batch))
        for sample, values in zip(group, gathered, strict=True):
            sample.settle(np.concatenate(values))


def _settle_beyond_memory(stored: StoredRequests, beyond: list[Sample]) -> None:
    """The distributions of the samples not held, from passes over `stored` that read them all
    together. The first pass also sums each one's values for its mean, a batch of the file at a
    time and in its order: a float sum depends on its order, and a tally may have added its
    values in another (the steady window's wait for the window to reach them)."""
    totals, passes = [0.0] * len(beyond), 0  # (passes: those read to their end)

    def in_ms(number: int, batch: Batch) -> np.ndarray:
        values = beyond[number].values(batch)
        values = values[~np.isnan(values)] * 1000.0
        if not passes and values.size:
            totals[number] += float(values.sum())
        return values

    def read_again() -> Iterator[Iterator[np.ndarray]]:
        nonlocal passes
        for batch in stored.batches(chunks=True):
            # each sample's values worked out as they are taken: one sample's at a time
            yield (in_ms(number, batch) for number in range(len(beyond)))
        passes += 1

    summaries = [quantiles.Summary(s.n, 0.0, s.low, s.high) for s in beyond]
    found = quantiles.streamed_percentiles_of_many(read_again, PERCENTILES, summaries)
    for sample, total, (pcts, cis) in zip(beyond, totals, found, strict=True):
        fields = {f"p{p}": pcts[p] for p in PERCENTILES}
        fields |= {f"p{p}_ci": list(cis[p]) for p in PERCENTILES}
        sample.distribution = Distribution(n=sample.n, mean=total / sample.n, p99_low_n=False,
                                           **fields)
