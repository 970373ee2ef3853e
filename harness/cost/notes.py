"""What the answer rests on: the prices used with their sources and dates, and the caveats
that qualify the verdict (hardware, model, tiers, mix, power), each as a Caveat."""

from __future__ import annotations

import math

from harness.cost.caveats import Caveat
from harness.cost.demand import Demand
from harness.cost.hosting import HourlyPrice
from harness.cost.inputs.prices import ApiPrice, PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.measured import MeasuredRun
from harness.cost.parts import PriceRow, VariantCost


def _power_assumed(variants: list[VariantCost]) -> list[VariantCost]:
    """The variants whose owned cost rests on the profile's assumed power."""
    return [v for v in variants if v.owned is not None and v.owned.power.basis == "assumed"]


def prices_used(rented: HourlyPrice | None, profile: Profile, variants: list[VariantCost],
                prices: list[ApiPrice], book: PriceBook,
                run: MeasuredRun | None = None) -> list[str]:
    lines = []
    if rented is not None:
        mark = ": your input, unverified" if rented.user_input else ""
        lines.append(f"rented: ${rented.usd_per_hour:,.2f}/h per "
                     f"{'GPU' if rented.per_gpu else 'machine'}, {rented.label}: {rented.source} "
                     f"({rented.dated}{mark})")
    if rented is not None and not rented.user_input and run is not None \
            and run.usd_per_hour is not None:
        lines.append(f"rented, the run's own table: ${run.usd_per_hour:,.2f}/h per machine "
                     f"(cost.usd_per_hour in {run.manifest.config_file}) prices the $/Mtok "
                     f"columns of `harness report`; this answer uses the {rented.label} row "
                     "above (the profile's `gpu`)")
    if profile.own is not None and any(v.owned is not None for v in variants):
        own = profile.own
        lines.append(
            f"owned: capex ${own.capex_per_gpu_usd:,.0f} + ${own.server_share_per_gpu_usd:,.0f} "
            f"per {own.per} over {own.years:g} years at {own.cost_of_capital:.1%}, availability "
            f"{own.availability:.0%}, PUE {own.pue:g}, ${own.usd_per_kwh:g}/kWh, overhead "
            f"{own.overhead_share:.0%}: the profile's inputs")
        if _power_assumed(variants):
            lines.append(f"owned power: {own.power_w_per_gpu:g} W per {own.per} ASSUMED (the "
                         "profile's own.power_w_per_gpu; the results have no measured power)")
    for data in sorted({p.data for p in prices}):
        dates = sorted({p.data_date for p in prices if p.data == data})
        lines.append(f"APIs: {data} (data of {', '.join(d.isoformat() for d in dates)}), prices "
                     f"in force on {book.price_date.isoformat()}")
    tiers = sorted({(p.tier, p.tier_checked) for p in prices if p.tier})
    if tiers:
        lines.append("API tiers: " + ", ".join(f"{t} checked {c.isoformat()}" for t, c in tiers))
    return lines


def price_rows(rented: HourlyPrice | None, prices: list[ApiPrice],
               book: PriceBook) -> list[PriceRow]:
    """Every price the answer uses: what it is, the date of its data and how old that is."""
    rows = []
    if rented is not None:
        rows.append(PriceRow("rented", rented.label, rented.usd_per_hour,
                             "per GPU-hour" if rented.per_gpu else "per machine-hour",
                             rented.source, rented.data_date, book.price_date,
                             book.age_days(rented.data_date), book.stale(rented.data_date),
                             rented.expired, rented.user_input))
    for price in prices:
        rows.append(PriceRow("api", price.name, price.per_mtok("output_mtok"), "per output Mtok",
                             price.data, price.data_date, price.price_date,
                             book.age_days(price.data_date), book.stale(price.data_date),
                             False))
    return rows


def price_caveats(rented: HourlyPrice | None, prices: list[ApiPrice],
                  book: PriceBook) -> list[Caveat]:
    """A price older than the profile's max_price_age_days, or expired, qualifies its verdicts."""
    found = []
    limit = f"more than {book.max_age_days} days"
    on = book.price_date.isoformat()
    if rented is not None and book.stale(rented.data_date):
        found.append(Caveat("price_stale", f"rented: {rented.label} is dated "
                            f"{rented.data_date.isoformat()}, {book.age_days(rented.data_date)} "
                            f"days before {on} ({limit}): check the price", "warning",
                            side="rented"))
    if rented is not None and rented.expired:
        found.append(Caveat("price_expired", f"rented: {rented.label}: its source said the price "
                            f"changes before {on}; used because its provider is named",
                            "warning", side="rented"))
    for price in prices:
        if book.stale(price.data_date):
            found.append(Caveat("price_stale", f"{price.name}: {price.data} data of "
                                f"{price.data_date.isoformat()}, {book.age_days(price.data_date)}"
                                f" days before {on} ({limit}): refresh (`harness prices "
                                "--refresh`) or check the price", "warning", api=price.name))
    if book.price_date != book.today:
        found.append(Caveat("price_date", f"API prices are those in force on {on} (--price-date) "
                            "as far as their data knows; the data cannot know of changes made "
                            "after its own date"))
    return found


