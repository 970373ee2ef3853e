"""Each tier's traffic: its request lengths (a workload of the runs, as measured, or numbers),
its requests a second (a share of the profile's requests, or its own volume) and from them its
tokens a second served and at peak, as harness.cost.demand.Demand.

Shares are shares of requests. With `traffic.tokens_per_day` the total request rate is the
token volume over the mean request, sum(share x (input + output tokens)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.cost import formulas
from harness.cost.demand import Demand
from harness.cost.fleet import Deployment
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.profile import Profile
from harness.cost.inputs.tiers import TierSpec
from harness.cost.tier_parts import TierTraffic


@dataclass(frozen=True)
class Lengths:
    input_tokens: float
    output_tokens: float


def _measured_lengths(name: str | None, deployments: list[Deployment]) -> Lengths | None:
    """A workload's mean lengths as served, over every deployment that measured it."""
    found = [w for d in deployments for ws in d.setups.values() for w in ws if w.name == name]
    done = sum(len(w.points) for w in found)
    if not done:
        return None
    return Lengths(sum(w.input_tokens * len(w.points) for w in found) / done,
                   sum(w.output_tokens * len(w.points) for w in found) / done)


def tier_lengths(spec: TierSpec, deployments: list[Deployment]) -> Lengths:
    """The tier's request lengths: its numbers, else its workload's as measured."""
    named = {n for d in deployments for n in d.workload_names()}
    measured = None
    if spec.workload is not None:
        if spec.workload not in named:
            known = ", ".join(sorted(n for n in named if n is not None)) or "none named"
            raise CostInputError(f"tier {spec.name}: workload {spec.workload!r} is not in the "
                                 f"runs (their named workloads: {known})")
        measured = _measured_lengths(spec.workload, deployments)
    elif spec.input_tokens is None:
        if named != {None}:
            raise CostInputError(f"tier {spec.name}: the runs measured several workloads; give "
                                 "the tier a `workload` or input_tokens and output_tokens")
        measured = _measured_lengths(None, deployments)
    return Lengths(spec.input_tokens or measured.input_tokens,
                   spec.output_tokens or measured.output_tokens)


def request_rates(specs: list[TierSpec], lengths: list[Lengths], profile: Profile) -> list[float]:
    """Requests a second per tier (retries not included)."""
    traffic = profile.traffic
    if specs[0].share is not None:
        if traffic.requests_per_s is not None:
            total = traffic.requests_per_s
        else:
            mean = sum(s.share * (n.input_tokens + n.output_tokens)
                       for s, n in zip(specs, lengths, strict=True))
            total = traffic.tokens_per_day / formulas.SECONDS_PER_DAY / mean
        return [s.share * total for s in specs]
    return [s.requests_per_s if s.requests_per_s is not None else
            s.tokens_per_day / formulas.SECONDS_PER_DAY / (n.input_tokens + n.output_tokens)
            for s, n in zip(specs, lengths, strict=True)]


def _setting(spec: TierSpec, profile: Profile, key: str, default: float) -> float:
    own = getattr(spec, key)
    if own is not None:
        return own
    return getattr(profile.traffic, key) if profile.traffic is not None else default


def tier_demand(spec: TierSpec, profile: Profile, requests_per_s: float,
                lengths: Lengths) -> Demand:
    inputs = max(1, round(lengths.input_tokens))
    outputs = max(1, round(lengths.output_tokens))
    retry = _setting(spec, profile, "retry_rate", 0.0)
    peak = _setting(spec, profile, "peak_to_average", 1.0)
    served = requests_per_s * (inputs + outputs) * (1 + retry)
    return Demand(inputs / outputs, inputs, outputs, served, served * peak, retry,
                  _setting(spec, profile, "cached_input_share", 0.0),
                  _setting(spec, profile, "batch_share", 0.0), peak)


def tier_traffic(spec: TierSpec, profile: Profile, requests_per_s: float,
                 lengths: Lengths) -> TierTraffic:
    slo = spec.slo or profile.slo
    return TierTraffic(spec.name, spec.share, requests_per_s,
                       tier_demand(spec, profile, requests_per_s, lengths), spec.workload,
                       slo.describe(), tuple(spec.served_by))


def with_rate(tier: TierTraffic, requests_per_s: float, share: float | None) -> TierTraffic:
    """The same tier at another request rate (its lengths and shares kept)."""
    d = tier.demand
    served = requests_per_s * (d.input_tokens + d.output_tokens) * (1 + d.retry_rate)
    demand = replace(d, average_tps=served, peak_tps=served * d.peak_to_average)
    return replace(tier, share=share, requests_per_s=requests_per_s, demand=demand)
