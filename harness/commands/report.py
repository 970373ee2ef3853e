"""`harness report RESULTS_DIR [...]`: the results of stored runs, offline: the table in the
terminal (or Markdown, CSV, JSON, the page), and with --html a self-contained page of charts
(--png: each chart as a PNG too)."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.commands.console import console, emit, err_console, user_error
from harness.report.output import Format


def load_runs(paths: list[Path]) -> list:
    """Every run, or one line naming the directory that is not one (exit 2)."""
    from harness.store.run_store import ResultsError, RunStore

    runs = []
    for path in paths:
        try:
            run = RunStore(path).load()
        except ResultsError as err:
            raise user_error(str(err)) from None
        for problem in run.problems:
            err_console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
        runs.append(run)
    return runs


def write_pngs(runs: list, png_dir: Path) -> None:
    """Each chart of the runs' page as a PNG; a folder that cannot be written is a user error."""
    from harness.report.run_report.html import build_report, write_pngs

    try:
        written = write_pngs(build_report(runs).figures, png_dir)
    except OSError as err:
        raise user_error(f"cannot write the charts: {err}") from None
    err_console.print(f"{len(written)} charts as PNG in {png_dir}")


def refresh_summary(store, frame) -> None:
    """summary.csv as the points give it: left untouched where it already is that, rewritten
    with a note where it is missing or out of date; a folder that cannot be written (a
    read-only mount) gets a warning, and the table is printed all the same."""
    fresh = frame.to_csv(index=False).encode()
    path = store.summary_csv
    try:
        if path.read_bytes() == fresh:
            return
        why = "out of date (not what the stored points give: another harness version, or edited)"
    except FileNotFoundError:
        why = "missing"
    except OSError as err:
        why = f"unreadable ({err.strerror or err})"
    try:
        store.save_summary(frame)
    except OSError as err:
        err_console.print(f"[yellow]warning:[/yellow] {path} is {why} and cannot be rewritten "
                          f"({err.strerror or err})", highlight=False, soft_wrap=True)
        return
    err_console.print(f"note: {path} was {why}: rewritten from the points", highlight=False,
                      soft_wrap=True)


def report(
    results: list[Path] = typer.Argument(..., metavar="RESULTS_DIR",
                                         help="Results directories written by `harness run`."),
    output_format: Format = typer.Option(
        Format.table, "--format",
        help="table (the terminal), md, csv (summary.csv's rows), json, or html (the page, "
             "on stdout)."),
    html_file: Path = typer.Option(
        None, "--html", metavar="FILE",
        help="Also write one self-contained HTML page (charts, build-or-buy headline, "
             "provenance, warnings); several runs are overlaid on it."),
    png_dir: Path = typer.Option(None, "--png", metavar="DIR",
                                 help="Also write each chart as DIR/<chart>.png."),
) -> None:
    """Print the results of stored runs (offline; reads only).

    A run's summary.csv is rewritten only where it is missing or no longer what the stored
    points give (written by another harness version, or edited), and the command says so;
    the file keeps its mode.

    With --html, one page that opens from disk with no network: throughput against
    interactivity, latency against load, cost against the APIs, energy, phases, provenance.
    """
    from harness.report.run_report.document import RunReport
    from harness.store.run_store import RunStore

    runs = load_runs(results)
    document = RunReport.of(runs, width=console.width)
    for run, frame in zip(runs, document.frames, strict=True):
        refresh_summary(RunStore(run.root), frame)
    emit(document, output_format)
    if html_file is not None:
        emit(document, Format.html, html_file)
        err_console.print(f"report: {html_file} (open it in a browser; it needs no network)")
    if png_dir is not None:
        write_pngs(runs, png_dir)
