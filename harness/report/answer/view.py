"""The report's view of the build-or-buy answer: the same `Answer` that `harness cost` prints
(harness.cost.answer.build_answer), for the traffic profile the run's config names. Everything
the page takes from the Answer passes through `cost_view`, so a change to the Answer is adapted
in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console

from harness.cost import formulas
from harness.cost.answer import Answer, build_answer, points_frame
from harness.cost.caveats import Caveat, rank, worst
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import load_profile
from harness.cost.labels import missing, point_label
from harness.report.answer.tables import capacity_label
from harness.report.answer.terminal import answer_view
from harness.store.run_store import StoredRun


@dataclass
class CostView:
    """What the page shows of the answer, or why there is none (`reason`)."""

    reason: str | None = None
    answer_html: str = ""          # the whole answer as `harness cost --detail` prints it
    unit: str = "GPU"              # capacity is per GPU or per machine
    decision: pd.DataFrame = field(default_factory=pd.DataFrame)   # one row per variant
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)   # $/Mtok, one row per variant
    points: pd.DataFrame = field(default_factory=pd.DataFrame)     # $/Mtok per point and side
    apis: pd.DataFrame = field(default_factory=pd.DataFrame)       # $/Mtok per API, data dates
    bills: pd.DataFrame = field(default_factory=pd.DataFrame)      # $/month against Mtok/month
    break_even: pd.DataFrame = field(default_factory=pd.DataFrame)  # ranges, cheapest API
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)
    prices: pd.DataFrame = field(default_factory=pd.DataFrame)     # each price, its data date
    traffic_mtok_month: float | None = None
    caveats: list[Caveat] = field(default_factory=list)
    prices_used: list[str] = field(default_factory=list)


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
        per_point = points_frame(stored, profile, book)
    except (CostInputError, ValueError) as err:
        return CostView(reason=f"no verdict: {str(err).splitlines()[0]}")
    return CostView(answer_html=_as_html(answer), unit=answer.unit,
                    decision=_decision(answer), headline=_headline(answer),
                    points=_point_costs(per_point, answer.variants),
                    apis=_api_prices(answer.apis), bills=_bills(answer),
                    break_even=_cheapest_api_ranges(answer),
                    sensitivity=answer.sensitivity, prices=answer.prices,
                    traffic_mtok_month=answer.demand.traffic_mtok_month,
                    caveats=answer.caveats, prices_used=answer.prices_used)


def _as_html(answer: Answer) -> str:
    recorder = Console(record=True, width=220, file=open("/dev/null", "w"))  # noqa: SIM115
    recorder.print(answer_view(answer, detail=True))
    return recorder.export_html(inline_styles=True, code_format="<pre class=answer>{code}</pre>")


def _decision(answer: Answer) -> pd.DataFrame:
    """Per variant: the decision (cheapest way, its bill, runner-up, margin), the capacity it
    rests on with its source and n, and the caveats (warning and worse) that qualify it."""
    if answer.decision.empty:
        return pd.DataFrame()
    frame = answer.decision.copy()
    variants = answer.variants.set_index("variant")
    capacity, per_unit = [], []
    for row in frame.to_dict("records"):
        facts = {**variants.loc[row["variant"]].to_dict(), "variant": row["variant"]}
        found = not missing(facts.get("capacity_tps"))
        capacity.append(capacity_label(facts) if found else facts.get("slo_note") or "-")
        per_unit.append(facts.get("capacity_tps_per_unit") if found else None)
    frame["capacity_from"] = capacity
    frame["capacity_tps_per_unit"] = per_unit
    frame["caveat_list"] = [_qualifying(answer.caveats, row) for row in
                            frame.to_dict("records")]
    return frame


def _qualifying(caveats: list[Caveat], row: dict) -> list[tuple[str, str, str]]:
    """(code, worst severity, first sentence) of each caveat code the decision row names,
    as it applies to this variant, worst first."""
    named = [code for code in (row.get("caveats") or "").split("; ") if code]
    found = []
    for code in named:
        matching = [c for c in caveats if c.code == code and c.variant in (None, row["variant"])]
        found.append((code, worst(matching) or "warning", matching[0].text if matching else ""))
    return sorted(found, key=lambda entry: -rank(entry[1]))


def _headline(answer: Answer) -> pd.DataFrame:
    wanted = ["variant", "capacity_tps_per_unit", "rented_usd_per_mtok_full_load",
              "rented_usd_per_mtok_effective", "owned_usd_per_mtok_full_load",
              "owned_usd_per_mtok_effective", "reason"]
    variants = answer.variants
    frame = variants[[c for c in wanted if c in variants]].copy()
    frame.insert(1, "best_cell", [point_label(row) if not missing(row.get("capacity_tps"))
                                  else "none at the SLO" for row in variants.to_dict("records")])
    verdicts = answer.verdicts
    for side in ("rented", "owned"):
        column = f"{side}_cheaper"
        if column in verdicts:
            frame[f"{side}_wins"] = [
                _wins(verdicts[verdicts["variant"] == v], column) for v in frame["variant"]]
    return frame


def _wins(rows: pd.DataFrame, column: str) -> str:
    cheaper = rows[column].dropna()
    if cheaper.empty:
        return "-"
    wins = int((cheaper == "self-hosted").sum())
    return f"cheaper than {wins} of {len(cheaper)} APIs"


def _point_costs(per_point: pd.DataFrame, variants: pd.DataFrame) -> pd.DataFrame:
    """$/Mtok at the profile's mix per point, rented and owned (owned scales the rented figure
    by the variant's owned/rented hourly price: the same throughput, another price)."""
    if per_point.empty or "usd_per_mtok_at_profile_mix" not in per_point:
        return pd.DataFrame()
    ok = per_point[per_point["status"] == "ok"]
    rows = []
    hourly = variants.set_index("variant") if "variant" in variants else pd.DataFrame()
    for row in ok.to_dict("records"):
        rented = row["usd_per_mtok_at_profile_mix"]
        base = {k: row[k] for k in ("variant", "max_num_seqs", "concurrency", "point")}
        base["meets_slo"] = bool(row["meets_slo"])
        rows.append({**base, "side": "rented", "usd_per_mtok": rented})
        ratio = _owned_over_rented(hourly, row["variant"])
        if ratio is not None and not missing(rented):
            rows.append({**base, "side": "owned", "usd_per_mtok": rented * ratio})
    return pd.DataFrame(rows)


