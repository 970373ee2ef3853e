"""`harness validate RESULTS_DIR`: is every file of a stored run whole and unchanged?"""

from __future__ import annotations

from pathlib import Path

import typer

from harness.commands.console import EXIT_FAILED_CELLS, console, err_console, user_error


def recomputed(root: Path) -> list[str]:
    """Every point recomputed from its requests file against its JSON, and summary.csv's rows
    against the points."""
    from harness.metrics.recheck import recheck
    from harness.report.run_report.summary_check import summary_problems
    from harness.store.requests_file import ParquetRequests
    from harness.store.run_store import RunStore

    store = RunStore(root)
    run = store.load()
    problems = []
    for result in run.points:
        requests = store.requests_parquet(result.cell, result.point)
        problems += recheck(result, ParquetRequests(requests))
    return problems + summary_problems(run)


def validate(results: Path = typer.Argument(..., metavar="RESULTS_DIR",
                                            help="A results directory written by `harness run`."),
             ) -> None:
    """Check that a stored run is whole and says what its requests say.

    run.json and every point file readable and of this schema, each point's requests parquet
    with one row per attempt the point counts, the checksums written when each point was saved
    matching its files; then every point's counts, throughputs and percentiles recomputed from
    its requests, and summary.csv's rows against the points. Offline; changes nothing.

    Exit codes: 0 intact, 1 something is broken (each problem is printed), 2 not a results
    directory.
    """
    from harness.store.run_store import ResultsError
    from harness.store.validate import validate_run

    try:
        found = validate_run(results)
    except ResultsError as err:
        raise user_error(str(err)) from None
    if found.no_checksum:
        named = ", ".join(str(path.relative_to(results)) for path in found.no_checksum[:3])
        more = f" and {len(found.no_checksum) - 3} more" if len(found.no_checksum) > 3 else ""
        found.notes.append(f"no checksum recorded for {len(found.no_checksum)} of "
                           f"{found.points} points ({named}{more}): saved before checksums "
                           "were written, so their contents are checked, not their bytes")
    if not found.broken:  # whole files: do their numbers still say what the requests say?
        found.broken += recomputed(results)
    for note in found.notes:
        console.print(f"[dim]note:[/dim] {note}", highlight=False, soft_wrap=True)
    for problem in found.broken:
        err_console.print(f"[red]broken:[/red] {problem}", highlight=False, soft_wrap=True)
    if found.ok:
        console.print(f"{results}: {found.points} points checked, all intact")
        return
    err_console.print(f"{results}: {len(found.broken)} problem(s) in {found.points} points")
    raise typer.Exit(EXIT_FAILED_CELLS)
