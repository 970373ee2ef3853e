"""What the answer rests on, in words: the prices used with their sources and dates, and the
notes that qualify the verdict (hardware, model, tiers, mix, capacity searches)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from harness.cost.demand import Demand
from harness.cost.hosting import HourlyPrice
from harness.cost.labels import missing
from harness.cost.measured import MeasuredRun
from harness.cost.prices import ApiPrice, PriceBook
from harness.cost.profile import Profile


def prices_used(rented: HourlyPrice | None, profile: Profile, variants: pd.DataFrame,
                prices: list[ApiPrice], price_date: date) -> list[str]:
    lines = []
    if rented is not None:
        lines.append(f"rented: ${rented.usd_per_hour:,.2f}/h per "
                     f"{'GPU' if rented.per_gpu else 'machine'}, {rented.label}: {rented.source} "
                     f"({rented.dated})")
    if profile.own is not None:
        own = profile.own
        lines.append(
            f"owned: capex ${own.capex_per_gpu_usd:,.0f} + ${own.server_share_per_gpu_usd:,.0f} "
            f"per GPU over {own.years:g} years at {own.cost_of_capital:.1%}, availability "
            f"{own.availability:.0%}, PUE {own.pue:g}, ${own.usd_per_kwh:g}/kWh, overhead "
            f"{own.overhead_share:.0%}: the profile's inputs")
        if "owned_power_basis" in variants and (variants["owned_power_basis"] == "assumed").any():
            lines.append(f"owned power: {own.power_w_per_gpu:g} W per GPU ASSUMED (the profile's "
                         "own.power_w_per_gpu; the results have no measured power)")
    sources = sorted({p.data for p in prices})
    lines.append(f"APIs: {', '.join(sources)}, prices in force on {price_date.isoformat()}")
    tiers = sorted({(p.tier, p.tier_checked) for p in prices if p.tier})
    if tiers:
        lines.append("API tiers: " + ", ".join(f"{t} checked {c.isoformat()}" for t, c in tiers))
    return lines


def notes(run: MeasuredRun, profile: Profile, book: PriceBook, variants: pd.DataFrame,
          prices: list[ApiPrice], demand: Demand) -> list[str]:
    found = [f"measured on {run.manifest.hardware}, model {run.model}, "
             f"run of {run.manifest.run_date}; SLO: {profile.slo.describe()}"]
    found += _hardware_notes(run, profile)
    if profile.own is not None and profile.gpu is None and not run.manifest.gpu_names:
        found.append("owned: the profile's per-GPU inputs are applied per machine (the run had no "
                     "GPU)")
    if run.model == "dummy:tiny":
        found.append("the run served dummy:tiny, a tiny random-weight model: its throughput "
                     "exercises the pipeline and says nothing about serving a real model")
    for tier in sorted({p.tier for p in prices if p.tier}):
        patterns = book.tiers[tier].models
        if patterns and book.tier_for_model(run.model) != tier:
            found.append(f"tier {tier} ({book.tiers[tier].description}) is not the model the run "
                         f"served ({run.model}): it prices the same tokens, not the same model")
    found += _mix_notes(run, profile, demand)
    found += _capacity_search_notes(run, profile, variants)
    for row in variants.to_dict("records"):
        if missing(row.get("capacity_tps")):
            found.append(f"{row['variant']}: {row['slo_note']}")
    if "capacity_tps" in variants and variants["capacity_tps"].isna().all():
        found.append("no measured point meets the SLO: no capacity, so no self-hosted cost "
                     "(each variant's closest point is shown)")
    if profile.traffic is None:
        found.append("no traffic profile: give --profile FILE with a `traffic` section for GPUs "
                     "for peak, monthly bills, break-even volume and the verdict")
    return found


def _hardware_notes(run: MeasuredRun, profile: Profile) -> list[str]:
    if profile.gpu is None:
        return []
    base = profile.gpu.split("-")[0].lower()
    if not run.manifest.gpu_names:
        return [f"the results were measured without a GPU, yet priced as {profile.gpu} hours: "
                f"the figures are what this throughput would cost at {profile.gpu} prices"]
    if not any(base in name.lower() for name in run.manifest.gpu_names):
        return [f"the results were measured on {run.manifest.hardware}, yet priced as "
                f"{profile.gpu}"]
    return []


def _capacity_search_notes(run: MeasuredRun, profile: Profile,
                           variants: pd.DataFrame) -> list[str]:
    """Say so where a capacity search was run at another SLO than the profile's."""
    used = variants.get("cell", pd.Series(dtype=object)).dropna()
    found = []
    for cell in used:
        search = run.capacities.get(cell)
        if search is not None and search.slo != profile.slo:
            found.append(f"{cell}: capacity from its capacity search at SLO "
                         f"{search.slo.describe()}; the profile asks {profile.slo.describe()}")
    return found


def _mix_notes(run: MeasuredRun, profile: Profile, demand: Demand) -> list[str]:
    run_in, run_out = run.workload
    if math.isclose(run_in / run_out, demand.input_per_output, rel_tol=1e-6):
        return []
    return [f"capacity converted from the measured mix {run_in / run_out:g}:1 to the profile's "
            f"{demand.input_per_output:g}:1, an input token weighing 1/R of an output token "
            f"(R = {profile.input_output_cost_ratio:g})"]


