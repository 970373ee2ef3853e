"""`harness report RESULTS_DIR`: the results table of a stored run, offline."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.commands.output import console, err_console, user_error


def report(results: Path = typer.Argument(..., metavar="RESULTS_DIR",
                                          help="A results directory written by `harness run`.")
           ) -> None:
    """Print the results table of a stored run (offline; rewrites its summary.csv)."""
    from harness.report.summary import summary_frame
    from harness.report.table import results_table
    from harness.store import ResultsError, RunStore

    store = RunStore(results)
    try:
        run = store.load()
    except ResultsError as err:
        raise user_error(str(err)) from None
    for problem in run.problems:
        err_console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
    frame = summary_frame(run, with_phases=True)
    store.save_summary(frame)
    if frame.empty:
        console.print(f"{results}: no points measured yet")
        return
    console.print(results_table(frame, title=f"{run.name} ({results})"))
