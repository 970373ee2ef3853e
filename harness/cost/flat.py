"""The answer flattened for scripts and spreadsheets: the one place where the typed parts
(harness.cost.parts) become the named columns of `harness cost --format json|csv`.

A table's rows all carry the same columns, in the order they first appear. A column is there
when some row has its part (a priced side, a bill for the traffic) and empty in the rows that
do not.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd

from harness.contract.results import kind_label
from harness.cost.caveats import SIDES, worst

if TYPE_CHECKING:
    from harness.cost.parts import (
        Answer,
        ApiCost,
        Decision,
        Sensitivity,
        VariantCost,
        Verdict,
    )
    from harness.cost.points import PointCost

TABLES = ("verdicts", "decision", "capacity", "apis", "break-even", "sensitivity", "prices",
          "caveats")
BREAK_EVEN_COLUMNS = ["variant", "side", "api", "range", "from_mtok_month", "to_mtok_month",
                      "contains_this_traffic"]
CAVEAT_COLUMNS = ["code", "text", "severity", "variant", "side", "api"]


def _filled(rows: list[dict]) -> list[dict]:
    """Every row with every column of the table (None where it has none)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [{key: row.get(key) for key in columns} for row in rows]


# --- per variant -------------------------------------------------------------------------

def _capacity_columns(variant: VariantCost) -> dict:
    c = variant.capacity
    if c is None:
        return {"variant": variant.variant, "capacity_tps": None, "slo_note": variant.slo_note}
    row = {"variant": variant.variant, "cell": c.cell, "point": c.point,
           "max_num_seqs": c.max_num_seqs, "tensor_parallel_size": c.tensor_parallel_size,
           "concurrency": c.concurrency, "rate_rps": c.rate_rps,
           "gpus_per_replica": c.gpus_per_replica, "input_tps": c.input_tps,
           "output_tps": c.output_tps, "capacity_tps": c.tps, "capacity_window": c.window,
           "capacity_low_tps": c.low_tps, "capacity_high_tps": c.high_tps,
           "mean_power_w": c.mean_power_w, "capacity_source": c.source,
           "capacity_verified": c.verified, "capacity_at_least": c.at_least, "capacity_n": c.n}
    if c.search is not None:
        row.update(search_rate_rps=c.search.rate_rps, search_slo=c.search.slo)
    row["slo_note"] = variant.slo_note
    return row


def _cost_columns(variant: VariantCost) -> dict:
    """capacity per unit, then each side: its split (rented), hourly and full-load cost, the
    replicas (named once, where the first side with a bill puts them), its bill, its power
    (owned); then the units for the peak."""
    if variant.capacity is None:
        return {}
    row: dict = {"capacity_tps_per_unit": variant.capacity.tps_per_unit}
    for side in SIDES:
        cost = variant.side(side)
        if cost is None:
            continue
        if cost.split is not None:
            row[f"{side}_usd_per_mtok_input"] = cost.split.input_usd_per_mtok
            row[f"{side}_usd_per_mtok_output"] = cost.split.output_usd_per_mtok
        row[f"{side}_usd_per_replica_hour"] = cost.usd_per_replica_hour
        row[f"{side}_usd_per_mtok_full_load"] = cost.usd_per_mtok_full_load
        if variant.provisioning is not None:
            row["replicas"] = variant.provisioning.replicas
            row["utilization"] = variant.provisioning.utilization
            row[f"{side}_usd_per_month"] = cost.usd_per_month
            row[f"{side}_usd_per_mtok_effective"] = cost.usd_per_mtok_effective
        if cost.power is not None:
            row[f"{side}_power_w_per_unit"] = cost.power.w_per_unit
            row[f"{side}_power_basis"] = cost.power.basis
    if variant.provisioning is not None:
        row["units"] = variant.provisioning.units
    return row


def variant_rows(answer: Answer) -> list[dict]:
    """The `capacity` table: one row per variant."""
    rows = _filled([_capacity_columns(v) for v in answer.variants])
    rows = _filled([{**row, **_cost_columns(v)} for row, v in zip(rows, answer.variants,
                                                                   strict=True)])
    if any(v.capacity is not None for v in answer.variants):
        for row in rows:   # tok/s per GPU (or machine); $/h per replica
            row["capacity_tps_per_unit_is"] = f"per {answer.unit}"
            row["usd_per_hour_is"] = "per replica (a server with gpus_per_replica GPUs)"
    for row, variant in zip(rows, answer.variants, strict=True):
        if variant.fidelity is not None:
            row["fidelity"] = variant.fidelity.score
            row["fidelity_miss"] = variant.fidelity.miss
    return rows


