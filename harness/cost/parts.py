"""The build-or-buy answer as typed parts: per variant its capacity at the SLO and what each
side (rented, owned) costs, per API its prices and bill, per (variant, API) the verdict of
each side, then the decision, the break-even ranges, the sensitivity rows and the prices used.

Scripts get the same parts flattened into named columns by harness.cost.flat, the one place
where column names are made (`flat.frame(answer, table)`, `flat.as_dict(answer)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from harness.cost.caveats import Caveat, codes, indicative, worst
from harness.cost.demand import Demand
from harness.cost.hosting import HourlyPrice
from harness.cost.labels import point_label

# --- per variant -------------------------------------------------------------------------

@dataclass(frozen=True)
class Search:
    """The capacity search a capacity comes from."""
    rate_rps: float | None        # the rate it found, at its own SLO
    slo: str                      # the SLO it ran at, in words


@dataclass(frozen=True)
class Capacity:
    """A variant's capacity at the profile's SLO: the cell and point it comes from, its
    tokens/s at the profile's mix, the interval it lies in and how far it can be trusted."""
    cell: str
    point: str
    max_num_seqs: int | None
    tensor_parallel_size: int | None
    concurrency: int | None       # None for an open-loop rate
    rate_rps: float | None
    gpus_per_replica: int
    input_tps: float
    output_tps: float
    tps: float                    # at the profile's mix
    window: str                   # "steady" (a closed loop without ramp-up) or "whole"
    low_tps: float
    high_tps: float | None        # delivered at the next rate tried above; None: not bracketed
    mean_power_w: float | None
    source: str                   # "capacity search", "closed loop" or "open loop"
    verified: bool
    at_least: bool
    n: int                        # completed requests of the point
    search: Search | None = None
    repeats: int = 1              # measurements of the rate (capacity.repeats): the median's
    repeats_met: int = 1          # ... and how many of them met the SLO

    @property
    def tps_per_unit(self) -> float:
        """Tokens/s per GPU (per machine on a run without GPUs)."""
        return self.tps / self.gpus_per_replica

    @property
    def label(self) -> str:
        return point_label(self.max_num_seqs, self.tensor_parallel_size, self.rate_rps,
                           self.concurrency, self.point)


@dataclass(frozen=True)
class VariantCapacity:
    variant: str
    capacity: Capacity | None
    slo_note: str = ""            # why there is none: the closest point and what it misses


@dataclass(frozen=True)
class TokenSplit:
    """Full-load $/Mtok split between input and output tokens (they add up to the hour)."""
    input_usd_per_mtok: float
    output_usd_per_mtok: float


@dataclass(frozen=True)
class Power:
    w_per_unit: float
    basis: str                    # "measured" or "assumed" (the profile's own.power_w_per_gpu)


@dataclass(frozen=True)
class SideCost:
    """What one side (rented or owned hardware) costs a variant."""
    usd_per_replica_hour: float
    usd_per_mtok_full_load: float
    usd_per_month: float | None = None          # None: no traffic given
    usd_per_mtok_effective: float | None = None
    split: TokenSplit | None = None             # rented only
    power: Power | None = None                  # owned only


@dataclass(frozen=True)
class Provisioning:
    """Replicas for the traffic's peak."""
    replicas: int
    utilization: float
    units: int                    # GPUs (or machines) in those replicas


@dataclass(frozen=True)
class FidelityMark:
    score: str                    # the score against the baseline, in words
    miss: str | None              # the limits missed; None: none


@dataclass(frozen=True)
class VariantCost:
    variant: str
    capacity: Capacity | None
    slo_note: str = ""
    rented: SideCost | None = None
    owned: SideCost | None = None
    provisioning: Provisioning | None = None    # with traffic and a priced side
    fidelity: FidelityMark | None = None        # None: the run has no fidelity scores

    def side(self, name: str) -> SideCost | None:
        return {"rented": self.rented, "owned": self.owned}[name]


# --- per API -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ApiCost:
    name: str
    tier: str | None
    input_usd_per_mtok: float | None            # listed
    cached_input_usd_per_mtok: float | None
    output_usd_per_mtok: float | None
    has_batch_price: bool
    usd_per_mtok: float                         # this traffic's mix, cache and batch shares
    usd_per_month: float | None                 # None: no traffic given
    prices_as_of: date
    price_data: str
    price_data_date: date
    tier_checked: date | None
    price_source: str


# --- per (variant, API) ------------------------------------------------------------------

Range = tuple[float, float | None]    # Mtok a month, from and to (None: and above)


@dataclass(frozen=True)
class Comparison:
    """A side's monthly bill against the API's, for this traffic."""
    ranges: tuple[Range, ...]     # the traffic where self-hosting is no dearer
    ranges_text: str              # '2,655-5,111; 5,309+ Mtok/mo' or 'none'
    cheaper: str                  # "self-hosted", "API" or "equal"
    minus_api_usd_per_month: float
    over_api: float

    @property
    def break_even_traffic_mtok_month(self) -> float | None:
        """The one break-even volume, where a single range says it."""
        return self.ranges[0][0] if len(self.ranges) == 1 else None


@dataclass(frozen=True)
class SideVerdict:
    """One side's verdict against one API, and the caveats (warning and worse) it rests on."""
    priced: bool                              # the side has a cost for this variant
    break_even_utilization: float | None = None   # None: the API is cheaper at full load
    comparison: Comparison | None = None      # None: no traffic given (or not priced)
    rests_on: tuple[Caveat, ...] = ()

    @property
    def caveat_codes(self) -> str:
        return codes(self.rests_on)

    @property
    def indicative(self) -> str | None:
        return indicative(self.rests_on)

    @property
    def caveat_severity(self) -> str | None:
        return worst(self.rests_on)


