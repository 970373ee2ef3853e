"""What the tiered answer rests on: the prices used (each run's machine or the profile's GPU,
every API) with their dates, and the caveats: where each run was measured, how each
self-hosted tier's capacity was had (measured, interpolated, outside what was measured,
unverified closed loop), the replicas tiers share, fidelity floors nothing checked."""

from __future__ import annotations

from harness.cost.caveats import Caveat
from harness.cost.fleet import Deployment
from harness.cost.hosting import HourlyPrice
from harness.cost.inputs.prices import ApiPrice, PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.notes import price_caveats, price_rows, prices_used
from harness.cost.parts import PriceRow
from harness.cost.tier_model import TierModel
from harness.cost.tier_parts import SELF, TierAnswer
from harness.cost.whatif import basis


def _run_prices(deployments: list[Deployment]) -> list[HourlyPrice]:
    return list(dict.fromkeys(d.price for d in deployments if d.price is not None))


def tier_prices(deployments: list[Deployment], apis: dict[str, ApiPrice],
                book: PriceBook) -> list[PriceRow]:
    rows = [row for price in _run_prices(deployments) for row in price_rows(price, [], book)]
    return rows + price_rows(None, list(apis.values()), book)


def tier_prices_used(deployments: list[Deployment], profile: Profile, apis: dict[str, ApiPrice],
                     book: PriceBook) -> list[str]:
    lines = [line for price in _run_prices(deployments)
             for line in prices_used(price, profile, [], [], book)]
    return lines + prices_used(None, profile, [], list(apis.values()), book)


def _runs(model: TierModel) -> list[Caveat]:
    found, seen = [], set()
    for d in model.deployments:
        run = d.run
        if run.root in seen:
            continue
        seen.add(run.root)
        models = sorted({x.model for x in model.deployments if x.run.root == run.root})
        found.append(Caveat("measured_on", f"{run.root.name}: measured on "
                            f"{run.manifest.hardware}, {', '.join(models)}, run of "
                            f"{run.manifest.run_date}"))
        if any(m.startswith("dummy:") for m in models):
            found.append(Caveat("dummy_model", f"{run.root.name} served a dummy (random-weight) "
                                "model: its throughput exercises the pipeline and says nothing "
                                "about serving a real model", "critical"))
    return found


def _capacity(model: TierModel, answer: TierAnswer) -> list[Caveat]:
    """How each self-hosted tier of the cheapest mix got its capacity."""
    found = []
    codes = {"interpolated": ("capacity_interpolated", "info"),
             "outside": ("outside_measured", "warning")}
    for how, text in basis(model, answer.tiers, answer.mixed):
        if how in codes:
            code, severity = codes[how]
            found.append(Caveat(code, text, severity))
    for pool in answer.mixed.pools:
        for name in pool.tiers:
            option = next(o for o in answer.options_of(name) if o.name == pool.option)
            fit = next(f for f in option.fits if f.setup == pool.setup)
            if not fit.capacity.verified:
                found.append(Caveat("capacity_unverified", f"{name} on {pool.option}: "
                                    f"unverified: closed loop: capacity from {fit.capacity.label} "
                                    f"(n={fit.capacity.n}); add a capacity search to verify it",
                                    "warning", pool.option))
        if len(pool.tiers) > 1:
            found.append(Caveat("shared_replicas", f"{pool.option} serves {', '.join(pool.tiers)}"
                                f" on one pool of {pool.replicas} replicas ({pool.setup}) sized "
                                "for their combined peak; each tier's capacity was measured on "
                                "its own workload, not mixed on one server", "info",
                                pool.option))
    return found


def _fidelity(model: TierModel, answer: TierAnswer) -> list[Caveat]:
    found = []
    for spec in model.specs:
        if spec.fidelity is None:
            continue
        for option in answer.options_of(spec.name):
            deployment = next((d for d in model.deployments if d.key == option.name), None)
            if option.eligible and option.kind == SELF and deployment.fidelity is None:
                found.append(Caveat("fidelity_unchecked", f"{spec.name}: {option.name} has no "
                                    "fidelity score in its run: the tier's fidelity floor is "
                                    "not checked for it", "warning", option.name))
    return found


def tier_caveats(model: TierModel, answer: TierAnswer, book: PriceBook) -> list[Caveat]:
    found = _runs(model) + _capacity(model, answer) + _fidelity(model, answer)
    for price in _run_prices(model.deployments):
        found += price_caveats(price, [], book)
    found += price_caveats(None, list(model.maker.apis.values()), book)
    if any(w.outside_measured for w in answer.what_ifs):
        names = ", ".join(w.name for w in answer.what_ifs if w.outside_measured)
        found.append(Caveat("what_if_outside_measured", f"what-if {names}: rests on lengths "
                            "outside what was measured (see its basis)", "warning"))
    return list(dict.fromkeys(found))
