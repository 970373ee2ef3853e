"""What flips the decision: for each input that decides it, the monthly difference (self-hosted
minus API) when the input moves by -25% and +25%, and the value at which the verdict flips.

Per variant and side (rented, owned) against the cheapest API for this traffic. Every figure
is recomputed through harness.cost.formulas, so the replica steps are in it: a flip point can sit
on a step (one replica more or less), not only where two lines cross.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.cost import formulas
from harness.cost.caveats import SIDES, Caveat
from harness.cost.demand import Demand
from harness.cost.hosting import owned_units, owned_usd_per_gpu_hour
from harness.cost.inputs.prices import ApiPrice
from harness.cost.inputs.profile import Profile
from harness.cost.parts import Capacity, Interval, Sensitivity, VariantCost, Verdict

MOVE = 0.25              # the table's step: -25% and +25% (shares: -0.25 and +0.25)
SCAN = 10.0              # a flip is looked for between base / SCAN and base x SCAN
GRID = 400               # scan points each way before bisecting


@dataclass(frozen=True)
class Case:
    """One decision: a self-hosted side's inputs against one API, for a month of traffic."""
    usd_per_replica_hour: float
    capacity_tps: float
    served_mtok_month: float
    peak_to_average: float
    api_usd_per_mtok: float

    def difference(self, **changes: float) -> float:
        """Self-hosted minus API $ a month, with some inputs replaced."""
        values = {**self.__dict__, **changes}
        return formulas.monthly_difference(values["served_mtok_month"],
                                        values["usd_per_replica_hour"], values["capacity_tps"],
                                        values["api_usd_per_mtok"], values["peak_to_average"])


@dataclass(frozen=True)
class Knob:
    name: str
    unit: str
    base: float
    difference: Callable[[float], float]
    share: bool = False           # a share in [0, 1]: moved by +-0.25, scanned linearly
    floor: float = 0.0            # no value below this (peak-to-average >= 1)

    def moved(self, direction: int) -> float:
        value = self.base + direction * MOVE if self.share else self.base * (1 + direction * MOVE)
        return min(1.0, max(0.0, value)) if self.share else max(self.floor, value)

    def _grid(self, direction: int) -> list[float]:
        if self.share:
            end = 1.0 if direction > 0 else 0.0
            return [self.base + (end - self.base) * k / GRID for k in range(1, GRID + 1)]
        return [max(self.floor, self.base * SCAN ** (direction * k / GRID))
                for k in range(1, GRID + 1)]

    def flip(self) -> float | None:
        """The value nearest the base at which the verdict changes side (None: none in range)."""
        wins = self.difference(self.base) < 0
        found = []
        for direction in (-1, 1):
            previous = self.base
            for value in self._grid(direction):
                if (self.difference(value) < 0) != wins:
                    found.append(self._bisect(previous, value, wins))
                    break
                previous = value
        return min(found, key=lambda v: abs(v - self.base)) if found else None

    def _bisect(self, inside: float, outside: float, wins: bool) -> float:
        for _ in range(60):
            middle = (inside + outside) / 2
            if (self.difference(middle) < 0) == wins:
                inside = middle
            else:
                outside = middle
        return outside


def _api_per_mtok(price: ApiPrice, demand: Demand, cached: float) -> float:
    tokens = demand.input_tokens + demand.output_tokens
    usd = price.request_usd(demand.input_tokens, demand.output_tokens, cached, demand.batch_share)
    return usd / (tokens / formulas.TOKENS_PER_MTOK)


def knobs(verdict: Verdict, side: str, price: ApiPrice, profile: Profile,
          demand: Demand) -> list[Knob]:
    cost = verdict.variant.side(side)
    case = Case(cost.usd_per_replica_hour, verdict.variant.capacity.tps,
                demand.served_mtok_month, demand.peak_to_average, verdict.api.usd_per_mtok)
    found = [
        Knob(f"{side} $/h per replica", "$/h", case.usd_per_replica_hour,
             lambda v: case.difference(usd_per_replica_hour=v)),
        Knob("measured capacity", "tok/s", case.capacity_tps,
             lambda v: case.difference(capacity_tps=v)),
        Knob("peak-to-average", "x", case.peak_to_average,
             lambda v: case.difference(peak_to_average=v), floor=1.0),
        Knob("traffic (utilization)", "Mtok/month", case.served_mtok_month,
             lambda v: case.difference(served_mtok_month=v)),
        Knob(f"{verdict.api.name} $/Mtok", "$/Mtok", case.api_usd_per_mtok,
             lambda v: case.difference(api_usd_per_mtok=v)),
        Knob("cached input share", "share", demand.cached_input_share,
             lambda v: case.difference(api_usd_per_mtok=_api_per_mtok(price, demand, v)),
             share=True)]
    if side == "owned":
        found += _owned_knobs(verdict.variant, case, profile)
    return found


