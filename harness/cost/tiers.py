"""Tiers and model choice: stored runs, a profile with `tiers` and prices -> the tiered answer
(typed parts in harness.cost.tier_parts).

Per tier the cheapest option good enough for it (a variant on its measured machine, or an API),
self-hosted tiers on one deployment sharing replicas sized for their combined peak; the mixed
monthly bill against every tier on one option (the cheapest good enough for all, and the
cheapest such API); what moves it (tier shares, volume) and the profile's what-ifs.
docs/tiers.md has the rules.
"""

from __future__ import annotations

from harness.cost.assign import EVEN, cheapest_mix, single_plans
from harness.cost.inputs.prices import PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.tier_model import TierModel
from harness.cost.tier_notes import tier_caveats, tier_prices, tier_prices_used
from harness.cost.tier_parts import API, Comparison, Plan, TierAnswer
from harness.cost.tier_sensitivity import share_sensitivity
from harness.cost.whatif import what_ifs
from harness.store.run_store import StoredRun


def compare(mixed: Plan, singles: list[Plan]) -> Comparison:
    good = [plan for plan in singles if plan.good_for_all]
    best = good[0] if good else None
    api = next((p for p in good if all(s.kind == API for s in p.served)), None)
    wins = best is None or mixed.usd_per_month < best.usd_per_month - EVEN
    return Comparison(mixed.usd_per_month, best, api, wins)


def build_tier_answer(runs: list[StoredRun], profile: Profile, book: PriceBook,
                      profile_name: str | None = None) -> TierAnswer:
    """Everything `harness cost RUN [RUN...] --profile P` says for a profile with tiers."""
    model = TierModel.of(runs, profile, book)
    option_lists = model.options(model.tiers)
    mixed = cheapest_mix(model.tiers, option_lists)
    singles = single_plans(model.tiers, option_lists)
    title = ", ".join(str(run.root) for run in runs)
    if profile_name:
        title += f", profile {profile_name}"
    per_gpu = profile.gpu is not None or any(run.manifest.gpu_names for run in runs)
    answer = TierAnswer(title, model.tiers, [o for found in option_lists for o in found], mixed,
                        singles, compare(mixed, singles), unit="GPU" if per_gpu else "machine")
    answer.sensitivity = share_sensitivity(model, mixed)
    answer.what_ifs = what_ifs(model, profile.what_if or [], mixed)
    answer.prices = tier_prices(model.deployments, model.maker.apis, book)
    answer.prices_used = tier_prices_used(model.deployments, profile, model.maker.apis, book)
    answer.caveats = tier_caveats(model, answer, book)
    return answer