def _tune_notes(run: MeasuredRun) -> list[Caveat]:
    """A tuned run: its variants are the trials of `harness tune`, the best of them named."""
    tune = run.stored.tune
    if tune is None:
        return []
    best = tune.best_trial
    said = f"best by its objective ({tune.objective}): trial {best.number}, {best.cell}" \
        if best else "no trial met the config's SLO"
    return [Caveat("tuned", f"tuned: the variants are the {len(tune.trials)} trials of "
                   f"`harness tune` ({tune.launches} server launches); {said}")]


def notes(run: MeasuredRun, profile: Profile, book: PriceBook, variants: list[VariantCost],
          prices: list[ApiPrice], demand: Demand) -> list[Caveat]:
    found = [Caveat("measured_on", f"measured on {run.manifest.hardware}, model {run.model}, "
                    f"run of {run.manifest.run_date}; SLO: {profile.slo.describe()}")]
    found += _hardware_notes(run, profile)
    found += _tune_notes(run)
    if run.model == "dummy:tiny":
        found.append(Caveat("dummy_model", "the run served dummy:tiny, a tiny random-weight "
                            "model: its throughput exercises the pipeline and says nothing about "
                            "serving a real model", "critical"))
    for tier in sorted({p.tier for p in prices if p.tier}):
        patterns = book.tiers[tier].models
        if patterns and book.tier_for_model(run.model) != tier:
            for price in (p for p in prices if p.tier == tier):
                found.append(Caveat(
                    "api_not_model_served", f"{price.name} (tier {tier}, "
                    f"{book.tiers[tier].description}) is not the model the run served "
                    f"({run.model}): it prices the same tokens, not the same model", "warning",
                    api=price.name))
    found += _mix_notes(variants, profile, demand)
    if len({p.result.workload for p in run.points}) > 1:
        found.append(Caveat("several_workloads", "the run measured several named workloads: "
                            "each variant is priced at its best cell over all of them, at one "
                            "mix; give the profile `tiers` to price each kind of request on its "
                            "own (docs/tiers.md)", "warning"))
    for variant in _power_assumed(variants):
        found.append(Caveat("power_assumed", f"{variant.variant}: owned power "
                            f"{profile.own.power_w_per_gpu:g} W per GPU is assumed (the "
                            "profile's own.power_w_per_gpu): the results have no measured "
                            "power", "warning", variant.variant, "owned"))
    if variants and all(v.capacity is None for v in variants):
        found.append(Caveat("no_capacity", "no measured point meets the SLO: no capacity at this "
                            "SLO, so no self-hosted cost (each variant's closest point is shown)",
                            "critical"))
    if profile.traffic is None:
        found.append(Caveat("no_traffic", "no traffic profile: give --profile FILE with a "
                            "`traffic` section for GPUs for peak, monthly bills, break-even "
                            "volume and the verdict"))
    return found


def _hardware_notes(run: MeasuredRun, profile: Profile) -> list[Caveat]:
    engine = run.manifest.config.engine
    if engine.kind == "external" and not run.manifest.gpu_names:
        # the server ran elsewhere: this host having no GPU says nothing about it
        priced = f"{profile.gpu} hours" if profile.gpu else "the run's own price"
        return [Caveat("external_server", f"the results were measured against a server the "
                       f"harness did not launch ({engine.url}); its hardware is unknown here, "
                       f"so the self-hosted figures are priced at {priced}", "warning")]
    if not run.manifest.gpu_names and profile.gpu is None:
        return [Caveat("no_gpu", f"the results were measured without a GPU "
                       f"({run.manifest.hardware}): the self-hosted figures are for that machine",
                       "warning")]
    if profile.gpu is None:
        return []
    base = profile.gpu.split("-")[0].lower()
    if not run.manifest.gpu_names:
        return [Caveat("no_gpu", f"the results were measured without a GPU, yet priced as "
                       f"{profile.gpu} hours: the figures are what this throughput would cost at "
                       f"{profile.gpu} prices", "warning")]
    if not any(base in name.lower() for name in run.manifest.gpu_names):
        return [Caveat("other_gpu", f"the results were measured on {run.manifest.hardware}, yet "
                       f"priced as {profile.gpu}", "warning")]
    return []


def _mix_notes(variants: list[VariantCost], profile: Profile, demand: Demand) -> list[Caveat]:
    """The mix of the points each capacity comes from, where it is not the profile's."""
    mixes = {v.variant: round(v.capacity.input_tps / v.capacity.output_tps, 3)
             for v in variants if v.capacity is not None and v.capacity.output_tps}
    converted = {name: mix for name, mix in mixes.items()
                 if not math.isclose(mix, demand.input_per_output, rel_tol=1e-3)}
    if not converted:
        return []
    measured = (f"{next(iter(converted.values())):g}:1" if len(set(converted.values())) == 1
                else ", ".join(f"{name} {mix:g}:1" for name, mix in converted.items()))
    return [Caveat("mix_converted", f"capacity converted from the measured mix {measured} "
                   f"to the profile's {demand.input_per_output:g}:1 (the mix of the points the "
                   "capacity comes from), an input token weighing 1/R of an output token "
                   f"(R = {profile.input_output_cost_ratio:g})")]


