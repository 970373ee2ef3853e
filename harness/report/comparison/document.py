"""A comparison as a document (harness/report/output.py): a terminal table, Markdown, CSV, JSON,
or the page of the runs with the comparison's sections first (the differing settings, then
the deltas)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from harness.report.comparison.deltas import REPEATS, Comparison
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


def readable(comparison: Comparison) -> pd.DataFrame:
    """The deltas with formatted numbers, one row per (point, metric, run)."""
    d = comparison.deltas
    return pd.DataFrame({
        "variant": d["variant"], "batch": d["max_num_seqs"].map(
            lambda b: "-" if pd.isna(b) else str(int(b))), "point": d["point"],
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


def as_table(comparison: Comparison, width: int | None = None) -> RenderableType:
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
    parts: list[RenderableType] = [Text("Settings that differ:", style="bold")]
    parts += [Text(f"  {line}") for line in settings_lines(comparison)]
    parts += [Text("Also differs (expected): " + "; ".join(
        f"{k}: {' | '.join(v)}" for k, v in comparison.incidental) if comparison.incidental
        else "Also differs: nothing")]
    parts += [table, Text(summary_line(comparison))]
    parts += [Text(f"not compared: {line}", style="yellow") for line in comparison.unmatched]
    return Group(*parts)


def as_markdown(comparison: Comparison) -> str:
    frame = readable(comparison)
    lines = [f"# compare: {' vs '.join(comparison.runs)}", "", "Settings that differ:", ""]
    lines += [f"- {line}" for line in settings_lines(comparison)]
    lines += [f"- (expected) {k}: {' | '.join(v)}" for k, v in comparison.incidental]
    lines += ["", markdown_table(frame).rstrip("\n"), "", summary_line(comparison)]
    lines += [f"- not compared: {line}" for line in comparison.unmatched]
    return "\n".join(lines) + "\n"


def as_csv(comparison: Comparison) -> str:
    frame = comparison.deltas.copy()
    for column in ("base_ci", "value_ci"):
        frame[column] = frame[column].map(lambda v: "" if not isinstance(v, list)
                                          else f"{v[0]};{v[1]}")
    return frame.to_csv(index=False)


def as_json(comparison: Comparison) -> str:
    return json.dumps({
        "runs": comparison.runs,
        "settings_that_differ": {k: v for k, v in comparison.settings},
        "also_differs": {k: v for k, v in comparison.incidental},
        "not_compared": comparison.unmatched,
        "deltas": json.loads(comparison.deltas.to_json(orient="records"))}, indent=2) + "\n"


def html_sections(comparison: Comparison) -> list[tuple[str, str]]:
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
    return [("Settings that differ", f"<ul>{settings}</ul><p>Expected to differ:</p>"
                                     f"<ul>{incidental or '<li>nothing</li>'}</ul>"),
            ("Deltas", deltas)]


@dataclass
class ComparisonReport:
    """`harness compare`: the comparison of `runs` (the first is the base)."""

    comparison: Comparison
    runs: list[StoredRun]
    width: int | None = None  # the terminal's, for the table's columns

    def terminal(self) -> RenderableType:
        return as_table(self.comparison, self.width)

    def markdown(self) -> str:
        return as_markdown(self.comparison)

    def csv(self) -> str:
        return as_csv(self.comparison)

    def json(self) -> str:
        return as_json(self.comparison)

    def html(self) -> str:
        """The runs' page (their charts overlaid) with the comparison's sections first."""
        from harness.report.run_report.html import build_report

        return build_report(self.runs, html_sections(self.comparison)).html
