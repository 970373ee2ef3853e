"""Break-even as ranges: every band of monthly traffic in which self-hosting (rented or owned)
costs no more than each API. The self-hosted bill is a step function of replicas, so a single
break-even volume can hide a band where one more replica makes the API cheaper again."""

from __future__ import annotations

import pandas as pd

from harness.cost import formulas
from harness.cost.demand import Demand
from harness.cost.labels import missing

SIDES = ("rented", "owned")


def side_ranges(row: dict, side: str, demand: Demand) -> list[tuple[float, float | None]]:
    """The traffic ranges (Mtok a month, retries excluded) where this side wins."""
    hourly = row.get(f"{side}_usd_per_replica_hour")
    if missing(hourly) or missing(row.get("capacity_tps")):
        return []
    served = formulas.break_even_ranges(hourly, row["capacity_tps"], row["api_usd_per_mtok"],
                                     demand.peak_to_average)
    scale = 1 + demand.retry_rate
    return [(low / scale, None if high is None else high / scale) for low, high in served]


def describe(ranges: list[tuple[float, float | None]]) -> str:
    """'5,954-10,346; 11,908+ Mtok/mo', or 'none' (the API is cheaper at any volume)."""
    if not ranges:
        return "none"
    parts = [f"{low:,.0f}+" if high is None else f"{low:,.0f}-{high:,.0f}" for low, high in ranges]
    return "; ".join(parts) + " Mtok/mo"


def break_even_frame(verdicts: pd.DataFrame, demand: Demand) -> pd.DataFrame:
    """One row per range: variant, side, API, from, to (None: and above), whether this
    profile's traffic is in it."""
    rows = []
    traffic = demand.traffic_mtok_month
    for row in verdicts.to_dict("records"):
        for side in SIDES:
            for index, (low, high) in enumerate(side_ranges(row, side, demand)):
                rows.append({"variant": row["variant"], "side": side, "api": row["api"],
                             "range": index + 1, "from_mtok_month": low,
                             "to_mtok_month": high,
                             "contains_this_traffic": low <= traffic and (
                                 high is None or traffic <= high)})
    return pd.DataFrame(rows, columns=["variant", "side", "api", "range", "from_mtok_month",
                                       "to_mtok_month", "contains_this_traffic"])
