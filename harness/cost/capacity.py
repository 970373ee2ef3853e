"""Capacity at the SLO, per variant: the cell that serves the most tokens per second per GPU
while meeting the profile's SLO, and how far that figure can be trusted.

Every candidate point is judged against the profile's SLO (harness.metrics.slo.judge, in
measured.py).
- A cell with a capacity search: the highest searched open-loop rate whose point meets the
  profile's SLO and was sustained (whatever SLO the search ran at), in a bracket whose top is
  what the server delivered at the next rate tried above it ("search bracket"); with no rate
  tried above it (the search's cap met) it is a lower bound ("at least").
- A cell without one: its best point at the SLO, marked unverified where it is closed loop
  (no queueing in its latencies, nothing showed the server holding that rate under arrivals);
  a closed-loop point's throughput is its steady window's, without ramp-up and drain.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby

from harness.config.slo import Slo
from harness.contract.results import CapacityRecord
from harness.cost import formulas
from harness.cost.caveats import Caveat
from harness.cost.labels import point_label
from harness.cost.measured import JudgedPoint, MeasuredRun
from harness.cost.parts import Capacity, Search, VariantCapacity
from harness.metrics.slo import judged_distribution

SEARCH, CLOSED, OPEN = "capacity search", "closed loop", "open loop"
MIN_TAIL_SAMPLES = 100   # p95/p99 from fewer requests are flagged


def _throughputs(point: JudgedPoint, basis: str) -> tuple[float, float, str]:
    """(total, output) tokens/s and the window they are over: a closed-loop point's steady
    window where it has one (its ramp-up and drain are no part of a rate it could hold;
    harness/metrics/steady.py), else the whole window."""
    result, m = point.result, point.result.metrics
    steady = result.steady
    if (basis == CLOSED and steady is not None and steady.output_throughput
            and steady.total_token_throughput):
        return steady.total_token_throughput, steady.output_throughput, "steady"
    return m.total_token_throughput, m.output_throughput, "whole"


def _capacity(point: JudgedPoint, ratio: float, cost_ratio: float, basis: str) -> Capacity:
    """A capacity candidate: the point and what its throughput is worth at the profile's mix."""
    result, m = point.result, point.result.metrics
    total_tps, output_tps, window = _throughputs(point, basis)
    input_tps = total_tps - output_tps
    tps = formulas.throughput_at_mix(input_tps, output_tps, ratio, cost_ratio)
    return Capacity(
        cell=result.cell, point=result.point, max_num_seqs=result.max_num_seqs,
        tensor_parallel_size=result.tensor_parallel_size, concurrency=result.concurrency,
        rate_rps=result.rate, gpus_per_replica=point.gpus_per_replica, input_tps=input_tps,
        output_tps=output_tps, tps=tps, window=window, low_tps=tps, high_tps=None,
        mean_power_w=result.energy.mean_power_w, source=basis, verified=basis != CLOSED,
        at_least=basis == OPEN, n=m.completed)


def measured_capacity(point: JudgedPoint, ratio: float, cost_ratio: float) -> Capacity:
    """A point's own throughput as a capacity (closed or open loop, not searched)."""
    return _capacity(point, ratio, cost_ratio, CLOSED if point.result.kind == "closed" else OPEN)


def _searched(points: list[JudgedPoint], record: CapacityRecord, ratio: float,
              cost_ratio: float) -> Capacity | None:
    """The highest searched rate whose point meets the profile's SLO, with its bracket."""
    by_id = {p.result.point: p for p in points}
    rates = {step.point: step.rate_rps for step in record.steps}
    if record.point is not None and record.rate_rps is not None:
        rates.setdefault(record.point, record.rate_rps)
    tried = [(rate, by_id[name]) for name, rate in rates.items() if name in by_id]
    meeting = [(rate, p) for rate, p in tried if p.judged.meets]
    if not meeting:
        return None
    rate, point = max(meeting, key=lambda pair: pair[0])
    found = _median_of_repeats(points, point, ratio, cost_ratio)
    above = [(r, p) for r, p in tried if r > rate]
    # the bracket's top: what the server delivered at the next rate tried, never more than it
    # delivered there (a rate-ratio extrapolation would overstate an overloaded server)
    high = (max(found.tps, _capacity(min(above, key=lambda pair: pair[0])[1], ratio,
                                     cost_ratio, SEARCH).tps) if above else None)
    return replace(found, rate_rps=rate, concurrency=None, at_least=not above,
                   search=Search(record.rate_rps, record.slo.describe()), high_tps=high)


