"""The verdict per (variant, API): for each side (rented, owned) the utilization at which
self-hosting costs what the API does and, with traffic, both monthly bills compared and the
traffic ranges where self-hosting wins; then the caveats each side's verdict rests on."""

from __future__ import annotations

from dataclasses import replace

from harness.cost import formulas
from harness.cost.caveats import SIDES, Caveat, row_caveats
from harness.cost.demand import Demand
from harness.cost.parts import ApiCost, Comparison, SideVerdict, VariantCost, Verdict
from harness.cost.ranges import describe, side_ranges


def side_verdict(variant: VariantCost, api: ApiCost, side: str, demand: Demand) -> SideVerdict:
    cost = variant.side(side)
    if cost is None or cost.usd_per_mtok_full_load is None:
        return SideVerdict(priced=False)
    utilization = formulas.break_even_utilization(cost.usd_per_mtok_full_load, api.usd_per_mtok)
    if demand.average_tps is None:
        return SideVerdict(True, utilization)
    ranges = side_ranges(cost.usd_per_replica_hour, variant.capacity.tps, api.usd_per_mtok,
                         demand)
    self_bill, api_bill = cost.usd_per_month, api.usd_per_month
    cheaper = ("self-hosted" if self_bill < api_bill else "API" if api_bill < self_bill
               else "equal")
    return SideVerdict(True, utilization, Comparison(
        tuple(ranges), describe(ranges), cheaper, self_bill - api_bill, self_bill / api_bill))


def verdicts(variants: list[VariantCost], apis: list[ApiCost], demand: Demand) -> list[Verdict]:
    """One per (variant, API), each side's verdict."""
    return [Verdict(variant, api, *(side_verdict(variant, api, side, demand) for side in SIDES))
            for variant in variants for api in apis]


def tag_caveats(found: list[Verdict], caveats: list[Caveat]) -> list[Verdict]:
    """Each side's verdict with the caveats (warning and worse) it rests on."""
    def tagged(verdict: Verdict, side: str) -> SideVerdict:
        rests_on = row_caveats(caveats, verdict.variant.variant, side, verdict.api.name)
        return replace(verdict.side(side), rests_on=tuple(rests_on))

    return [replace(v, rented=tagged(v, "rented"), owned=tagged(v, "owned")) for v in found]
