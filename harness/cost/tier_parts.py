"""The tiered answer as typed parts: per tier its traffic and the options that may serve it,
the plans (the cheapest mix, and every tier on one option) with the self-hosted replicas each
shares between tiers, the comparison, what moves it (tier shares, volume) and the what-ifs.

harness.cost.tier_flat turns them into the columns of `--format json|csv`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.cost.caveats import Caveat
from harness.cost.demand import Demand
from harness.cost.parts import ApiCost, Capacity, PriceRow

SELF, API = "self-hosted", "API"


@dataclass(frozen=True)
class TierTraffic:
    """One kind of request: its volume, lengths, SLO and what is good enough for it."""
    name: str
    share: float | None            # of the requests (None: its own volume)
    requests_per_s: float          # asked, retries not included
    demand: Demand                 # its tokens/s served, at peak, its shares
    workload: str | None
    slo: str                       # in words
    served_by: tuple[str, ...]

    @property
    def input_tokens(self) -> int:
        return self.demand.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.demand.output_tokens


@dataclass(frozen=True)
class SetupFit:
    """One server setup of a deployment at one tier's lengths and SLO."""
    setup: str                     # 'batch 16' / 'batch 16 tp 2' / 'engine default'
    tps: float                     # per replica, at the tier's lengths
    gpus_per_replica: int
    usd_per_replica_hour: float
    how: str                       # "measured", "interpolated" or "outside"
    basis: str
    capacity: Capacity             # the measured capacity it rests on


@dataclass(frozen=True)
class TierOption:
    """One way to serve one tier: a deployment (a variant on its run's machine) or an API."""
    tier: str
    kind: str                      # SELF or API
    name: str
    eligible: bool                 # good enough (served_by, fidelity) and able (SLO, price)
    why_not: str | None = None
    fits: tuple[SetupFit, ...] = ()      # self-hosted: each setup that meets the tier's SLO
    api: ApiCost | None = None
    alone_usd_per_month: float | None = None   # serving this tier alone

    @property
    def best_fit(self) -> SetupFit | None:
        return min(self.fits, key=lambda f: f.usd_per_replica_hour / f.tps, default=None)


@dataclass(frozen=True)
class Pool:
    """Self-hosted replicas of one deployment shared by the tiers it serves, sized for their
    combined peak: replicas = ceil(sum over tiers of peak tok/s / capacity at its lengths)."""
    option: str
    setup: str
    tiers: tuple[str, ...]
    replicas: int
    units: int                     # GPUs (or machines)
    utilization: float
    usd_per_month: float
    load: tuple[float, ...]        # each tier's peak, in replicas (its part of the bill)


@dataclass(frozen=True)
class Served:
    """A tier in a plan: who serves it and its part of the bill."""
    tier: str
    option: str
    kind: str
    usd_per_month: float


@dataclass(frozen=True)
class Plan:
    name: str
    kind: str                      # "mixed" or "single"
    served: tuple[Served, ...]
    pools: tuple[Pool, ...]
    usd_per_month: float
    good_for_all: bool = True      # (a single option) good enough for every tier
    not_for: tuple[str, ...] = ()  # the tiers it is not good enough for

    def who(self, tier: str) -> str:
        return next(s.option for s in self.served if s.tier == tier)

    def assignment(self) -> tuple[str, ...]:
        return tuple(s.option for s in self.served)


@dataclass(frozen=True)
class Comparison:
    """The cheapest mix against every tier on one option."""
    mixed_usd_per_month: float
    best_single: Plan | None       # the cheapest single option good enough for every tier
    cheapest_api: Plan | None      # the cheapest single API good enough for every tier
    mixing_wins: bool              # the mix beats every single option good enough for all

    @property
    def saves_usd_per_month(self) -> float | None:
        if self.best_single is None:
            return None
        return self.best_single.usd_per_month - self.mixed_usd_per_month


@dataclass(frozen=True)
class ShareSensitivity:
    """One tier's share (or the whole volume) moved: the cheapest mix and what it saves."""
    input: str                     # "share of <tier>" or "traffic volume"
    unit: str                      # "share" or "x"
    base: float
    low: float
    high: float
    mixed_usd_month_at_low: float
    mixed_usd_month_at_base: float
    mixed_usd_month_at_high: float
    assignment_at_low: str
    assignment_at_high: str
    changes_at: float | None       # the nearest value where the cheapest mix changes who serves
    changes_to: str | None


@dataclass(frozen=True)
class WhatIfResult:
    name: str
    change: str                    # in words
    usd_per_month: float           # the cheapest mix after the change
    minus_base_usd_per_month: float
    assignment: str
    basis: tuple[str, ...]         # how each self-hosted tier's capacity was had (caveats)
    outside_measured: bool         # some capacity rests on lengths outside what was measured


@dataclass
class TierAnswer:
    title: str
    tiers: list[TierTraffic]
    options: list[TierOption]
    mixed: Plan
    singles: list[Plan]
    comparison: Comparison
    sensitivity: list[ShareSensitivity] = field(default_factory=list)
    what_ifs: list[WhatIfResult] = field(default_factory=list)
    prices: list[PriceRow] = field(default_factory=list)
    prices_used: list[str] = field(default_factory=list)
    caveats: list[Caveat] = field(default_factory=list)
    unit: str = "GPU"

    def options_of(self, tier: str) -> list[TierOption]:
        return [o for o in self.options if o.tier == tier]

    @property
    def plans(self) -> list[Plan]:
        return [self.mixed, *self.singles]
