"""The runs and the profile's tiers, ready to price any change of the tiers' traffic: the
deployments, the options maker, each tier's lengths and traffic, and the cheapest mix of any
list of tiers (harness.cost.assign)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.cost.assign import cheapest_mix
from harness.cost.fleet import Deployment, deployments
from harness.cost.inputs.prices import PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.inputs.tiers import TierSpec
from harness.cost.tier_options import OptionMaker
from harness.cost.tier_parts import Plan, TierOption, TierTraffic
from harness.cost.tier_traffic import Lengths, request_rates, tier_lengths, tier_traffic
from harness.store.run_store import StoredRun


@dataclass
class TierModel:
    """The runs and the profile's tiers, ready to price any change of the tiers' traffic."""
    profile: Profile
    deployments: list[Deployment]
    maker: OptionMaker
    specs: list[TierSpec]
    lengths: list[Lengths]
    tiers: list[TierTraffic]

    @classmethod
    def of(cls, runs: list[StoredRun], profile: Profile, book: PriceBook) -> TierModel:
        found = deployments(runs, profile, book)
        maker = OptionMaker(found, profile, book)
        specs = list(profile.tiers)
        lengths = [tier_lengths(spec, found) for spec in specs]
        rates = request_rates(specs, lengths, profile)
        tiers = [tier_traffic(spec, profile, rate, length)
                 for spec, rate, length in zip(specs, rates, lengths, strict=True)]
        return cls(profile, found, maker, specs, lengths, tiers)

    def options(self, tiers: list[TierTraffic]) -> list[list[TierOption]]:
        return [self.maker.options(tier) for tier in tiers]

    def mixed(self, tiers: list[TierTraffic]) -> Plan:
        return cheapest_mix(tiers, self.options(tiers))
