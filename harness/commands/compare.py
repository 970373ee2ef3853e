"""`harness compare RUN_A RUN_B [...]`: the runs' shared points side by side, each delta marked
within or beyond the noise, and every setting that differs between them."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.commands.console import console, emit, err_console, user_error
from harness.commands.report import load_runs
from harness.report.output import Format


def compare(
    results: list[Path] = typer.Argument(..., metavar="RUN",
                                         help="Results directories written by `harness run`."),
    output_format: Format = typer.Option(
        Format.table, "--format",
        help="table (the terminal), md, csv, json, or html (the page, on stdout)."),
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
    from harness.report.answer.view import cost_view
    from harness.report.comparison.deltas import NothingInCommon, distinct_names
    from harness.report.comparison.deltas import compare as compare_runs
    from harness.report.comparison.document import ComparisonReport

    if len(results) < 2:
        raise user_error("compare needs at least two results directories")
    runs = distinct_names(load_runs(results))
    try:
        report = ComparisonReport(compare_runs(runs), runs, [cost_view(run) for run in runs],
                                  console.width)
    except NothingInCommon as err:
        raise user_error(str(err)) from None
    emit(report, output_format)
    if html_file is not None:
        emit(report, Format.html, html_file)
        err_console.print(f"report: {html_file} (open it in a browser; it needs no network)")
