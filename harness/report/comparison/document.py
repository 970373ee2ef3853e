"""A comparison as a document (harness/report/output.py): a terminal table, Markdown, CSV, JSON,
or the page of the runs with the comparison's sections first (the differing settings, then
the deltas)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import pandas as pd
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from harness.report.answer.view import CostView
from harness.report.comparison.decision import Decisions, decisions
from harness.report.comparison.deltas import REPEATS, Comparison
from harness.report.comparison.headline import (
    biggest_changes,
    lead_html,
    lead_markdown,
    lead_terminal,
)
from harness.report.output import columns_to_fit, markdown_table
from harness.report.page import escape, frame_table
from harness.store.run_store import StoredRun

NOISE_STYLE = {"beyond noise": "bold yellow", "within noise": "green", "no CI stored": "dim"}


def _number(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{float(value):,.2f}"


def _ci(value: object) -> str:
    return "-" if not isinstance(value, list) else f"[{value[0]:,.1f}, {value[1]:,.1f}]"


def _point_names(d: pd.DataFrame) -> list[str]:
    """The aligned point, with each run's own name where they differ (a search's steps)."""
    return [point if a == b == point else f"{point} ({a})" if a == b
            else f"{point} ({a} | {b})"
            for point, a, b in zip(d["point"], d["base_point"], d["run_point"], strict=True)]


def readable(comparison: Comparison) -> pd.DataFrame:
    """The deltas with formatted numbers, one row per (point, metric, run)."""
    d = comparison.deltas
    return pd.DataFrame({
        "variant": d["variant"], "batch": d["max_num_seqs"].map(
            lambda b: "-" if pd.isna(b) else str(int(b))), "point": _point_names(d),
            "metric": d["metric"], "base": d["base"].map(_number),
        "run": d["run"], "value": d["value"].map(_number), "delta": d["delta"].map(_number),
        "delta %": d["delta_pct"].map(lambda v: "-" if pd.isna(v) else f"{v:+.1f}%"),
        "95% CI base": d["base_ci"].map(_ci), "95% CI run": d["value_ci"].map(_ci),
        "noise": d["noise"], "noise from": d["noise_from"]})


def settings_lines(comparison: Comparison) -> list[str]:
    lines = [f"{name}: {' | '.join(values)}" for name, values in comparison.settings]
    return lines or ["none: the same model, workload, load, engine, versions, GPU, driver and "
                     "config hash"]


def summary_line(comparison: Comparison) -> str:
    deltas = comparison.deltas
    counts = deltas["noise"].value_counts()
    repeated = deltas["noise_from"].str.startswith(REPEATS)
    basis = ("against the run-to-run noise of repeats" if repeated.all() else
             "against one run's sampling noise only (measure with --repeat N for the "
             "run-to-run noise)" if not repeated.any() else
             f"{int(repeated.sum())} against the run-to-run noise of repeats, the rest "
             "against sampling noise only")
    return (f"{len(deltas)} deltas against {comparison.runs[0]}: "
            + ", ".join(f"{counts.get(k, 0)} {k}" for k in NOISE_STYLE) + f"; {basis}")


# what goes first in a narrow terminal (csv, json and md keep every column)
NARROW_DROPS = ("95% CI base", "95% CI run", "noise from", "delta", "run", "batch")


def as_table(comparison: Comparison, found: Decisions,
             width: int | None = None) -> RenderableType:
    frame = readable(comparison)
    frame = frame[columns_to_fit(frame, width, NARROW_DROPS)]
    narrow = width is not None and width < 120
    table = Table(title=f"compare: {' vs '.join(comparison.runs)} (base: {comparison.runs[0]})",
                  header_style="bold", title_justify="left",
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
    for column in frame.columns:
        text = column in ("variant", "point", "metric", "run", "noise")
        # numbers whole, never cut: a narrow terminal wraps the words instead
        table.add_column(column, justify="left" if text else "right", no_wrap=not text,
                         overflow="fold")
    for row in frame.to_dict("records"):
        cells = [str(v) for v in row.values()]
        cells[-1] = f"[{NOISE_STYLE[row['noise']]}]{row['noise']}[/]"
        table.add_row(*cells)
    parts = lead_terminal(found, comparison.deltas, comparison.runs)
    parts.append(Text("Settings that differ:", style="bold"))
    parts += [Text(f"  {line}") for line in settings_lines(comparison)]
    parts += [Text("Also differs (expected): " + "; ".join(
        f"{k}: {' | '.join(v)}" for k, v in comparison.incidental) if comparison.incidental
        else "Also differs: nothing")]
    parts += [table, Text(summary_line(comparison))]
    parts += [Text(f"not compared: {line}", style="yellow") for line in comparison.unmatched]
    return Group(*parts)


def as_markdown(comparison: Comparison, found: Decisions) -> str:
    frame = readable(comparison)
    lines = [f"# compare: {' vs '.join(comparison.runs)}", ""]
    lines += lead_markdown(found, comparison.deltas, comparison.runs)
    lines += ["## Points", "", "Settings that differ:", ""]
    lines += [f"- {line}" for line in settings_lines(comparison)]
    lines += [f"- (expected) {k}: {' | '.join(v)}" for k, v in comparison.incidental]
    lines += ["", markdown_table(frame).rstrip("\n"), "", summary_line(comparison)]
    lines += [f"- not compared: {line}" for line in comparison.unmatched]
    return "\n".join(lines) + "\n"


def as_csv(comparison: Comparison, found: Decisions) -> str:
    """One table: the decision rows (table=decision) first, then the points' deltas
    (table=point), each with its own columns."""
    frame = comparison.deltas.copy()
    for column in ("base_ci", "value_ci"):
        frame[column] = frame[column].map(lambda v: "" if not isinstance(v, list)
                                          else f"{v[0]};{v[1]}")
    parts = [found.rows.assign(table="decision"), frame.assign(table="point")]
    both = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    return both[["table", *(c for c in both.columns if c != "table")]].to_csv(index=False)


def as_json(comparison: Comparison, found: Decisions) -> str:
    return json.dumps({
        "runs": comparison.runs,
        "biggest_changes": biggest_changes(found, comparison.deltas),
        "decision": json.loads(found.rows.to_json(orient="records")),
        "no_decision": found.missing,
        "settings_that_differ": {k: v for k, v in comparison.settings},
        "also_differs": {k: v for k, v in comparison.incidental},
        "not_compared": comparison.unmatched,
        "deltas": json.loads(comparison.deltas.to_json(orient="records"))}, indent=2) + "\n"


def html_sections(comparison: Comparison, found: Decisions) -> list[tuple[str, str]]:
    settings = "".join(f"<li>{escape(line)}</li>" for line in settings_lines(comparison))
    incidental = "".join(f"<li>{escape(k)}: {escape(' | '.join(v))}</li>"
                         for k, v in comparison.incidental)
    unmatched = "".join(f"<li>{escape(line)}</li>" for line in comparison.unmatched)
    deltas = (f"<p>{escape(summary_line(comparison))}. Beyond noise: the two 95% intervals "
              "do not overlap (of the mean of the repeats where both runs have them, else of "
              "one run's percentile).</p><details><summary>every delta"
              f"</summary>{frame_table(readable(comparison))}</details>")
    if unmatched:
        deltas += f"<p>Not compared:</p><ul>{unmatched}</ul>"
    return [("The decision, before and after", lead_html(found, comparison.deltas,
                                                         comparison.runs)),
            ("Settings that differ", f"<ul>{settings}</ul><p>Expected to differ:</p>"
                                     f"<ul>{incidental or '<li>nothing</li>'}</ul>"),
            ("Deltas", deltas)]


@dataclass
class ComparisonReport:
    """`harness compare`: the comparison of `runs` (the first is the base)."""

    comparison: Comparison
    runs: list[StoredRun]
    views: list[CostView]     # each run's build-or-buy answer, as its report shows it
    width: int | None = None  # the terminal's, for the table's columns

    @functools.cached_property
    def decisions(self) -> Decisions:
        return decisions(self.runs, self.views)

    def terminal(self) -> RenderableType:
        return as_table(self.comparison, self.decisions, self.width)

    def markdown(self) -> str:
        return as_markdown(self.comparison, self.decisions)

    def csv(self) -> str:
        return as_csv(self.comparison, self.decisions)

    def json(self) -> str:
        return as_json(self.comparison, self.decisions)

    def html(self) -> str:
        """The runs' page (their charts overlaid) with the comparison's sections first."""
        from harness.report.run_report.html import build_report

        return build_report(self.runs, html_sections(self.comparison, self.decisions),
                            self.views).html
