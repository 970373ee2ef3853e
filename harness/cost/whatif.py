"""What-ifs from measurements: the profile's changes to a tier's traffic (prompts shorter or
longer, a higher prefix-cache hit share, fewer retries), each priced as the whole tiered answer
again on the same measurements. The requests a second are kept; a changed length is served at
the capacity measured at that length where a workload of the runs has it, else interpolated
between two measured workloads or taken from outside what was measured (harness.cost.lengths),
and the result says which."""

from __future__ import annotations

from harness.cost.inputs.tiers import TierSpec, WhatIf
from harness.cost.tier_model import TierModel
from harness.cost.tier_parts import SELF, Plan, TierTraffic, WhatIfResult
from harness.cost.tier_sensitivity import assignment
from harness.cost.tier_traffic import Lengths, tier_traffic


def _changed(spec: TierSpec, length: Lengths, what_if: WhatIf) -> tuple[TierSpec, Lengths, str]:
    words = []
    if what_if.input_scale is not None:
        scaled = length.input_tokens * what_if.input_scale
        words.append(f"input tokens x{what_if.input_scale:g} ({length.input_tokens:,.0f} -> "
                     f"{scaled:,.0f})")
        length = Lengths(scaled, length.output_tokens)
    update = {}
    for key in ("cached_input_share", "retry_rate"):
        value = getattr(what_if, key)
        if value is not None:
            update[key] = value
            words.append(f"{key.replace('_', ' ')} {value:.0%}")
    return spec.model_copy(update=update), length, ", ".join(words)


def _tiers(model: TierModel, what_if: WhatIf) -> tuple[list[TierTraffic], str]:
    tiers, words = [], []
    for spec, length, tier in zip(model.specs, model.lengths, model.tiers, strict=True):
        if what_if.tier not in (None, spec.name):
            tiers.append(tier)
            continue
        spec, length, change = _changed(spec, length, what_if)
        tiers.append(tier_traffic(spec, model.profile, tier.requests_per_s, length))
        words.append(f"{spec.name}: {change}")
    return tiers, "; ".join(words)


def basis(model: TierModel, tiers: list[TierTraffic], plan: Plan) -> list[tuple[str, str]]:
    """(how, basis) of each self-hosted tier's capacity in the plan, at its pool's setup."""
    found = []
    for pool in plan.pools:
        for name in pool.tiers:
            tier = next(t for t in tiers if t.name == name)
            option = next(o for o in model.maker.options(tier) if o.name == pool.option
                          and o.kind == SELF)
            fit = next(f for f in option.fits if f.setup == pool.setup)
            found.append((fit.how, f"{name} on {pool.option} ({pool.setup}): {fit.basis}"))
    return found


def what_ifs(model: TierModel, changes: list[WhatIf], base: Plan) -> list[WhatIfResult]:
    found = []
    for what_if in changes:
        tiers, words = _tiers(model, what_if)
        plan = model.mixed(tiers)
        how = basis(model, tiers, plan)
        found.append(WhatIfResult(
            what_if.name, words, plan.usd_per_month, plan.usd_per_month - base.usd_per_month,
            assignment(plan), tuple(text for _, text in how),
            any(kind == "outside" for kind, _ in how)))
    return found