# --- per API and per (variant, API) --------------------------------------------------------

def api_row(api: ApiCost) -> dict:
    return {"api": api.name, "api_tier": api.tier,
            "api_input_usd_per_mtok": api.input_usd_per_mtok,
            "api_cached_input_usd_per_mtok": api.cached_input_usd_per_mtok,
            "api_output_usd_per_mtok": api.output_usd_per_mtok,
            "api_has_batch_price": api.has_batch_price, "api_usd_per_mtok": api.usd_per_mtok,
            "api_usd_per_month": api.usd_per_month,
            "api_prices_as_of": api.prices_as_of.isoformat(), "api_price_data": api.price_data,
            "api_price_data_date": api.price_data_date.isoformat(),
            "api_tier_checked": api.tier_checked.isoformat() if api.tier_checked else None,
            "api_price_source": api.price_source}


def _verdict_columns(verdict: Verdict) -> dict:
    row = {}
    for side in SIDES:
        found = verdict.side(side)
        if not found.priced:
            continue
        row[f"{side}_break_even_utilization"] = found.break_even_utilization
        compared = found.comparison
        if compared is not None:
            row.update({
                f"{side}_break_even_traffic_mtok_month": compared.break_even_traffic_mtok_month,
                f"{side}_break_even_ranges": compared.ranges_text,
                f"{side}_break_even_range_count": len(compared.ranges),
                f"{side}_cheaper": compared.cheaper,
                f"{side}_minus_api_usd_per_month": compared.minus_api_usd_per_month,
                f"{side}_over_api": compared.over_api})
    return row


def verdict_rows(answer: Answer) -> list[dict]:
    """The `verdicts` table: the variant's and the API's columns, each side's verdict, the
    rented price and the caveats each side rests on."""
    variants = {row["variant"]: row for row in variant_rows(answer)}
    rows = _filled([{**variants[v.variant.variant], **api_row(v.api), **_verdict_columns(v)}
                    for v in answer.verdicts])
    rented = answer.rented_price
    for row, verdict in zip(rows, answer.verdicts, strict=True):
        if rented is not None:
            row["rented_price"] = f"${rented.usd_per_hour:g}/h per " + (
                "GPU" if rented.per_gpu else "machine") + f", {rented.label}"
            row["rented_price_source"] = rented.source
            row["rented_price_dated"] = rented.dated
            row["rented_price_data_date"] = rented.data_date.isoformat()
        for side in SIDES:
            row[f"{side}_caveats"] = verdict.side(side).caveat_codes
            row[f"{side}_caveat_severity"] = verdict.side(side).caveat_severity
    return rows


# --- the decision, ranges, sensitivity, prices, caveats ----------------------------------

def decision_row(decision: Decision) -> dict:
    c = decision.capacity
    return {"variant": decision.variant, "cheapest": decision.cheapest,
            "usd_per_month": decision.usd_per_month, "runner_up": decision.runner_up,
            "runner_up_usd_per_month": decision.runner_up_usd_per_month,
            "margin_usd_per_month": decision.margin_usd_per_month,
            "runner_up_over_cheapest": decision.runner_up_over_cheapest,
            "caveats": decision.caveat_codes, "caveat_severity": worst(decision.rests_on),
            "indicative": decision.indicative,
            "capacity_source": c.source if c else None,
            "capacity_verified": c.verified if c else None,
            "capacity_at_least": c.at_least if c else None, "capacity_n": c.n if c else None,
            "capacity_tps": c.tps if c else None, "capacity_low_tps": c.low_tps if c else None,
            "capacity_high_tps": c.high_tps if c else None}