def _median_of_repeats(points: list[JudgedPoint], first: JudgedPoint, ratio: float,
                       cost_ratio: float) -> Capacity:
    """The capacity at the rate the search found: where it was measured again
    (capacity.repeats), the repeat of median throughput, its interval's low end the lowest;
    the median, so that one repeat on a disturbed machine moves it least (docs/cost-model.md)."""
    again = [p for p in points if p.result.kind == "search" and p.result.repeat > 1
             and p.result.base_point == first.result.point]
    measured = sorted(((_capacity(p, ratio, cost_ratio, SEARCH), p) for p in [first, *again]),
                      key=lambda pair: pair[0].tps)
    median, _ = measured[(len(measured) - 1) // 2]
    return replace(median, low_tps=measured[0][0].tps, repeats=len(measured),
                   repeats_met=sum(p.judged.meets for _, p in measured))


def cell_capacity(points: list[JudgedPoint], record: CapacityRecord | None, ratio: float,
                  cost_ratio: float) -> Capacity | None:
    """A cell's capacity: its capacity search when present, else its best point at the SLO."""
    if record is not None:
        return _searched(points, record, ratio, cost_ratio)
    meeting = [measured_capacity(p, ratio, cost_ratio) for p in points
               if p.judged.meets and p.result.kind != "search"]
    return max(meeting, key=lambda capacity: capacity.tps) if meeting else None


def closest_miss(points: list[JudgedPoint], searches: list[CapacityRecord], slo: Slo) -> str:
    """The point closest to meeting the SLO and what it misses, and what to re-run."""
    if not points:
        return "no point measured"
    other = sorted({s.slo.describe() for s in searches if s.slo != slo})
    rerun = (f"; its capacity search ran at SLO {'; '.join(other)}: re-run the search at the "
             "profile's SLO" if other else "")
    closest = min(points, key=lambda p: p.judged.shortfall)
    if closest.judged.meets:
        return ("its capacity search found no rate that meets the profile's SLO (no capacity is "
                f"taken from closed-loop points where a search contradicts them){rerun}")
    result = closest.result
    label = point_label(result.max_num_seqs, result.tensor_parallel_size, result.rate,
                        result.concurrency, result.point)
    return (f"no point meets the SLO; closest: {label}: {'; '.join(closest.judged.violations)}"
            f"{rerun}")


def variant_capacities(run: MeasuredRun, ratio: float, cost_ratio: float) -> list[VariantCapacity]:
    """Per variant: the cell with the most tokens/s per GPU at the SLO, or why there is none."""
    found = []
    for variant, group in groupby(run.points, key=lambda p: p.result.variant):
        points = list(group)
        cells = []
        for cell, cell_points in groupby(points, key=lambda p: p.result.cell):
            capacity = cell_capacity(list(cell_points), run.capacities.get(cell), ratio,
                                     cost_ratio)
            if capacity is not None:
                cells.append(capacity)
        if cells:
            found.append(VariantCapacity(variant, max(cells, key=lambda c: c.tps_per_unit)))
        else:
            searches = [run.capacities[c] for c in {p.result.cell for p in points}
                        if c in run.capacities]
            found.append(VariantCapacity(variant, None,
                                         closest_miss(points, searches, run.slo)))
    return found


# --- what the capacity rests on ----------------------------------------------------------

def capacity_caveats(run: MeasuredRun, slo: Slo,
                     capacities: list[VariantCapacity]) -> list[Caveat]:
    found: list[Caveat] = []
    by_id = {(p.result.cell, p.result.point): p for p in run.points}
    for measured in capacities:
        variant, capacity = measured.variant, measured.capacity
        if capacity is None:
            found.append(Caveat("no_capacity_at_slo", f"{variant}: {measured.slo_note}",
                                "warning", variant))
            continue
        found += _basis_caveats(variant, capacity, run.capacities.get(capacity.cell), slo)
        found += _sample_caveats(variant, capacity,
                                 by_id[(capacity.cell, capacity.point)], slo)
    return found


def _basis_caveats(variant: str, capacity: Capacity, record: CapacityRecord | None,
                   slo: Slo) -> list[Caveat]:
    label = capacity.label
    if capacity.source == CLOSED:
        return [Caveat("capacity_unverified",
                       f"{variant}: unverified: closed loop: capacity from {label} "
                       f"(n={capacity.n}): closed-loop latencies have no queueing and no "
                       "open-loop run held this rate; add a capacity search to verify it",
                       "warning", variant)]
    found = []
    if capacity.source == OPEN:
        found.append(Caveat("capacity_at_least",
                            f"{variant}: capacity from the open-loop point {label} at its offered "
                            "load, not searched: the server may carry more (at least this)",
                            "info", variant))
    elif capacity.at_least:
        found.append(Caveat("capacity_at_least",
                            f"{variant}: the capacity search met the SLO at its cap "
                            f"({capacity.rate_rps:g} req/s): the capacity is at least this; raise "
                            "capacity.max_rate or grow_to to find it", "info", variant))
    if capacity.repeats > 1:
        found.append(_repeats_caveat(variant, capacity))
    if record is not None and record.slo != slo:
        found.append(_search_slo_caveat(variant, capacity, record, slo))
    return found


def _repeats_caveat(variant: str, capacity: Capacity) -> Caveat:
    spread = (f"{variant}: capacity is the median of {capacity.repeats} measurements at "
              f"{capacity.rate_rps:g} req/s (lowest {capacity.low_tps:,.0f} tok/s)")
    if capacity.repeats_met < capacity.repeats:
        return Caveat("capacity_repeats_missed", f"{spread}; only {capacity.repeats_met} of them "
                      "met the SLO: the rate is at the edge of what the server holds, on this "
                      "machine's run-to-run noise", "warning", variant)
    return Caveat("capacity_repeats", spread, "info", variant)


def _search_slo_caveat(variant: str, capacity: Capacity, record: CapacityRecord,
                       slo: Slo) -> Caveat:
    where = (f"{capacity.cell}: its capacity search ran at SLO {record.slo.describe()}; the "
             f"profile asks {slo.describe()}")
    if record.slo.at_least_as_strict_as(slo):
        return Caveat("search_slo_stricter", f"{where}: the capacity is a lower bound", "info",
                      variant)
    if record.rate_rps is not None and capacity.rate_rps < record.rate_rps:
        return Caveat("search_slo_looser",
                      f"{where}: its capacity ({record.rate_rps:g} req/s) misses the profile's "
                      f"SLO, so the highest searched rate that meets it is used "
                      f"({capacity.rate_rps:g} req/s); re-run the search at the profile's SLO "
                      "for the exact capacity", "warning", variant)
    return Caveat("search_slo_differs", f"{where}: every rate used was re-judged at the profile's "
                  "SLO", "info", variant)


def _sample_caveats(variant: str, capacity: Capacity, point: JudgedPoint,
                    slo: Slo) -> list[Caveat]:
    found = []
    for limit in slo.limits():
        dist = judged_distribution(point.result.metrics, limit.metric)
        if limit.stat in ("p95", "p99") and dist.n < MIN_TAIL_SAMPLES:
            found.append(Caveat("few_samples",
                                f"{variant}: {limit.key} of the capacity point "
                                f"{capacity.label} comes from {dist.n} samples (< "
                                f"{MIN_TAIL_SAMPLES}): read it as a rough estimate",
                                "warning", variant))
        ci = getattr(dist, f"{limit.stat}_ci", None) if limit.stat != "mean" else None
        if ci and ci[1] > limit.ms:
            found.append(Caveat("slo_within_ci",
                                f"{variant}: {limit.key} meets {limit.ms:g} but its 95% "
                                f"confidence interval reaches {ci[1]:.1f}: the point may miss "
                                "the SLO on another run", "warning", variant))
    return found
