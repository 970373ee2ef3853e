"""Break-even as ranges: every band of monthly traffic in which self-hosting (rented or owned)
costs no more than each API. The self-hosted bill is a step function of replicas, so a single
break-even volume can hide a band where one more replica makes the API cheaper again."""

from __future__ import annotations

from harness.cost import formulas
from harness.cost.caveats import SIDES
from harness.cost.demand import Demand
from harness.cost.parts import BreakEvenRange, Range, Verdict


def side_ranges(usd_per_replica_hour: float, capacity_tps: float, api_usd_per_mtok: float,
                demand: Demand) -> list[Range]:
    """The traffic ranges (Mtok a month, retries excluded) where this side wins."""
    served = formulas.break_even_ranges(usd_per_replica_hour, capacity_tps, api_usd_per_mtok,
                                        demand.peak_to_average)
    scale = 1 + demand.retry_rate
    return [(low / scale, None if high is None else high / scale) for low, high in served]


def describe(ranges: list[Range]) -> str:
    """'5,954-10,346; 11,908+ Mtok/mo', or 'none' (the API is cheaper at any volume)."""
    if not ranges:
        return "none"
    parts = [f"{low:,.0f}+" if high is None else f"{low:,.0f}-{high:,.0f}" for low, high in ranges]
    return "; ".join(parts) + " Mtok/mo"


def break_even_ranges(verdicts: list[Verdict], demand: Demand) -> list[BreakEvenRange]:
    """Every range of every (variant, side, API), and whether this profile's traffic is in it."""
    found = []
    traffic = demand.traffic_mtok_month
    for verdict in verdicts:
        for side in SIDES:
            comparison = verdict.side(side).comparison
            for index, (low, high) in enumerate(comparison.ranges if comparison else ()):
                found.append(BreakEvenRange(
                    verdict.variant.variant, side, verdict.api.name, index + 1, low, high,
                    low <= traffic and (high is None or traffic <= high)))
    return found