def sensitivity_row(row: Sensitivity) -> dict:
    found = {"variant": row.variant, "side": row.side, "api": row.api, "input": row.input,
             "unit": row.unit, "base": row.base, "low": row.low, "high": row.high,
             "minus_api_usd_month_at_low": row.minus_api_usd_month_at_low,
             "minus_api_usd_month_at_base": row.minus_api_usd_month_at_base,
             "minus_api_usd_month_at_high": row.minus_api_usd_month_at_high,
             "cheaper_at_base": row.cheaper_at_base, "flips_at": row.flips_at,
             "flips_at_change": row.flips_at_change}
    if row.interval is not None:
        found.update({"flips_within_interval": row.interval.flips_within,
                      "interval_low": row.interval.low, "interval_high": row.interval.high,
                      "minus_api_usd_month_at_interval_low":
                          row.interval.minus_api_usd_month_at_low,
                      "minus_api_usd_month_at_interval_high":
                          row.interval.minus_api_usd_month_at_high})
    return found


def _break_even(answer: Answer) -> pd.DataFrame:
    if not answer.has_traffic:
        return pd.DataFrame()
    return pd.DataFrame([[r.variant, r.side, r.api, r.index, r.from_mtok_month,
                          r.to_mtok_month, r.contains_this_traffic] for r in answer.break_even],
                        columns=BREAK_EVEN_COLUMNS)


def _prices(answer: Answer) -> pd.DataFrame:
    return pd.DataFrame([{**asdict(p), "data_date": p.data_date.isoformat(),
                          "in_force_on": p.in_force_on.isoformat()} for p in answer.prices])


def frame(answer: Answer, table: str) -> pd.DataFrame:
    """One of the answer's tables by name (TABLES)."""
    if table == "break-even":
        return _break_even(answer)
    if table == "prices":
        return _prices(answer)
    if table == "caveats":
        return pd.DataFrame([c.as_dict() for c in answer.caveats], columns=CAVEAT_COLUMNS)
    rows = {"verdicts": verdict_rows, "capacity": variant_rows,
            "apis": lambda a: [api_row(api) for api in a.apis],
            "decision": lambda a: [decision_row(d) for d in a.decision],
            "sensitivity": lambda a: [sensitivity_row(s) for s in a.sensitivity]}[table]
    return pd.DataFrame(rows(answer))


def _records(data: pd.DataFrame) -> list[dict]:
    return json.loads(data.to_json(orient="records")) if not data.empty else []


def as_dict(answer: Answer) -> dict:
    """Everything `harness cost` says, as one JSON-ready document."""
    return {
        "title": answer.title,
        "unit": answer.unit,
        "capacity_per": f"per {answer.unit}",
        "costs_per": "per replica (one server of a cell, with all its GPUs)",
        "demand": {**asdict(answer.demand),
                   "traffic_mtok_month": answer.demand.traffic_mtok_month,
                   "traffic_tokens_per_day": answer.demand.traffic_tokens_per_day,
                   "served_mtok_month": answer.demand.served_mtok_month},
        "owned_inputs": answer.owned_inputs,
        "decision": _records(frame(answer, "decision")),
        "capacity": _records(frame(answer, "capacity")),
        "apis": _records(frame(answer, "apis")),
        "verdicts": _records(frame(answer, "verdicts")),
        "break_even_ranges": _records(frame(answer, "break-even")),
        "sensitivity": _records(frame(answer, "sensitivity")),
        "prices": _records(frame(answer, "prices")),
        "prices_used": answer.prices_used,
        "caveats": [c.as_dict() for c in answer.caveats],
    }


# --- the measured points (`harness cost --points`) ---------------------------------------

def point_row(point: PointCost) -> dict:
    if not point.measured:
        return {"variant": point.variant, "max_num_seqs": point.max_num_seqs,
                "tensor_parallel_size": point.tensor_parallel_size,
                "concurrency": point.concurrency, "point": point.point, "status": point.status,
                "meets_slo": point.meets_slo, "slo_miss": point.slo_miss}
    row = {"variant": point.variant, "max_num_seqs": point.max_num_seqs,
           "tensor_parallel_size": point.tensor_parallel_size, "concurrency": point.concurrency,
           "rate": point.rate, "point": point.point, "kind": kind_label(point.kind),
           "measured_at": point.measured_at, "status": point.status,
           "meets_slo": point.meets_slo, "slo_miss": point.slo_miss,
           "output_throughput": point.output_throughput,
           "total_token_throughput": point.total_token_throughput}
    if point.prices is not None:
        row.update(asdict(point.prices))
    return row


def point_frame(points: list[PointCost]) -> pd.DataFrame:
    return pd.DataFrame([point_row(p) for p in points])
