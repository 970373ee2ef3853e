"""The capacity at SLO of one server cell: the highest open-loop rate whose point meets every
SLO and whose rate the server sustained (a point that is not sustained misses: harness/metrics/
sustained.py), found by bisection on a geometric scale in a bounded number of measurements.

The search measures min_rate (a miss: no capacity at this SLO), then max_rate. A top that
meets is no capacity yet: the rate doubles until one misses, up to `cap`; only a cap that
meets makes the capacity "at least" it. Between the highest rate that met and the lowest that
missed it bisects for the remaining steps. The record keeps both ends with what the server
delivered at each: the bracket the capacity lies in, measured, never extrapolated.

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
           steps: int, cap: float | None = None,
           give_up: Callable[[SearchStep], bool] | None = None) -> SearchResult:
    """`steps` measurements between min_rate and max_rate at most, plus the doublings above
    max_rate, up to `cap` (default: max_rate), while the top keeps meeting. `give_up(step)`
    true ends the search after that step (a tuning trial that can no longer win)."""
    result = SearchResult()
    stop = give_up or (lambda step: False)

    def take(rate: float) -> SearchStep:
        step = measure(rate)
        result.steps.append(step)
        return step

    low = take(rounded(min_rate))
    if not low.meets:
        return result  # even the lowest rate misses: no capacity at this SLO
    cap = rounded(max(cap or max_rate, max_rate))
    high = take(rounded(max_rate))
    while high.meets:
        if high.rate >= cap:
            return result  # met at the cap: the capacity is at least the cap
        high = take(rounded(min(2 * high.rate, cap)))
    if stop(high):
        return result
    lo = max(s.rate for s in result.steps if s.meets)
    hi = high.rate
    for _ in range(steps - 2):
        mid = rounded(math.sqrt(lo * hi))
        if mid in (lo, hi):
            break
        step = take(mid)
        if stop(step):
            break
        lo, hi = (mid, hi) if step.meets else (lo, mid)
    return result


def capacity_record(result: SearchResult, points: dict[str, PointResult], slo: Slo,
                    cap: float | None = None) -> CapacityRecord:
    """capacity.json: the rate found, its point's throughput, the bracket above it (the lowest
    rate that missed and what the server delivered there), and every step of the search."""
    best = result.best
    steps = [CapacityStep(rate_rps=s.rate, point=s.point, meets_slo=s.meets,
                          violations=s.violations) for s in result.steps]
    if best is None:
        return CapacityRecord(slo=slo, steps=steps, meets_slo=False, cap_rps=cap,
                              reason="even the lowest rate searched misses the SLO")
    metrics = points[best.point].metrics
    above = [s for s in result.steps if not s.meets and s.rate > best.rate]
    bracket = min(above, key=lambda s: s.rate) if above else None
    delivered = points[bracket.point].metrics if bracket else None
    return CapacityRecord(
        slo=slo, steps=steps, meets_slo=True, rate_rps=best.rate, point=best.point,
        output_throughput=metrics.output_throughput,
        total_token_throughput=metrics.total_token_throughput,
        request_throughput=metrics.request_throughput,
        at_upper_bound=bracket is None, cap_rps=cap,
        bracket_rate_rps=bracket.rate if bracket else None,
        bracket_point=bracket.point if bracket else None,
        bracket_output_throughput=delivered.output_throughput if delivered else None,
        bracket_total_token_throughput=delivered.total_token_throughput if delivered else None)
