"""The listings beside the answer, as tables: every measured point priced (`harness cost
--points`) and every known price with its dates (`harness prices`)."""

from __future__ import annotations

import pandas as pd

from harness.cost.labels import missing
from harness.cost.points import PointCost
from harness.report.answer.format import number, rate
from harness.report.answer.grid import Grid

POINTS_TITLE = "Measured points ($/Mtok, rented, at each point's throughput)"


def points_table(points: list[PointCost], caption: str) -> Grid:
    grid = Grid(POINTS_TITLE, [
        "variant", "batch", "load", "measured", "meets SLO", "out tok/s", "total tok/s",
        "$/Mtok out", "$/Mtok total", "split in/out", "at profile mix"], caption)
    for point in points:
        meets = ("[green]yes[/green]" if point.meets_slo
                 else f"[yellow]no[/yellow] {point.slo_miss}")
        prices = point.prices
        grid.add(
            point.variant, number(point.max_num_seqs), _load(point),
            point.measured_at or "-", meets,
            number(point.output_throughput, 1), number(point.total_token_throughput, 1),
            rate(prices.usd_per_mtok_output if prices else None),
            rate(prices.usd_per_mtok_total if prices else None),
            f"{rate(prices.usd_per_mtok_input_split)}/{rate(prices.usd_per_mtok_output_split)}"
            if prices else "-/-",
            rate(prices.usd_per_mtok_at_profile_mix if prices else None))
    return grid


def _load(point: PointCost) -> str:
    if point.concurrency is not None:
        return f"conc {float(point.concurrency):g}"
    if point.rate is not None:
        return f"{float(point.rate):g} req/s"
    return point.point


# --- harness prices ----------------------------------------------------------------------

def gpu_price_table(frame: pd.DataFrame) -> Grid:
    grid = Grid("GPU rental ($ per GPU-hour)", [
        "GPU", "provider", "tier", "$/GPU-h", "price of", "age (days)", "checked", "source"],
        text_first=3, text_last=3)
    for row in frame.to_dict("records"):
        source = row["source"]
        if not missing(row.get("source_date")):
            source += f" (price of {row['source_date']})"
        if not missing(row.get("note")):
            source += f"; {row['note']}"
        grid.add(row["gpu"], row["provider"], row["tier"], rate(row["usd_per_gpu_hour"]),
                 row["data_date"] + (" STALE" if row["stale"] else ""), str(row["age_days"]),
                 str(row["checked"]), source)
    return grid


def api_price_table(frame: pd.DataFrame) -> Grid:
    data = ", ".join(sorted(set(frame["data"]))) if not frame.empty else ""
    grid = Grid("Hosted APIs ($ per million tokens)", [
        "tier", "API", "input", "cached input", "output", "batch in/out", "prices as of",
        "data of", "tier checked", "source"], f"prices: {data}", text_last=4)
    for row in frame.to_dict("records"):
        batch = "-"
        if not missing(row["batch_input_usd_per_mtok"]):
            batch = (f"{rate(row['batch_input_usd_per_mtok'])}/"
                     f"{rate(row['batch_output_usd_per_mtok'])}")
        tiered = " (tiered by prompt length)" if row["tiered_by_prompt_length"] else ""
        grid.add("" if missing(row["tier"]) else row["tier"], row["api"] + tiered,
                 rate(row["input_usd_per_mtok"]), rate(row["cached_input_usd_per_mtok"]),
                 rate(row["output_usd_per_mtok"]), batch, row["prices_as_of"],
                 row["data_date"] + (" STALE" if row["stale"] else ""),
                 "-" if missing(row["tier_checked"]) else row["tier_checked"], row["source"])
    return grid
