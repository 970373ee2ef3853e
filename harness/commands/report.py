"""`harness report RESULTS_DIR [...]`: the results table of stored runs, offline, and with
--html a self-contained page of charts (--png: each chart as a PNG too)."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.commands.output import console, err_console, user_error


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


def write_page(runs: list, html_file: Path | None, png_dir: Path | None,
               extra: list[tuple[str, str]] | None = None) -> None:
    """The HTML page and/or PNGs of `runs`; a file that cannot be written is a user error."""
    from harness.report.run_report.html import build_report, write_pngs

    report = build_report(runs, extra)
    try:
        if html_file is not None:
            html_file.parent.mkdir(parents=True, exist_ok=True)
            html_file.write_text(report.html, encoding="utf-8")
            console.print(f"report: {html_file} (open it in a browser; it needs no network)")
        if png_dir is not None:
            written = write_pngs(report.figures, png_dir)
            console.print(f"{len(written)} charts as PNG in {png_dir}")
    except OSError as err:
        raise user_error(f"cannot write the report: {err}") from None


def report(
    results: list[Path] = typer.Argument(..., metavar="RESULTS_DIR",
                                         help="Results directories written by `harness run`."),
    html_file: Path = typer.Option(
        None, "--html", metavar="FILE",
        help="Also write one self-contained HTML page (charts, build-or-buy headline, "
             "provenance, warnings); several runs are overlaid on it."),
    png_dir: Path = typer.Option(None, "--png", metavar="DIR",
                                 help="Also write each chart as DIR/<chart>.png."),
) -> None:
    """Print the results table of stored runs (offline; rewrites their summary.csv).

    With --html, one page that opens from disk with no network: throughput against
    interactivity, latency against load, cost against the APIs, energy, phases, provenance.
    """
    from harness.report.run_report.summary import summary_frame
    from harness.report.run_report.table import results_table
    from harness.store.run_store import RunStore

    runs = load_runs(results)
    for path, run in zip(results, runs, strict=True):
        frame = summary_frame(run, with_phases=True)
        RunStore(path).save_summary(frame)
        if frame.empty:
            console.print(f"{path}: no points measured yet")
            continue
        console.print(results_table(frame, title=f"{run.name} ({path})", width=console.width))
    if html_file is not None or png_dir is not None:
        write_page(runs, html_file, png_dir)
