"""Build versus buy: a stored run, a traffic profile and prices -> the answer (typed parts in
harness.cost.parts).

Per variant its capacity at the SLO and what each side costs, per comparable API its bill,
per (variant, API) the verdict and the break-even, then the decision, what flips it and the
caveats. Reads stored results only; the formulas are in harness.cost.formulas.
"""

from __future__ import annotations

from harness.cost.capacity import capacity_caveats, variant_capacities
from harness.cost.caveats import Caveat
from harness.cost.costs import api_costs, variant_costs
from harness.cost.decision import decide
from harness.cost.demand import demand_of
from harness.cost.fidelity import fidelity_caveats, fidelity_marks
from harness.cost.hosting import owned_applies, rented_price
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.prices import PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.measured import MeasuredRun, judged
from harness.cost.notes import notes, price_caveats, price_rows, prices_used
from harness.cost.parts import Answer
from harness.cost.ranges import break_even_ranges
from harness.cost.sensitivity import flip_caveats, sensitivity
from harness.cost.verdicts import tag_caveats, verdicts
from harness.store.run_store import StoredRun

DEFAULT_COMPARISON = "frontier-small"


def compared_apis(profile: Profile, run: MeasuredRun, book: PriceBook) -> list[str]:
    if profile.apis:
        return list(profile.apis)
    tier = book.tier_for_model(run.model)
    return [tier, DEFAULT_COMPARISON] if tier else [DEFAULT_COMPARISON]


def build_answer(stored: StoredRun, profile: Profile, book: PriceBook,
                 profile_name: str | None = None) -> Answer:
    """Everything `harness cost` says, as typed parts and caveats."""
    run = judged(stored, profile.slo)
    demand = demand_of(profile, run)
    rented = rented_price(run, profile, book)
    owned = owned_applies(profile, run)
    if rented is None and not owned:
        raise CostInputError(
            "no hourly price for self-hosting: set cost.usd_per_hour in the run's config, name a "
            "GPU in the profile (gpu: H100; see `harness prices`) or add an `own` section")
    per_gpu = profile.gpu is not None or bool(run.manifest.gpu_names)
    capacities = variant_capacities(run, demand.input_per_output,
                                    profile.input_output_cost_ratio)
    marks = fidelity_marks(stored, [c.variant for c in capacities])
    variants = variant_costs(capacities, rented, profile, demand, owned, marks)
    prices = book.api_prices(compared_apis(profile, run, book))
    title = f"{run.manifest.run} ({run.root})"
    if profile_name:
        title += f", profile {profile_name}"
    caveats = notes(run, profile, book, variants, prices, demand)
    caveats += capacity_caveats(run, profile.slo, capacities)
    caveats += price_caveats(rented, prices, book)
    caveats += fidelity_caveats(stored)
    if profile.own is not None and not owned:
        caveats.append(Caveat(
            "owned_left_out", "owned: left out: the run had no GPU and the profile's `own` "
            "inputs are per GPU; give per-machine inputs (own.per: machine) to price owned "
            "machines", "info", side="owned"))
    answer = Answer(title, demand, "GPU" if per_gpu else "machine", variants,
                    api_costs(prices, demand), rented_price=rented,
                    prices_used=prices_used(rented, profile, variants, prices, book, run),
                    prices=price_rows(rented, prices, book), caveats=caveats,
                    owned_inputs=profile.own.model_dump(mode="json") if owned else None)
    answer.verdicts = verdicts(variants, answer.apis, demand)
    if answer.has_traffic:
        answer.break_even = break_even_ranges(answer.verdicts, demand)
        answer.sensitivity = sensitivity(answer.verdicts, prices, profile, demand)
        caveats += flip_caveats(answer.sensitivity)
    answer.verdicts = tag_caveats(answer.verdicts, caveats)
    answer.decision = decide(answer.verdicts, caveats)
    return answer
