"""Exact order statistics of more values than memory should hold, read in passes.

The pooled inter-token gaps of a long point number one per token (an hour at 50,000 tokens/s
is 180 million). Up to IN_MEMORY_VALUES they are held and handled as any distribution (numpy
percentiles, bootstrap intervals: harness/metrics/samples.py). Beyond, `order_statistics`
finds the values at given ranks exactly, in a few passes over a source that can be read again,
holding one histogram per rank and at most GATHER_LIMIT values: each pass narrows every rank to one
bin of a histogram of the values still in question, until a bin is small enough to gather and
sort, or holds one repeated value. Bin membership is a monotone function of the value, so a bin
is a run of consecutive order statistics and the counts locate each rank exactly. Several
samples read from the same source share its passes (`order_statistics_of_many`), and the ranks
of one sample share the bins they have in common (`_Bin`, `_Batch`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

IN_MEMORY_VALUES = 4_000_000  # 32 MB of float64
BINS = 1 << 16
GATHER_LIMIT = 1_000_000
Z95 = 1.959963984540054

Reader = Callable[[], Iterator[np.ndarray]]
ManyReader = Callable[[], Iterator[Iterable[np.ndarray]]]  # a batch: one array per sample


@dataclass
class Summary:
    n: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf


def summarize(read: Reader) -> Summary:
    summary = Summary()
    for values in read():
        if values.size:
            summary.n += values.size
            summary.total += float(values.sum())
            summary.low = min(summary.low, float(values.min()))
            summary.high = max(summary.high, float(values.max()))
    return summary


@dataclass
class _Target:
    """One rank being narrowed: values in question pass every (low, high, bin) test."""

    rank: int
    low: float
    high: float
    below: int = 0  # values before the ones in question
    tests: list[tuple[float, float, int]] = field(default_factory=list)
    count: int = 0  # values in question
    value: float | None = None


@dataclass
class _Bin:
    """What one pass takes of the values in question of the targets that share them (of one
    sample, passing the same tests; the ranks wanted of a sample start alike and part late):
    a histogram over [low, high], or the values themselves once few enough to gather."""

    tests: tuple[tuple[float, float, int], ...]
    low: float
    high: float
    gather: bool
    counts: np.ndarray | None = None  # (of a bin that does not gather)
    gathered: list[np.ndarray] = field(default_factory=list)
    seen_low: float = math.inf
    seen_high: float = -math.inf

    def __post_init__(self) -> None:
        if not self.gather:
            self.counts = np.zeros(BINS, np.int64)

    def take(self, batch: _Batch) -> None:
        mine = batch.members(self.tests)
        if not mine.size:
            return
        if self.gather:
            self.gathered.append(mine)
            return
        self.counts += np.bincount(batch.bins(self.tests, self.low, self.high), minlength=BINS)
        self.seen_low = min(self.seen_low, float(mine.min()))
        self.seen_high = max(self.seen_high, float(mine.max()))

    @cached_property
    def ordered(self) -> np.ndarray:
        return np.sort(np.concatenate(self.gathered))

    @cached_property
    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.counts)


class _Batch:
    """One batch of a sample's values, with the values that pass a chain of tests and their
    bins over a range each worked out once (the bins of a sample share their first tests)."""

    def __init__(self, values: np.ndarray):
        self._members: dict[tuple, np.ndarray] = {(): values}
        self._bins: dict[tuple, np.ndarray] = {}

    def members(self, tests: tuple) -> np.ndarray:
        """The values that pass every (low, high, bin) test of `tests`."""
        if tests not in self._members:
            low, high, number = tests[-1]
            self._members[tests] = (self.members(tests[:-1])
                                    [self.bins(tests[:-1], low, high) == number])
        return self._members[tests]

    def bins(self, tests: tuple, low: float, high: float) -> np.ndarray:
        key = (tests, low, high)
        if key not in self._bins:
            self._bins[key] = _bin(self.members(tests), low, high)
        return self._bins[key]


def _bin(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Bin of each value on BINS equal bins over [low, high]: monotone in the value."""
    if high <= low:
        return np.zeros(values.size, dtype=np.int64)
    scaled = np.floor((values - low) / (high - low) * BINS)
    return np.clip(scaled, 0, BINS - 1).astype(np.int64)


def order_statistics(read: Reader, ranks: list[int], summary: Summary) -> dict[int, float]:
    """The value at each 0-based rank of the sorted values, exactly."""
    return order_statistics_of_many(lambda: ([values] for values in read()), [ranks],
                                    [summary])[0]


