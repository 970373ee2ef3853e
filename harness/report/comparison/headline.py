"""What a comparison leads with: the decision rows in words and numbers (before -> after), and
the few biggest changes: verdicts that changed, then the decision's numbers by how far they
moved, then the points' metrics beyond noise by how far they moved."""

from __future__ import annotations

import pandas as pd
from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from harness.report.comparison.decision import NUMBERS, VARIANT_LEVEL, Decisions
from harness.report.output import markdown_table
from harness.report.page import escape, frame_table

BIGGEST = 6            # lines of the summary
POINT_LINES = 3        # of them at most from the points' metrics
# the decision's quantities a summary names, in this order (each variant's, then each cell's)
FIRST = ["verdict", "monthly bill", "sustained capacity tok/s", "margin over runner-up"]


def value_text(quantity: str, value: object, detail: object = None) -> str:
    """A decision value as people read it: '$219.00', '7,779 (bf16-b16, batch 16 @ 58
    req/s)', '-' where there is none."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        text = "-"
    elif quantity in NUMBERS and isinstance(value, (int, float)):
        spec = NUMBERS[quantity]
        text = "$" + format(value, spec[1:]) if spec.startswith("$") else format(value, spec)
    else:
        text = str(value)
    has_detail = isinstance(detail, str) and detail
    return f"{text} ({detail})" if has_detail else text


def change_text(row: dict) -> str:
    if not row["changed"]:
        return "same"
    if row["change_pct"] is not None and not pd.isna(row["change_pct"]) and row["change_pct"]:
        return f"{row['change_pct']:+.1f}%"
    return "changed"


def readable_decisions(found: Decisions) -> pd.DataFrame:
    """One row per (variant or cell, quantity, run): before, after and the change, in
    words."""
    rows = found.rows
    if rows.empty:
        return pd.DataFrame(columns=["of", "quantity", "run", "before", "after", "change"])
    records = rows.to_dict("records")
    return pd.DataFrame({
        "of": [r["variant"] if r["cell"] == VARIANT_LEVEL else f"cell {r['cell']}"
               for r in records],
        "quantity": rows["quantity"], "run": rows["run"],
        "before": [value_text(r["quantity"], r["before"], r["before_detail"]) for r in records],
        "after": [value_text(r["quantity"], r["after"], r["after_detail"]) for r in records],
        "change": [change_text(r) for r in records]})


def _decision_line(row: dict) -> str:
    where = row["variant"] if row["cell"] == VARIANT_LEVEL else row["cell"]
    moved = f" ({row['change_pct']:+.1f}%)" if row["change_pct"] is not None \
        and not pd.isna(row["change_pct"]) and row["change_pct"] != 0 else ""
    quantity = row["quantity"]
    return (f"{where}: {quantity} {value_text(quantity, row['before'], row['before_detail'])}"
            f" -> {value_text(quantity, row['after'], row['after_detail'])}{moved}")


def _point_line(row: dict) -> str:
    batch = "" if pd.isna(row["max_num_seqs"]) else f" batch {int(row['max_num_seqs'])}"
    return (f"{row['variant']}{batch} {row['point']}: {row['metric']} {row['base']:,.2f} -> "
            f"{row['value']:,.2f} ({row['delta_pct']:+.1f}%, beyond noise)")


def biggest_changes(found: Decisions, deltas: pd.DataFrame) -> list[str]:
    """The few changes a reader needs first, biggest first."""
    lines = []
    rows = found.rows
    if not rows.empty:
        changed = rows[rows["changed"]]
        first = changed[changed["quantity"].isin(FIRST)]
        first = first.assign(
            cell_level=first["cell"] != VARIANT_LEVEL, order=first["quantity"].map(FIRST.index),
            size=-first["change_pct"].abs().fillna(0)).sort_values(["cell_level", "order", "size"])
        seen = set()
        for row in first.to_dict("records"):  # a cell's line where its variant's says it
            said = (row["variant"], row["quantity"], str(row["before"]), str(row["after"]))
            if said not in seen:
                lines.append(_decision_line(row))
            seen.add(said)
    beyond = deltas[(deltas["noise"] == "beyond noise") & deltas["delta_pct"].notna()]
    beyond = beyond.reindex(beyond["delta_pct"].abs().sort_values(ascending=False).index)
    points = [_point_line(r) for r in beyond.head(POINT_LINES).to_dict("records")]
    lines = lines[:BIGGEST - len(points)] + points
    if not lines:
        return ["nothing changed beyond noise: the same decision, and no point's metric moved "
                "beyond its noise"]
    return lines


def decision_frame(found: Decisions, runs: int) -> pd.DataFrame:
    """The decision rows to show: the run column only where more than one run is compared
    with the first."""
    frame = readable_decisions(found)
    return frame if runs > 2 else frame.drop(columns=["run"])


def decision_table(found: Decisions, runs: list[str]) -> RenderableType:
    frame = decision_frame(found, len(runs))
    table = Table(title=f"The decision: {runs[0]} -> {', '.join(runs[1:])}", header_style="bold",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in frame.columns:
        table.add_column(column, overflow="fold")  # words wrap; a number is one word, whole
    for row in frame.to_dict("records"):
        style = "bold" if row["change"] not in ("same",) else "dim"
        table.add_row(*(str(v) for v in row.values()), style=style)
    return table


def missing_lines(found: Decisions) -> list[str]:
    return [f"no decision for {run}: {why}" for run, why in found.missing.items()]


def lead_terminal(found: Decisions, deltas: pd.DataFrame, runs: list[str]) -> list[RenderableType]:
    parts: list[RenderableType] = [Text("Biggest changes:", style="bold")]
    parts += [Text(f"  {line}") for line in biggest_changes(found, deltas)]
    if not found.rows.empty:
        parts.append(decision_table(found, runs))
    parts += [Text(line, style="yellow") for line in missing_lines(found)]
    return parts


def lead_markdown(found: Decisions, deltas: pd.DataFrame, runs: list[str]) -> list[str]:
    lines = ["## Biggest changes", ""]
    lines += [f"- {line}" for line in biggest_changes(found, deltas)]
    lines += ["", f"## The decision: {runs[0]} -> {', '.join(runs[1:])}", ""]
    if not found.rows.empty:
        lines.append(markdown_table(decision_frame(found, len(runs))).rstrip("\n"))
    lines += [f"- {line}" for line in missing_lines(found)]
    return lines + [""]


def lead_html(found: Decisions, deltas: pd.DataFrame, runs: list[str]) -> str:
    changes = "".join(f"<li>{escape(line)}</li>" for line in biggest_changes(found, deltas))
    table = "" if found.rows.empty else frame_table(decision_frame(found, len(runs)))
    missing = "".join(f"<p>{escape(line)}</p>" for line in missing_lines(found))
    return (f"<p><b>Biggest changes</b> against {escape(runs[0])}:</p><ul>{changes}</ul>"
            f"<p>The decision of each variant (the cheapest way to serve the profile's "
            f"traffic) and each cell's sustained capacity at the profile's SLO, before and "
            f"after:</p>{table}{missing}")
