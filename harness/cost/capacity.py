"""Capacity at the SLO, per variant: the cell that serves the most tokens per second per GPU
while meeting the profile's SLO, from its capacity search (capacity.json) where it has one,
else from its best measured point; or, where none meets it, the closest miss."""

from __future__ import annotations

from itertools import groupby

import pandas as pd

from harness.cost import model
from harness.cost.labels import point_label
from harness.cost.measured import JudgedPoint, MeasuredRun
from harness.results import CapacityRecord


def _row(point: JudgedPoint, total_tps: float, output_tps: float, ratio: float,
         cost_ratio: float, source: str) -> dict:
    """A capacity candidate: the point and what its throughput is worth at the profile's mix."""
    result = point.result
    return {
        "variant": result.variant, "cell": result.cell, "point": result.point,
        "max_num_seqs": result.max_num_seqs, "tensor_parallel_size": result.tensor_parallel_size,
        "concurrency": result.concurrency, "gpus_per_replica": point.gpus_per_replica,
        "input_tps": total_tps - output_tps, "output_tps": output_tps,
        "capacity_tps": model.throughput_at_mix(total_tps - output_tps, output_tps, ratio,
                                                cost_ratio),
        "mean_power_w": result.energy.mean_power_w, "capacity_source": source}


def measured_row(point: JudgedPoint, ratio: float, cost_ratio: float) -> dict:
    m = point.result.metrics
    return _row(point, m.total_token_throughput, m.output_throughput, ratio, cost_ratio,
                "best measured point")


def _searched(points: list[JudgedPoint], capacity: CapacityRecord, ratio: float,
              cost_ratio: float) -> dict | None:
    """The capacity search's answer for a cell (None when it found no rate meeting its SLO)."""
    if not capacity.meets_slo:
        return None
    at_point = [p for p in points if p.result.point == capacity.point] or points
    found = _row(at_point[0], capacity.total_token_throughput, capacity.output_throughput,
                 ratio, cost_ratio, "capacity search")
    found.update(point=capacity.point, concurrency=None, rate_rps=capacity.rate_rps)
    return found


def cell_capacity(points: list[JudgedPoint], capacity: CapacityRecord | None, ratio: float,
                  cost_ratio: float) -> dict | None:
    """A cell's capacity: its capacity search when present, else its best point at the SLO."""
    if capacity is not None:
        return _searched(points, capacity, ratio, cost_ratio)
    meeting = [measured_row(p, ratio, cost_ratio) for p in points if p.judged.meets]
    return max(meeting, key=lambda row: row["capacity_tps"]) if meeting else None


def closest_miss(points: list[JudgedPoint]) -> str:
    """The point closest to meeting the SLO, and what it misses."""
    if not points:
        return "no point measured"
    closest = min(points, key=lambda p: p.judged.shortfall)
    if closest.judged.meets:
        return "its capacity search (capacity.json) found no rate that meets its SLO"
    label = point_label(closest.result.model_dump(include={"max_num_seqs", "point",
                                                           "tensor_parallel_size",
                                                           "concurrency"}))
    return f"no point meets the SLO; closest: {label}: {'; '.join(closest.judged.violations)}"


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
            rows.append({"variant": variant, "capacity_tps": None,
                         "slo_note": closest_miss(points)})
    return pd.DataFrame(rows)
