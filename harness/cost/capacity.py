"""Capacity at the SLO, per variant: the cell that serves the most tokens per second per GPU
while meeting the profile's SLO, and how far that figure can be trusted.

Every candidate point is judged against the profile's SLO (harness.metrics.slo.judge, in
measured.py).
- A cell with a capacity search: the highest searched open-loop rate whose point meets the
  profile's SLO (whatever SLO the search ran at), bracketed by the next rate tried above it; at
  the top of the searched range it is a lower bound ("at least").
- A cell without one: its best point at the SLO, marked unverified where it is closed loop
  (no queueing in its latencies, nothing showed the server holding that rate under arrivals);
  a closed-loop point's throughput is its steady window's, without ramp-up and drain.
"""

from __future__ import annotations

from itertools import groupby

import pandas as pd

from harness.config.slo import Slo
from harness.contract.results import CapacityRecord
from harness.cost import formulas
from harness.cost.caveats import Caveat
from harness.cost.labels import point_label
from harness.cost.measured import JudgedPoint, MeasuredRun
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


def _row(point: JudgedPoint, ratio: float, cost_ratio: float, basis: str) -> dict:
    """A capacity candidate: the point and what its throughput is worth at the profile's mix."""
    result, m = point.result, point.result.metrics
    total_tps, output_tps, window = _throughputs(point, basis)
    input_tps = total_tps - output_tps
    capacity = formulas.throughput_at_mix(input_tps, output_tps, ratio, cost_ratio)
    return {
        "variant": result.variant, "cell": result.cell, "point": result.point,
        "max_num_seqs": result.max_num_seqs, "tensor_parallel_size": result.tensor_parallel_size,
        "concurrency": result.concurrency, "rate_rps": result.rate,
        "gpus_per_replica": point.gpus_per_replica,
        "input_tps": input_tps, "output_tps": output_tps, "capacity_tps": capacity,
        "capacity_window": window,
        "capacity_low_tps": capacity, "capacity_high_tps": None,
        "mean_power_w": result.energy.mean_power_w, "capacity_source": basis,
        "capacity_verified": basis != CLOSED, "capacity_at_least": basis == OPEN,
        "capacity_n": m.completed}


def measured_row(point: JudgedPoint, ratio: float, cost_ratio: float) -> dict:
    return _row(point, ratio, cost_ratio, CLOSED if point.result.kind == "closed" else OPEN)


def _searched(points: list[JudgedPoint], record: CapacityRecord, ratio: float,
              cost_ratio: float) -> dict | None:
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
    row = _row(point, ratio, cost_ratio, SEARCH)
    above = [r for r in rates.values() if r > rate]
    row.update(rate_rps=rate, concurrency=None, capacity_at_least=not above,
               search_rate_rps=record.rate_rps, search_slo=record.slo.describe())
    if above:
        row["capacity_high_tps"] = row["capacity_tps"] * min(above) / rate
    return row


def cell_capacity(points: list[JudgedPoint], record: CapacityRecord | None, ratio: float,
                  cost_ratio: float) -> dict | None:
    """A cell's capacity: its capacity search when present, else its best point at the SLO."""
    if record is not None:
        return _searched(points, record, ratio, cost_ratio)
    meeting = [measured_row(p, ratio, cost_ratio) for p in points
               if p.judged.meets and p.result.kind != "search"]
    return max(meeting, key=lambda row: row["capacity_tps"]) if meeting else None


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
    label = point_label({"max_num_seqs": result.max_num_seqs, "point": result.point,
                         "tensor_parallel_size": result.tensor_parallel_size,
                         "concurrency": result.concurrency, "rate_rps": result.rate})
    return (f"no point meets the SLO; closest: {label}: {'; '.join(closest.judged.violations)}"
            f"{rerun}")


def variant_capacities(run: MeasuredRun, ratio: float, cost_ratio: float) -> pd.DataFrame:
    """Per variant: the cell with the most tokens/s per GPU at the SLO, or why there is none."""
    rows = []
    for variant, group in groupby(run.points, key=lambda p: p.result.variant):
        points = list(group)
        cells = []
        for cell, cell_points in groupby(points, key=lambda p: p.result.cell):
            found = cell_capacity(list(cell_points), run.capacities.get(cell), ratio, cost_ratio)
            if found is not None:
                cells.append(found)
        if cells:
            best = max(cells, key=lambda c: c["capacity_tps"] / c["gpus_per_replica"])
            rows.append({**best, "slo_note": ""})
        else:
            searches = [run.capacities[c] for c in {p.result.cell for p in points}
                        if c in run.capacities]
            rows.append({"variant": variant, "capacity_tps": None,
                         "slo_note": closest_miss(points, searches, run.slo)})
    return pd.DataFrame(rows)


