"""Exact order statistics of more values than memory should hold, read in passes.

The pooled inter-token gaps of a long point number one per token (an hour at 50,000 tokens/s
is 180 million). Up to IN_MEMORY_VALUES they are held and handled as any distribution (numpy
percentiles, bootstrap intervals: harness/metrics/point_metrics.py). Beyond, `order_statistics`
finds the values at given ranks exactly, in a few passes over a source that can be read again,
holding one histogram per rank and at most GATHER_LIMIT values: each pass narrows every rank to one
bin of a histogram of the values still in question, until a bin is small enough to gather and
sort, or holds one repeated value. Bin membership is a monotone function of the value, so a bin
is a run of consecutive order statistics and the counts locate each rank exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

IN_MEMORY_VALUES = 4_000_000  # 32 MB of float64
BINS = 1 << 16
GATHER_LIMIT = 1_000_000
Z95 = 1.959963984540054

Reader = Callable[[], Iterator[np.ndarray]]


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
    gathered: list[np.ndarray] = field(default_factory=list)
    counts: np.ndarray | None = None
    seen_low: float = math.inf
    seen_high: float = -math.inf

    def members(self, values: np.ndarray) -> np.ndarray:
        for low, high, number in self.tests:
            values = values[_bin(values, low, high) == number]
        return values


def _bin(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Bin of each value on BINS equal bins over [low, high]: monotone in the value."""
    if high <= low:
        return np.zeros(values.size, dtype=np.int64)
    scaled = np.floor((values - low) / (high - low) * BINS)
    return np.clip(scaled, 0, BINS - 1).astype(np.int64)


def order_statistics(read: Reader, ranks: list[int], summary: Summary) -> dict[int, float]:
    """The value at each 0-based rank of the sorted values, exactly."""
    targets = [_Target(rank, summary.low, summary.high, count=summary.n) for rank in ranks]
    while any(t.value is None for t in targets):
        open_ = [t for t in targets if t.value is None]
        for target in open_:
            target.counts = None if target.count <= GATHER_LIMIT else np.zeros(BINS, np.int64)
            target.gathered, target.seen_low, target.seen_high = [], math.inf, -math.inf
        for values in read():
            for target in open_:
                mine = target.members(values)
                if not mine.size:
                    continue
                if target.counts is None:
                    target.gathered.append(mine)
                    continue
                target.counts += np.bincount(_bin(mine, target.low, target.high),
                                             minlength=BINS)
                target.seen_low = min(target.seen_low, float(mine.min()))
                target.seen_high = max(target.seen_high, float(mine.max()))
        for target in open_:
            _narrow(target)
    return {t.rank: t.value for t in targets}


def _narrow(target: _Target) -> None:
    if target.counts is None:  # gathered: sort and read the rank
        values = np.sort(np.concatenate(target.gathered))
        target.value = float(values[target.rank - target.below])
        return
    if target.seen_low == target.seen_high:  # one value repeated
        target.value = target.seen_low
        return
    cumulative = np.cumsum(target.counts)
    number = int(np.searchsorted(cumulative, target.rank - target.below, side="right"))
    before = int(cumulative[number - 1]) if number else 0
    target.tests.append((target.low, target.high, number))
    width = (target.high - target.low) / BINS
    target.below += before
    stalled = target.count == int(target.counts[number])  # bins too fine for floats
    target.count = GATHER_LIMIT if stalled else int(target.counts[number])
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
    n = summary.n
    wanted = {}
    for p in percentiles:
        lower, upper, _ = percentile_ranks(n, p)
        wanted |= dict.fromkeys((lower, upper, *interval_ranks(n, p)))
    found = order_statistics(read, sorted(wanted), summary)
    values, intervals = {}, {}
    for p in percentiles:
        lower, upper, fraction = percentile_ranks(n, p)
        values[p] = interpolate(found[lower], found[upper], fraction)
        low, high = interval_ranks(n, p)
        intervals[p] = (found[low], found[high])
    return values, intervals