@dataclass(frozen=True)
class Verdict:
    variant: VariantCost
    api: ApiCost
    rented: SideVerdict
    owned: SideVerdict

    def side(self, name: str) -> SideVerdict:
        return {"rented": self.rented, "owned": self.owned}[name]


# --- the decision, ranges, sensitivity, prices ---------------------------------------------

@dataclass(frozen=True)
class Decision:
    """Per variant: the cheapest way to serve this traffic, the runner-up and the caveats
    (warning and worse) about either."""
    variant: str
    capacity: Capacity | None
    cheapest: str | None = None               # None: no traffic given
    usd_per_month: float | None = None
    runner_up: str | None = None
    runner_up_usd_per_month: float | None = None
    rests_on: tuple[Caveat, ...] = ()

    @property
    def margin_usd_per_month(self) -> float | None:
        if self.runner_up_usd_per_month is None:
            return None
        return self.runner_up_usd_per_month - self.usd_per_month

    @property
    def runner_up_over_cheapest(self) -> float | None:
        if self.runner_up_usd_per_month is None or not self.usd_per_month:
            return None
        return self.runner_up_usd_per_month / self.usd_per_month

    @property
    def caveat_codes(self) -> str:
        return codes(self.rests_on)

    @property
    def indicative(self) -> str | None:
        return indicative(self.rests_on)


@dataclass(frozen=True)
class BreakEvenRange:
    variant: str
    side: str
    api: str
    index: int                    # 1, 2, ... in order of traffic
    from_mtok_month: float
    to_mtok_month: float | None   # None: and above
    contains_this_traffic: bool


@dataclass(frozen=True)
class Interval:
    """The capacity's interval and the monthly difference at its ends."""
    flips_within: bool            # the verdict flips at a capacity inside it
    low: float
    high: float | None            # None: no rate above it was tried
    minus_api_usd_month_at_low: float
    minus_api_usd_month_at_high: float | None


@dataclass(frozen=True)
class Sensitivity:
    """One input moved by -25% and +25%: self-hosted minus API, $ a month, and the value at
    which the verdict flips."""
    variant: str
    side: str
    api: str
    input: str
    unit: str
    base: float
    low: float
    high: float
    minus_api_usd_month_at_low: float
    minus_api_usd_month_at_base: float
    minus_api_usd_month_at_high: float
    flips_at: float | None
    flips_at_change: float | None
    interval: Interval | None = None          # the measured capacity's row only

    @property
    def cheaper_at_base(self) -> str:
        return "self-hosted" if self.minus_api_usd_month_at_base < 0 else "API"

    @property
    def flips_nearby(self) -> bool:
        """The verdict changes side when this input moves by 25% either way."""
        base = self.minus_api_usd_month_at_base < 0
        return any((end < 0) != base for end in (self.minus_api_usd_month_at_low,
                                                 self.minus_api_usd_month_at_high))


@dataclass(frozen=True)
class PriceRow:
    """A price the answer uses, with the date of its data and how old that is."""
    kind: str                     # "rented" or "api"
    name: str
    usd: float
    unit: str
    data: str
    data_date: date
    in_force_on: date
    age_days: int
    stale: bool
    expired: bool
    user_input: bool = False      # the user's own figure: an input, unverified


# --- the answer --------------------------------------------------------------------------

@dataclass
class Answer:
    title: str
    demand: Demand
    unit: str                                   # "GPU" or "machine": capacity is per this
    variants: list[VariantCost]
    apis: list[ApiCost]
    verdicts: list[Verdict] = field(default_factory=list)
    decision: list[Decision] = field(default_factory=list)
    break_even: list[BreakEvenRange] = field(default_factory=list)
    sensitivity: list[Sensitivity] = field(default_factory=list)
    prices: list[PriceRow] = field(default_factory=list)
    prices_used: list[str] = field(default_factory=list)
    caveats: list[Caveat] = field(default_factory=list)
    rented_price: HourlyPrice | None = None
    owned_inputs: dict | None = None            # the profile's `own` section, as given

    @property
    def notes(self) -> list[str]:
        """The caveats' sentences, in order."""
        return [c.text for c in self.caveats]

    @property
    def has_traffic(self) -> bool:
        return self.demand.average_tps is not None

    def variant(self, name: str) -> VariantCost:
        return next(v for v in self.variants if v.variant == name)

    def verdicts_of(self, variant: str) -> list[Verdict]:
        return [v for v in self.verdicts if v.variant.variant == variant]

    def cheapest_api(self) -> ApiCost | None:
        """The API with the lowest bill for this traffic (None without traffic)."""
        billed = [a for a in self.apis if a.usd_per_month is not None]
        return min(billed, key=lambda a: a.usd_per_month) if billed else None

    def cheapest_verdict(self, variant: str) -> Verdict | None:
        """A variant's verdict against the API with the lowest bill (None without traffic)."""
        billed = [v for v in self.verdicts_of(variant) if v.api.usd_per_month is not None]
        return min(billed, key=lambda v: v.api.usd_per_month) if billed else None

    def priced(self, side: str) -> bool:
        """Some variant has a cost on this side."""
        return any(v.side(side) is not None for v in self.variants)
