"""Who serves each tier: the cheapest assignment of tiers to options, and every tier on one
option.

An API bills each tier on its own. A self-hosted deployment serving several tiers runs one pool
of replicas for all of them, sized for their combined peak: each tier's peak is a share of a
replica at its own lengths (peak tok/s / capacity at those lengths), and the pool needs
ceil(sum of the shares) replicas, on the server setup (batch size, parallelism) that makes that
cheapest, or one pool per tier where that is cheaper. The pool's bill is split between its
tiers by their shares. Every assignment is tried (each tier's cheapest API stands for its APIs).
"""

from __future__ import annotations

import itertools
import math

from harness.cost import formulas
from harness.cost.inputs.files import CostInputError
from harness.cost.tier_parts import API, SELF, Plan, Pool, Served, SetupFit, TierOption, TierTraffic

MAX_ASSIGNMENTS = 200_000
EVEN = 0.005                       # dollars a month: two bills closer than this are equal


def _pool(option: str, tiers: list[TierTraffic], fits: list[dict[str, SetupFit]]) -> Pool | None:
    """One pool of replicas for these tiers on the cheapest setup they all fit, or None."""
    best = None
    for setup in set.intersection(*(set(f) for f in fits)):
        chosen = [f[setup] for f in fits]
        load = tuple(t.demand.peak_tps / fit.tps for t, fit in zip(tiers, chosen, strict=True))
        replicas = formulas.replicas_for_peak(sum(load), 1.0)
        busy = sum(t.demand.average_tps / fit.tps for t, fit in zip(tiers, chosen, strict=True))
        bill = replicas * chosen[0].usd_per_replica_hour * formulas.HOURS_PER_MONTH
        pool = Pool(option, setup, tuple(t.name for t in tiers), replicas,
                    replicas * chosen[0].gpus_per_replica, busy / replicas, bill, load)
        if best is None or (pool.usd_per_month, pool.units) < (best.usd_per_month, best.units):
            best = pool
    return best


def _pools(option: str, tiers: list[TierTraffic], fits: list[dict[str, SetupFit]]) -> list[Pool]:
    """The tiers on one deployment: one shared pool, or one pool each where that is cheaper."""
    shared = _pool(option, tiers, fits)
    if len(tiers) == 1:
        return [shared]
    apart = [_pool(option, [t], [f]) for t, f in zip(tiers, fits, strict=True)]
    if shared is not None and shared.usd_per_month <= sum(p.usd_per_month for p in apart) + EVEN:
        return [shared]
    return apart


def _fits(option: TierOption) -> dict[str, SetupFit]:
    return {fit.setup: fit for fit in option.fits}


def plan_of(tiers: list[TierTraffic], chosen: list[TierOption], name: str, kind: str) -> Plan:
    """The plan that serves tier i with chosen[i]: its pools, each tier's part of the bill."""
    parts: dict[str, Served] = {}
    pools: list[Pool] = []
    by_option: dict[str, list[int]] = {}
    for index, option in enumerate(chosen):
        if option.kind == API:
            tier = tiers[index]
            parts[tier.name] = Served(tier.name, option.name, API, option.api.usd_per_month)
        else:
            by_option.setdefault(option.name, []).append(index)
    for option, indexes in by_option.items():
        found = _pools(option, [tiers[i] for i in indexes], [_fits(chosen[i]) for i in indexes])
        pools += found
        for pool in found:
            total = sum(pool.load)
            for tier, load in zip(pool.tiers, pool.load, strict=True):
                part = load / total if total else 1 / len(pool.load)
                parts[tier] = Served(tier, option, SELF, pool.usd_per_month * part)
    served = tuple(parts[t.name] for t in tiers)
    return Plan(name, kind, served, tuple(pools), sum(s.usd_per_month for s in served))


def _choices(option_lists: list[list[TierOption]]) -> list[list[TierOption]]:
    """Each tier's eligible options, its APIs reduced to the cheapest."""
    found = []
    for options in option_lists:
        hosted = [o for o in options if o.eligible and o.kind == SELF]
        apis = [o for o in options if o.eligible and o.kind == API]
        cheapest = [min(apis, key=lambda o: o.api.usd_per_month)] if apis else []
        found.append(hosted + cheapest)
    return found


def cheapest_mix(tiers: list[TierTraffic], option_lists: list[list[TierOption]]) -> Plan:
    """The cheapest plan over every assignment of eligible options to tiers."""
    choices = _choices(option_lists)
    for tier, found in zip(tiers, choices, strict=True):
        if not found:
            raise CostInputError(f"tier {tier.name}: nothing in served_by can serve it (see "
                                 "the options table: no capacity at its SLO, a fidelity miss "
                                 "or no price)")
    if math.prod(len(c) for c in choices) > MAX_ASSIGNMENTS:
        raise CostInputError(f"tiers: more than {MAX_ASSIGNMENTS:,} ways to assign them; name "
                             "fewer options in served_by")
    plans = (plan_of(tiers, list(chosen), "cheapest mix", "mixed")
             for chosen in itertools.product(*choices))
    return min(plans, key=_rank)


def _rank(plan: Plan) -> tuple:
    """The bill; on a tie the fewest GPUs, then the most headroom (the least peak load in
    replicas), so that equal bills do not flip the answer on the order of the options."""
    return (round(plan.usd_per_month / EVEN), sum(p.units for p in plan.pools),
            sum(sum(p.load) for p in plan.pools))


def single_plans(tiers: list[TierTraffic], option_lists: list[list[TierOption]]) -> list[Plan]:
    """Every tier on one option, for each option able to serve them all (at every tier's SLO,
    priced), whether or not it is good enough for each; cheapest first."""
    plans = []
    names = dict.fromkeys(o.name for options in option_lists for o in options)
    for name in names:
        chosen = [next((o for o in options if o.name == name), None) for options in option_lists]
        if any(o is None or not _able(o) for o in chosen):
            continue
        plan = plan_of(tiers, chosen, f"all on {name}", "single")
        not_for = tuple(t.name for t, o in zip(tiers, chosen, strict=True) if not o.eligible)
        plans.append(Plan(plan.name, plan.kind, plan.served, plan.pools, plan.usd_per_month,
                          not not_for, not_for))
    return sorted(plans, key=lambda p: p.usd_per_month)


def _able(option: TierOption) -> bool:
    return bool(option.fits) if option.kind == SELF else option.api is not None
