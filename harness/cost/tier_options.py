"""The options of each tier: every deployment (a variant on its run's machine, at each server
setup that meets the tier's SLO at the tier's lengths) and every API the profile names, each
marked eligible or with why not (not named in the tier's served_by, below its fidelity floor,
no capacity at its SLO, no price).

A served_by name is a variant of the runs, else a model the runs served (all its variants),
else an API tier or provider:model name; anything else is refused.
"""

from __future__ import annotations

from dataclasses import replace

from harness.config.fidelity import FidelityConfig
from harness.config.slo import Slo
from harness.cost import formulas
from harness.cost.costs import api_costs
from harness.cost.fleet import Deployment, Setup
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.prices import ApiPrice, PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.inputs.tiers import TierSpec
from harness.cost.lengths import AtLengths, at_lengths
from harness.cost.parts import ApiCost
from harness.cost.tier_parts import API, SELF, SetupFit, TierOption, TierTraffic


def setup_label(setup: Setup) -> str:
    batch, tp = setup
    label = f"batch {batch}" if batch is not None else "engine default"
    return f"{label} tp {tp}" if tp > 1 else label


class OptionMaker:
    """Resolves served_by names once; prices each tier's options (capacities cached by
    tier, lengths and prefix share; API prices by request shape)."""

    def __init__(self, deployments: list[Deployment], profile: Profile, book: PriceBook):
        self.deployments, self.profile = deployments, profile
        self.specs = {spec.name: spec for spec in profile.tiers}
        self.apis: dict[str, ApiPrice] = {}
        self.named = {spec.name: self._resolve(spec, book) for spec in profile.tiers}
        self._fit_cache: dict[tuple, tuple[list[SetupFit], str | None]] = {}
        self._api_cache: dict[tuple, ApiCost] = {}

    def _resolve(self, spec: TierSpec, book: PriceBook) -> set[str]:
        """The deployment keys and API names a tier's served_by names."""
        found: set[str] = set()
        variants = sorted({d.variant for d in self.deployments})
        for name in spec.served_by:
            hosted = [d.key for d in self.deployments if name in (d.variant, d.model)]
            if hosted:
                found.update(hosted)
                continue
            try:
                prices = book.api_prices([name])
            except CostInputError as err:
                raise CostInputError(
                    f"tier {spec.name}: served_by {name!r} is no variant or model of the runs "
                    f"({', '.join(variants)}) and {str(err).splitlines()[0]}") from None
            for price in prices:
                self.apis.setdefault(price.name, price)
                found.add(price.name)
        return found

    # --- self-hosted -------------------------------------------------------------------

    def _fits(self, tier: TierTraffic, deployment: Deployment) -> tuple[list[SetupFit], str | None]:
        spec = self.specs[tier.name]
        demand = tier.demand
        key = (tier.name, deployment.key, demand.input_tokens, demand.output_tokens,
               demand.cached_input_share)
        if key not in self._fit_cache:
            self._fit_cache[key] = self._measure_fits(spec, deployment, demand.input_tokens,
                                                      demand.output_tokens,
                                                      demand.cached_input_share)
        return self._fit_cache[key]

    def _measure_fits(self, spec: TierSpec, deployment: Deployment, inputs: int, outputs: int,
                      prefix: float) -> tuple[list[SetupFit], str | None]:
        slo: Slo = spec.slo or self.profile.slo
        fits, reasons = [], []
        for setup, workloads in sorted(deployment.setups.items(),
                                       key=lambda item: (item[0][1], item[0][0] or 0)):
            found = at_lengths(workloads, inputs, outputs, prefix, slo,
                               self.profile.input_output_cost_ratio, spec.workload)
            if not isinstance(found, AtLengths):
                reasons.append(f"{setup_label(setup)}: {found}")
                continue
            gpus = found.capacity.gpus_per_replica
            fits.append(SetupFit(setup_label(setup), found.tps, gpus,
                                 deployment.price.per_replica(gpus), found.how, found.basis,
                                 found.capacity))
        return fits, None if fits else f"no capacity at its SLO ({'; '.join(reasons)})"

    def _hosted(self, tier: TierTraffic, deployment: Deployment) -> TierOption:
        name = deployment.key
        if deployment.price is None:
            return TierOption(tier.name, SELF, name, False, f"no hourly price for "
                              f"{deployment.run.root} (cost.usd_per_hour, or gpu in the profile)")
        fits, problem = self._fits(tier, deployment)
        alone = min((formulas.self_hosted_monthly_usd(
            tier.demand.average_tps, tier.demand.peak_to_average, f.tps, f.usd_per_replica_hour)
            for f in fits), default=None)
        why_not = problem
        if why_not is None and name not in self.named[tier.name]:
            why_not = "not in the tier's served_by"
        floor = self.specs[tier.name].fidelity
        miss = deployment.fidelity_miss(FidelityConfig(**floor.model_dump()) if floor else None)
        if why_not is None and miss:
            why_not = f"below the tier's fidelity floor ({miss})"
        return TierOption(tier.name, SELF, name, why_not is None, why_not, tuple(fits),
                          alone_usd_per_month=alone)

    # --- APIs --------------------------------------------------------------------------

    def _api(self, tier: TierTraffic, price: ApiPrice) -> TierOption:
        d = tier.demand
        key = (price.name, d.input_tokens, d.output_tokens, d.cached_input_share, d.batch_share)
        if key not in self._api_cache:
            self._api_cache[key] = api_costs([price], d)[0]
        cost = self._api_cache[key]
        cost = replace(cost, usd_per_month=formulas.api_monthly_usd(d.average_tps,
                                                                    cost.usd_per_mtok))
        named = price.name in self.named[tier.name]
        return TierOption(tier.name, API, price.name, named,
                          None if named else "not in the tier's served_by", api=cost,
                          alone_usd_per_month=cost.usd_per_month)

    def options(self, tier: TierTraffic) -> list[TierOption]:
        return ([self._hosted(tier, d) for d in self.deployments]
                + [self._api(tier, price) for price in self.apis.values()])