def _owned_over_rented(hourly: pd.DataFrame, variant: str) -> float | None:
    columns = ("owned_usd_per_replica_hour", "rented_usd_per_replica_hour")
    if variant not in hourly.index or not all(c in hourly for c in columns):
        return None
    owned, rented = (hourly.loc[variant, c] for c in columns)
    return None if missing(owned) or missing(rented) or not rented else owned / rented


def _api_prices(apis: pd.DataFrame) -> pd.DataFrame:
    if apis.empty:
        return apis
    frame = apis[["api", "api_usd_per_mtok", "api_price_data_date"]].copy()
    frame["label"] = [f"{a} ${p:.4g} (data of {d})" for a, p, d in
                      zip(frame["api"], frame["api_usd_per_mtok"], frame["api_price_data_date"],
                          strict=True)]
    return frame


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
        for variant in answer.variants.to_dict("records"):
            for side in ("rented", "owned"):
                hourly = variant.get(f"{side}_usd_per_replica_hour")
                if missing(hourly) or missing(variant.get("capacity_tps")):
                    continue
                rows.append({"mtok_month": volume, "who": f"{variant['variant']} {side}",
                             "kind": "self-hosted", "usd_month": formulas.self_hosted_monthly_usd(
                                 served_tps, demand.peak_to_average, variant["capacity_tps"],
                                 hourly)})
        for api in answer.apis.to_dict("records"):
            usd = formulas.api_monthly_usd(served_tps, api["api_usd_per_mtok"])
            rows.append({"mtok_month": volume, "who": api["api"], "kind": "API",
                         "usd_month": usd})
    return pd.DataFrame(rows)


def _cheapest_api_ranges(answer: Answer) -> pd.DataFrame:
    """The Answer's break-even ranges of each variant and side against the API that is
    cheapest for this traffic (the one the decision and the sensitivity table weigh)."""
    ranges, apis = answer.break_even, answer.apis
    if ranges.empty or apis.empty or apis["api_usd_per_month"].isna().all():
        return pd.DataFrame()
    cheapest = apis.loc[apis["api_usd_per_month"].idxmin(), "api"]
    found = ranges[ranges["api"] == cheapest].copy()
    found["who"] = found["variant"] + " " + found["side"]
    return found.reset_index(drop=True)
