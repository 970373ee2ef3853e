"""The report's view of the build-or-buy answer: the same `Answer` that `harness cost` prints
(harness.cost.answer.build_answer), for the traffic profile the run's config names, and the
frames its charts draw (cost per point, the monthly bills, the break-even ranges against the
cheapest API)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.cost import formulas
from harness.cost.answer import build_answer
from harness.cost.caveats import SIDES
from harness.cost.flat import frame
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import load_profile
from harness.cost.parts import Answer, ApiCost, PriceRow
from harness.cost.points import PointCost, point_costs
from harness.cost.tier_parts import TierAnswer
from harness.cost.tiers import build_tier_answer
from harness.store.run_store import StoredRun


@dataclass
class CostView:
    """What the page shows of the answer, or why there is none (`reason`)."""

    reason: str | None = None
    answer: Answer | None = None
    points: pd.DataFrame = field(default_factory=pd.DataFrame)     # $/Mtok per point and side
    apis: pd.DataFrame = field(default_factory=pd.DataFrame)       # $/Mtok per API, data dates
    bills: pd.DataFrame = field(default_factory=pd.DataFrame)      # $/month against Mtok/month
    break_even: pd.DataFrame = field(default_factory=pd.DataFrame)  # ranges, cheapest API
    tiers: TierAnswer | None = None     # where the profile has tiers (docs/tiers.md)
    tiers_reason: str | None = None     # why the tiered answer could not be had

    @property
    def traffic_mtok_month(self) -> float | None:
        return None if self.answer is None else self.answer.demand.traffic_mtok_month

    @property
    def prices(self) -> list[PriceRow]:
        return [] if self.answer is None else self.answer.prices

    @property
    def prices_used(self) -> list[str]:
        return [] if self.answer is None else self.answer.prices_used


def profile_path(stored: StoredRun) -> Path | None:
    profile = stored.manifest.config.cost.profile
    return Path(profile) if profile else None


def cost_view(stored: StoredRun) -> CostView:
    """The answer for the run's own cost profile; a reason instead where it has none or the
    profile or prices cannot be read (the measured results stand either way)."""
    path = profile_path(stored)
    if path is None:
        return CostView(reason="the run's config names no cost profile (cost.profile): "
                               "no build-or-buy verdict; `harness cost RUN --profile FILE` "
                               "gives one")
    try:
        profile = load_profile(path)
        book = load_price_book(max_age_days=profile.max_price_age_days)
        answer = build_answer(stored, profile, book, str(path))
        per_point = point_costs(stored, profile, book)
    except (CostInputError, ValueError) as err:
        return CostView(reason=f"no verdict: {str(err).splitlines()[0]}")
    view = CostView(answer=answer, points=_point_costs(per_point, answer),
                    apis=_api_prices(answer.apis), bills=_bills(answer),
                    break_even=_cheapest_api_ranges(answer))
    if profile.tiers:
        try:
            view.tiers = build_tier_answer([stored], profile, book, str(path))
        except (CostInputError, ValueError) as err:
            view.tiers_reason = f"no tiered answer: {str(err).splitlines()[0]}"
    return view


def _point_costs(per_point: list[PointCost], answer: Answer) -> pd.DataFrame:
    """$/Mtok at the profile's mix per point, rented and owned (owned scales the rented figure
    by the variant's owned/rented hourly price: the same throughput, another price)."""
    rows = []
    for point in per_point:
        if not point.measured or point.prices is None:
            continue
        rented = point.prices.usd_per_mtok_at_profile_mix
        base = {"variant": point.variant, "max_num_seqs": point.max_num_seqs,
                "concurrency": point.concurrency, "point": point.point,
                "meets_slo": point.meets_slo}
        rows.append({**base, "side": "rented", "usd_per_mtok": rented})
        ratio = _owned_over_rented(answer, point.variant)
        if ratio is not None and rented is not None:
            rows.append({**base, "side": "owned", "usd_per_mtok": rented * ratio})
    return pd.DataFrame(rows)


def _owned_over_rented(answer: Answer, name: str) -> float | None:
    variant = next((v for v in answer.variants if v.variant == name), None)
    if variant is None or variant.owned is None or variant.rented is None:
        return None
    rented = variant.rented.usd_per_replica_hour
    return variant.owned.usd_per_replica_hour / rented if rented else None


def _api_prices(apis: list[ApiCost]) -> pd.DataFrame:
    return pd.DataFrame([{"api": a.name, "api_usd_per_mtok": a.usd_per_mtok,
                          "api_price_data_date": a.price_data_date.isoformat(),
                          "label": f"{a.name} ${a.usd_per_mtok:.4g} (data of "
                                   f"{a.price_data_date.isoformat()})"} for a in apis])


def _volumes(traffic: float | None) -> list[float]:
    center = traffic or 1000.0
    low, high = math.log10(center / 100), math.log10(center * 100)
    return [10 ** (low + (high - low) * i / 160) for i in range(161)]


def _bills(answer: Answer) -> pd.DataFrame:
    """The monthly bill against monthly traffic: each self-hosted side a step function of
    replicas provisioned for the profile's peak, each API a line."""
    demand = answer.demand
    if demand.average_tps is None or demand.peak_to_average is None:
        return pd.DataFrame()
    rows = []
    for volume in _volumes(demand.traffic_mtok_month):
        served_tps = formulas.tokens_per_s_for(volume) * (1 + demand.retry_rate)
        for variant in answer.variants:
            for side in SIDES:
                cost = variant.side(side)
                if cost is None:
                    continue
                rows.append({"mtok_month": volume, "who": f"{variant.variant} {side}",
                             "kind": "self-hosted", "usd_month": formulas.self_hosted_monthly_usd(
                                 served_tps, demand.peak_to_average, variant.capacity.tps,
                                 cost.usd_per_replica_hour)})
        for api in answer.apis:
            rows.append({"mtok_month": volume, "who": api.name, "kind": "API",
                         "usd_month": formulas.api_monthly_usd(served_tps, api.usd_per_mtok)})
    return pd.DataFrame(rows)


def _cheapest_api_ranges(answer: Answer) -> pd.DataFrame:
    """The Answer's break-even ranges of each variant and side against the API that is
    cheapest for this traffic (the one the decision and the sensitivity table weigh)."""
    cheapest = answer.cheapest_api()
    if not answer.break_even or cheapest is None:
        return pd.DataFrame()
    ranges = frame(answer, "break-even")
    found = ranges[ranges["api"] == cheapest.name].copy()
    found["who"] = found["variant"] + " " + found["side"]
    return found.reset_index(drop=True)