def order_statistics_of_many(read: ManyReader, ranks: Sequence[list[int]],
                             summaries: Sequence[Summary]) -> list[dict[int, float]]:
    """order_statistics of several samples read together: `read()` yields, a batch at a time,
    one array of each sample's values; every pass narrows the ranks of every sample."""
    samples = [[_Target(rank, summary.low, summary.high, count=summary.n) for rank in wanted]
               for wanted, summary in zip(ranks, summaries, strict=True)]
    while any(t.value is None for targets in samples for t in targets):
        bins: list[dict[tuple, _Bin]] = [{} for _ in samples]  # per sample, by tests
        placed = []
        for targets, shared in zip(samples, bins, strict=True):
            for target in (t for t in targets if t.value is None):
                tests = tuple(target.tests)
                if tests not in shared:  # (targets of one bin share its edges and count)
                    shared[tests] = _Bin(tests, target.low, target.high,
                                         gather=target.count <= GATHER_LIMIT)
                placed.append((target, shared[tests]))
        for arrays in read():
            for values, shared in zip(arrays, bins, strict=True):
                if shared:
                    batch = _Batch(values)
                    for taken in shared.values():
                        taken.take(batch)
        for target, taken in placed:
            _narrow(target, taken)
    return [{t.rank: t.value for t in targets} for targets in samples]


def _narrow(target: _Target, taken: _Bin) -> None:
    if taken.gather:  # gathered: sort and read the rank
        target.value = float(taken.ordered[target.rank - target.below])
        return
    if taken.seen_low == taken.seen_high:  # one value repeated
        target.value = taken.seen_low
        return
    cumulative = taken.cumulative
    number = int(np.searchsorted(cumulative, target.rank - target.below, side="right"))
    before = int(cumulative[number - 1]) if number else 0
    target.tests.append((target.low, target.high, number))
    width = (target.high - target.low) / BINS
    target.below += before
    stalled = target.count == int(taken.counts[number])  # bins too fine for floats
    target.count = GATHER_LIMIT if stalled else int(taken.counts[number])
    # (a member a rounding error outside its bin's edges falls in the first or last bin)
    target.low, target.high = target.low + number * width, target.low + (number + 1) * width


def percentile_ranks(n: int, p: float) -> tuple[int, int, float]:
    """(lower rank, upper rank, fraction) of numpy's linear-interpolation percentile p."""
    h = (n - 1) * p / 100.0
    lower = math.floor(h)
    return lower, min(lower + 1, n - 1), h - lower


def interpolate(low: float, high: float, fraction: float) -> float:
    """numpy's linear interpolation between two neighbouring order statistics."""
    diff = high - low
    return high - diff * (1 - fraction) if fraction >= 0.5 else low + diff * fraction


def interval_ranks(n: int, p: float) -> tuple[int, int]:
    """0-based ranks of the distribution-free 95% interval of percentile p (order statistics
    around n*q, binomial normal approximation): for a large n it agrees with the bootstrap."""
    q = p / 100.0
    spread = Z95 * math.sqrt(n * q * (1 - q))
    low = max(math.floor(n * q - spread) - 1, 0)
    high = min(math.ceil(n * q + spread) - 1, n - 1)
    return low, high


def streamed_percentiles(read: Reader, percentiles: tuple[int, ...], summary: Summary
                         ) -> tuple[dict[int, float], dict[int, tuple[float, float]]]:
    """Each percentile and its 95% interval, from values read in passes."""
    return streamed_percentiles_of_many(lambda: ([values] for values in read()), percentiles,
                                        [summary])[0]


def streamed_percentiles_of_many(read: ManyReader, percentiles: tuple[int, ...],
                                 summaries: Sequence[Summary]
                                 ) -> list[tuple[dict[int, float], dict[int, tuple[float, float]]]]:
    """streamed_percentiles of several samples read together (order_statistics_of_many)."""
    wanted = []
    for summary in summaries:
        ranks = {}
        for p in percentiles:
            lower, upper, _ = percentile_ranks(summary.n, p)
            ranks |= dict.fromkeys((lower, upper, *interval_ranks(summary.n, p)))
        wanted.append(sorted(ranks))
    found = order_statistics_of_many(read, wanted, summaries)
    return [_percentiles(ranked, summary.n, percentiles)
            for ranked, summary in zip(found, summaries, strict=True)]


def _percentiles(found: dict[int, float], n: int, percentiles: tuple[int, ...]
                 ) -> tuple[dict[int, float], dict[int, tuple[float, float]]]:
    values, intervals = {}, {}
    for p in percentiles:
        lower, upper, fraction = percentile_ranks(n, p)
        values[p] = interpolate(found[lower], found[upper], fraction)
        low, high = interval_ranks(n, p)
        intervals[p] = (found[low], found[high])
    return values, intervals