def _owned_knobs(variant: VariantCost, case: Case, profile: Profile) -> list[Knob]:
    units = owned_units(variant.capacity.gpus_per_replica, profile)
    power = variant.owned.power
    own = profile.own

    def hourly(**changes: float) -> float:
        return units * owned_usd_per_gpu_hour(profile, changes.get("power", power.w_per_unit),
                                              changes.get("capex", 1.0), changes.get("kwh"))

    capex = own.capex_per_gpu_usd + own.server_share_per_gpu_usd
    return [
        Knob(f"capex per {own.per} (with server share)", "$", capex,
             lambda v: case.difference(usd_per_replica_hour=hourly(capex=v / capex))),
        Knob(f"power per {own.per} ({power.basis})", "W", power.w_per_unit,
             lambda v: case.difference(usd_per_replica_hour=hourly(power=v))),
        Knob("electricity", "$/kWh", own.usd_per_kwh,
             lambda v: case.difference(usd_per_replica_hour=hourly(kwh=v)))]


def sensitivity(verdicts: list[Verdict], prices: list[ApiPrice], profile: Profile,
                demand: Demand) -> list[Sensitivity]:
    """Per variant and side, against the cheapest API: each input at -25%, base and +25%, and
    the value at which the verdict flips."""
    by_name = {p.name: p for p in prices}
    found = []
    for variant in dict.fromkeys(v.variant.variant for v in verdicts):
        rows = [v for v in verdicts if v.variant.variant == variant]
        if rows[0].variant.capacity is None:
            continue
        cheapest = min(rows, key=lambda v: v.api.usd_per_month)
        for side in SIDES:
            if cheapest.variant.side(side) is None:
                continue
            for knob in knobs(cheapest, side, by_name[cheapest.api.name], profile, demand):
                interval = None
                if knob.name == "measured capacity":
                    interval = _interval(cheapest.variant.capacity, knob)
                found.append(_moved(variant, side, cheapest.api.name, knob, interval))
    return found


def _interval(capacity: Capacity, knob: Knob) -> Interval:
    """The monthly difference at the ends of the capacity's interval, where it has one."""
    low, high = capacity.low_tps, capacity.high_tps
    flip = knob.flip()
    inside = high is not None and flip is not None and low <= flip < high
    return Interval(inside, low, high, knob.difference(low),
                    None if high is None else knob.difference(high))


def _moved(variant: str, side: str, api: str, knob: Knob,
           interval: Interval | None) -> Sensitivity:
    low, high = knob.moved(-1), knob.moved(1)
    flip = knob.flip()
    change = None
    if flip is not None:
        change = flip - knob.base if knob.share else (flip / knob.base - 1 if knob.base else None)
    return Sensitivity(variant, side, api, knob.name, knob.unit, knob.base, low, high,
                       knob.difference(low), knob.difference(knob.base), knob.difference(high),
                       flip, change, interval)


def flip_caveats(rows: list[Sensitivity]) -> list[Caveat]:
    """A verdict that flips at a capacity inside the capacity's own interval is not settled."""
    return [Caveat("flip_within_capacity_interval",
                   f"{row.variant}: the {row.side} verdict against {row.api} flips at "
                   f"{row.flips_at:,.0f} tok/s, inside the capacity's interval "
                   f"[{row.interval.low:,.0f}, {row.interval.high:,.0f}): measure rates "
                   "between the searched ones (more capacity.steps) to settle it", "warning",
                   row.variant, row.side)
            for row in rows if row.interval is not None and row.interval.flips_within]
