"""`harness compare RUN_A RUN_B [...]`: the runs' shared points side by side, each delta marked
within or beyond the noise, and every setting that differs between them."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from harness.commands.output import console, user_error
from harness.commands.report import load_runs, write_page


class CompareFormat(StrEnum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"


def compare(
    results: list[Path] = typer.Argument(..., metavar="RUN",
                                         help="Results directories written by `harness run`."),
    output_format: CompareFormat = typer.Option(CompareFormat.table, "--format",
                                                help="table, md, csv or json."),
    html_file: Path = typer.Option(
        None, "--html", metavar="FILE",
        help="Also write one page: the differing settings, the deltas, and the runs' Pareto, "
             "latency and cost charts overlaid."),
) -> None:
    """Compare runs point by point against the first: (model, variant, batch size, load point).

    A delta is 'beyond noise' when the two points' 95% bootstrap confidence intervals do not
    overlap. Settings that differ (model, workload, engine and its version, GPU, driver, config
    hash, ...) are listed first. Exit 2 when the runs share no point.
    """
    from harness.report.comparison.deltas import NothingInCommon, distinct_names
    from harness.report.comparison.deltas import compare as compare_runs
    from harness.report.comparison.views import (
        as_csv,
        as_json,
        as_markdown,
        as_table,
        html_sections,
    )

    if len(results) < 2:
        raise user_error("compare needs at least two results directories")
    runs = distinct_names(load_runs(results))
    try:
        comparison = compare_runs(runs)
    except NothingInCommon as err:
        raise user_error(str(err)) from None
    if output_format is CompareFormat.table:
        console.print(as_table(comparison))
    else:
        render = {"md": as_markdown, "csv": as_csv, "json": as_json}[output_format.value]
        typer.echo(render(comparison), nl=False)
    if html_file is not None:
        write_page(runs, html_file, None, html_sections(comparison))
