"""The capacity at SLO of one server cell: the highest open-loop rate whose point meets every
SLO, found by bisection on a geometric scale in a bounded number of measurements.

`measure(rate)` runs (or reads back) one open-loop point and says whether it met the SLOs; the
search is pure logic, so a resumed run replays the same steps from stored points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.config.slo import Slo
from harness.contract.results import CapacityRecord, CapacityStep, PointResult


@dataclass
class SearchStep:
    rate: float
    point: str
    meets: bool
    violations: list[str]


@dataclass
class SearchResult:
    steps: list[SearchStep] = field(default_factory=list)

    @property
    def best(self) -> SearchStep | None:
        met = [s for s in self.steps if s.meets]
        return max(met, key=lambda s: s.rate) if met else None


def rounded(rate: float) -> float:
    """Three significant digits: stable point names, no false precision."""
    return float(f"{rate:.3g}")


def search(measure: Callable[[float], SearchStep], min_rate: float, max_rate: float,
           steps: int) -> SearchResult:
    result = SearchResult()
    low = measure(rounded(min_rate))
    result.steps.append(low)
    if not low.meets:
        return result  # even the lowest rate misses: no capacity at this SLO
    high = measure(rounded(max_rate))
    result.steps.append(high)
    lo, hi = low.rate, high.rate
    if high.meets:
        return result  # meets at the top of the range: capacity is at least max_rate
    for _ in range(steps - 2):
        mid = rounded(math.sqrt(lo * hi))
        if mid in (lo, hi):
            break
        step = measure(mid)
        result.steps.append(step)
        lo, hi = (mid, hi) if step.meets else (lo, mid)
    return result


def capacity_record(result: SearchResult, points: dict[str, PointResult],
                    slo: Slo) -> CapacityRecord:
    """capacity.json: the rate found, its point's throughput, and every step of the search."""
    best = result.best
    steps = [CapacityStep(rate_rps=s.rate, point=s.point, meets_slo=s.meets,
                          violations=s.violations) for s in result.steps]
    if best is None:
        return CapacityRecord(slo=slo, steps=steps, meets_slo=False,
                              reason="even the lowest rate searched misses the SLO")
    metrics = points[best.point].metrics
    return CapacityRecord(
        slo=slo, steps=steps, meets_slo=True, rate_rps=best.rate, point=best.point,
        output_throughput=metrics.output_throughput,
        total_token_throughput=metrics.total_token_throughput,
        request_throughput=metrics.request_throughput,
        at_upper_bound=best.rate == max(s.rate for s in result.steps))
