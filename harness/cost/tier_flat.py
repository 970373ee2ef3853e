"""The tiered answer flattened for scripts: the one place where its typed parts
(harness.cost.tier_parts) become the columns of `harness cost --format json|csv` for a profile
with tiers."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd

from harness.cost.flat import CAVEAT_COLUMNS
from harness.cost.tier_parts import Plan, TierAnswer, TierOption

TIER_TABLES = ("tiers", "plans", "options", "pools", "sensitivity", "what-ifs", "prices",
               "caveats")


def _pool_of(plan: Plan, tier: str):
    return next((p for p in plan.pools if tier in p.tiers), None)


def tier_rows(answer: TierAnswer) -> list[dict]:
    """Per tier its traffic and who serves it in the cheapest mix, with its part of the bill."""
    rows = []
    total = answer.mixed.usd_per_month
    for tier, served in zip(answer.tiers, answer.mixed.served, strict=True):
        d = tier.demand
        row = {"tier": tier.name, "share": tier.share, "requests_per_s": tier.requests_per_s,
               "input_tokens": d.input_tokens, "output_tokens": d.output_tokens,
               "workload": tier.workload, "slo": tier.slo, "served_by": ", ".join(tier.served_by),
               "average_tps": d.average_tps, "peak_tps": d.peak_tps,
               "peak_to_average": d.peak_to_average, "cached_input_share": d.cached_input_share,
               "retry_rate": d.retry_rate, "batch_share": d.batch_share,
               "served_on": served.option, "kind": served.kind,
               "usd_per_month": served.usd_per_month,
               "bill_share": served.usd_per_month / total if total else None}
        pool = _pool_of(answer.mixed, tier.name)
        fit = _fit(answer, tier.name, pool) if pool else None
        row.update({"setup": pool.setup if pool else None,
                    "pool_replicas": pool.replicas if pool else None,
                    "pool_tiers": ", ".join(pool.tiers) if pool else None,
                    "capacity_tps": fit.tps if fit else None,
                    "capacity_how": fit.how if fit else None,
                    "capacity_basis": fit.basis if fit else None,
                    "capacity_source": fit.capacity.source if fit else None,
                    "capacity_verified": fit.capacity.verified if fit else None})
        rows.append(row)
    return rows


def _fit(answer: TierAnswer, tier: str, pool):
    option = next(o for o in answer.options_of(tier) if o.name == pool.option)
    return next(f for f in option.fits if f.setup == pool.setup)


def option_row(option: TierOption) -> dict:
    fit = option.best_fit
    api = option.api
    return {"tier": option.tier, "option": option.name, "kind": option.kind,
            "eligible": option.eligible, "why_not": option.why_not,
            "alone_usd_per_month": option.alone_usd_per_month,
            "best_setup": fit.setup if fit else None,
            "capacity_tps": fit.tps if fit else None,
            "gpus_per_replica": fit.gpus_per_replica if fit else None,
            "usd_per_replica_hour": fit.usd_per_replica_hour if fit else None,
            "capacity_how": fit.how if fit else None,
            "capacity_basis": fit.basis if fit else None,
            "api_usd_per_mtok": api.usd_per_mtok if api else None,
            "api_tier": api.tier if api else None}


def plan_rows(answer: TierAnswer) -> list[dict]:
    """One row per (plan, tier): each plan's bill stacked by tier (what the bars draw)."""
    return [{"plan": plan.name, "plan_kind": plan.kind,
             "plan_usd_per_month": plan.usd_per_month, "good_for_all": plan.good_for_all,
             "not_good_enough_for": ", ".join(plan.not_for) or None, "tier": served.tier,
             "served_on": served.option, "kind": served.kind,
             "usd_per_month": served.usd_per_month}
            for plan in answer.plans for served in plan.served]


def pool_rows(answer: TierAnswer) -> list[dict]:
    return [{"plan": plan.name, "option": pool.option, "setup": pool.setup,
             "tiers": ", ".join(pool.tiers), "replicas": pool.replicas, "units": pool.units,
             "unit": answer.unit, "utilization": pool.utilization,
             "usd_per_month": pool.usd_per_month}
            for plan in answer.plans for pool in plan.pools]


def comparison_dict(answer: TierAnswer) -> dict:
    c = answer.comparison
    return {"mixed_usd_per_month": c.mixed_usd_per_month, "mixing_wins": c.mixing_wins,
            "best_single": c.best_single.name if c.best_single else None,
            "best_single_usd_per_month": c.best_single.usd_per_month if c.best_single else None,
            "saves_usd_per_month": c.saves_usd_per_month,
            "cheapest_api": c.cheapest_api.name if c.cheapest_api else None,
            "cheapest_api_usd_per_month":
                c.cheapest_api.usd_per_month if c.cheapest_api else None,
            "assignment": {s.tier: s.option for s in answer.mixed.served}}


def tier_frame(answer: TierAnswer, table: str) -> pd.DataFrame:
    """One of the tiered answer's tables by name (TIER_TABLES)."""
    if table == "caveats":
        return pd.DataFrame([c.as_dict() for c in answer.caveats], columns=CAVEAT_COLUMNS)
    rows = {"tiers": tier_rows, "plans": plan_rows, "pools": pool_rows,
            "options": lambda a: [option_row(o) for o in a.options],
            "sensitivity": lambda a: [asdict(s) for s in a.sensitivity],
            "what-ifs": lambda a: [{**asdict(w), "basis": "; ".join(w.basis)}
                                   for w in a.what_ifs],
            "prices": lambda a: [{**asdict(p), "data_date": p.data_date.isoformat(),
                                  "in_force_on": p.in_force_on.isoformat()} for p in a.prices],
            }[table]
    return pd.DataFrame(rows(answer))


def _records(data: pd.DataFrame) -> list[dict]:
    return json.loads(data.to_json(orient="records")) if not data.empty else []


def tier_dict(answer: TierAnswer) -> dict:
    """Everything the tiered answer says, as one JSON-ready document."""
    return {"title": answer.title, "unit": answer.unit,
            "comparison": comparison_dict(answer),
            **{name.replace("-", "_"): _records(tier_frame(answer, name))
               for name in TIER_TABLES if name != "caveats"},
            "prices_used": answer.prices_used,
            "caveats": [c.as_dict() for c in answer.caveats]}