# --- what the capacity rests on ----------------------------------------------------------

def capacity_caveats(run: MeasuredRun, slo: Slo, capacities: pd.DataFrame) -> list[Caveat]:
    found: list[Caveat] = []
    by_id = {(p.result.cell, p.result.point): p for p in run.points}
    for row in capacities.to_dict("records"):
        if pd.isna(row.get("capacity_tps")):
            found.append(Caveat("no_capacity_at_slo", f"{row['variant']}: {row['slo_note']}",
                                "warning", row["variant"]))
            continue
        found += _basis_caveats(row, run.capacities.get(row["cell"]), slo)
        found += _sample_caveats(row, by_id[(row["cell"], row["point"])], slo)
    return found


def _basis_caveats(row: dict, record: CapacityRecord | None, slo: Slo) -> list[Caveat]:
    variant, label = row["variant"], point_label(row)
    if row["capacity_source"] == CLOSED:
        return [Caveat("capacity_unverified",
                       f"{variant}: unverified: closed loop: capacity from {label} "
                       f"(n={row['capacity_n']}): closed-loop latencies have no queueing and no "
                       "open-loop run held this rate; add a capacity search to verify it",
                       "warning", variant)]
    found = []
    if row["capacity_source"] == OPEN:
        found.append(Caveat("capacity_at_least",
                            f"{variant}: capacity from the open-loop point {label} at its offered "
                            "load, not searched: the server may carry more (at least this)",
                            "info", variant))
    elif row["capacity_at_least"]:
        found.append(Caveat("capacity_at_least",
                            f"{variant}: the capacity search met the SLO at the top of its range "
                            f"({row['rate_rps']:g} req/s): the capacity is at least this; raise "
                            "capacity.max_rate to find it", "info", variant))
    if record is not None and record.slo != slo:
        found.append(_search_slo_caveat(row, record, slo))
    return found


def _search_slo_caveat(row: dict, record: CapacityRecord, slo: Slo) -> Caveat:
    variant = row["variant"]
    where = (f"{row['cell']}: its capacity search ran at SLO {record.slo.describe()}; the "
             f"profile asks {slo.describe()}")
    if record.slo.at_least_as_strict_as(slo):
        return Caveat("search_slo_stricter", f"{where}: the capacity is a lower bound", "info",
                      variant)
    if record.rate_rps is not None and row["rate_rps"] < record.rate_rps:
        return Caveat("search_slo_looser",
                      f"{where}: its capacity ({record.rate_rps:g} req/s) misses the profile's "
                      f"SLO, so the highest searched rate that meets it is used "
                      f"({row['rate_rps']:g} req/s); re-run the search at the profile's SLO for "
                      "the exact capacity", "warning", variant)
    return Caveat("search_slo_differs", f"{where}: every rate used was re-judged at the profile's "
                  "SLO", "info", variant)


def _sample_caveats(row: dict, point: JudgedPoint, slo: Slo) -> list[Caveat]:
    found = []
    for limit in slo.limits():
        dist = judged_distribution(point.result.metrics, limit.metric)
        if limit.stat in ("p95", "p99") and dist.n < MIN_TAIL_SAMPLES:
            found.append(Caveat("few_samples",
                                f"{row['variant']}: {limit.key} of the capacity point "
                                f"{point_label(row)} comes from {dist.n} samples (< "
                                f"{MIN_TAIL_SAMPLES}): read it as a rough estimate",
                                "warning", row["variant"]))
        ci = getattr(dist, f"{limit.stat}_ci", None) if limit.stat != "mean" else None
        if ci and ci[1] > limit.ms:
            found.append(Caveat("slo_within_ci",
                                f"{row['variant']}: {limit.key} meets {limit.ms:g} but its 95% "
                                f"confidence interval reaches {ci[1]:.1f}: the point may miss "
                                "the SLO on another run", "warning", row["variant"]))
    return found
