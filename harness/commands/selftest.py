"""`harness selftest client`: the client measured against a mock server (harness.run.selftest)."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum

import typer

from harness.commands.console import console, err_console, user_error
from harness.mock import Schedule
from harness.run.selftest import StreamsResult, selftest_client


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


HELP = (
    "Measure the client against a mock server: chunks/s and timing error per stream count."
    "\n\n"
    "The mock server (its own processes, on a CPU of their own where there are several) "
    "streams every request one chunk per step, a step every --interval-ms, stamping each "
    "chunk as it writes it; the client stamps each as it arrives. Timing error = arrival "
    "stamp - write stamp (one clock: CLOCK_MONOTONIC). Dispatch lag = actual - scheduled "
    "send; event-loop lag = how late a 5 ms sleep wakes during the run."
    "\n\n"
    "A row says \"kept up\" when every request succeeded, every chunk arrived, and the p99 of "
    "the timing error, the dispatch lag and the event-loop lag each stayed within one step "
    "interval (the client handled each step's chunks before the next step's)."
    "\n\n"
    "Exit codes: 0 every row kept up; 1 a row did not (also when the mock server itself "
    "lagged: such a row proves nothing); 2 bad input."
)


def _streams(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise user_error(f"--streams: {text!r} is not a list of positive integers "
                             "(e.g. 1,64,512)")
    return counts


def client(
    streams: str = typer.Option("1,64,512", "--streams", help="Concurrent streams, per row."),
    duration_s: float = typer.Option(3.0, "--duration", min=0.1, max=3600,
                                     help="Seconds of streaming per row."),
    tokens: int = typer.Option(64, "--tokens", min=1, help="Tokens per request."),
    interval_ms: float = typer.Option(10.0, "--interval-ms", min=0.1, max=60_000,
                                      help="Mock server step: one chunk per stream per step."),
    tokens_per_chunk: int = typer.Option(1, "--tokens-per-chunk", min=1),
    processes: int = typer.Option(1, "--processes", min=1,
                                  help="Client processes sharing the streams and one clock."),
    server_workers: int = typer.Option(1, "--server-workers", min=1,
                                       help="Mock server processes sharing its port."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format",
                                               help="table or json."),
) -> None:
    schedule = Schedule(interval_ms / 1000, tokens_per_chunk)
    rows = selftest_client(_streams(streams), duration_s, tokens, schedule, processes,
                           server_workers)
    if output_format is OutputFormat.json:
        typer.echo(_json(rows, schedule, tokens, processes))
    else:
        _print_table(rows, schedule, tokens, processes)
    if not all(row.kept_up for row in rows):
        raise typer.Exit(1)


def _json(rows: list[StreamsResult], schedule: Schedule, tokens: int, processes: int) -> str:
    import json

    return json.dumps({"schedule": asdict(schedule), "tokens": tokens, "processes": processes,
                       "rows": [{**asdict(row), "kept_up": row.kept_up} for row in rows]},
                      indent=2)


def _print_table(rows: list[StreamsResult], schedule: Schedule, tokens: int,
                 processes: int) -> None:
    from rich.table import Table

    table = Table(title=f"client self-test: {tokens} tokens a request, a step every "
                        f"{schedule.interval_s * 1e3:g} ms, {processes} client process(es)")
    for name in ("streams", "ok/err", "chunks/s (offered)", "timing error p50/p99 ms",
                 "dispatch lag p99 ms", "loop lag p99 ms", "verdict"):
        table.add_column(name, justify="left" if name == "verdict" else "right")
    for row in rows:
        verdict = "[green]kept up[/green]" if row.kept_up else "[red]" + "; ".join(
            row.problems) + "[/red]"
        table.add_row(str(row.streams), f"{row.requests - row.errors}/{row.errors}",
                      f"{row.chunks_per_s:,.0f} ({row.offered_per_s:,.0f})",
                      f"{row.error_p50_ms:.2f}/{row.error_p99_ms:.2f}",
                      f"{row.dispatch.p99_ms:.2f}", f"{row.loop_lag.p99_ms:.2f}", verdict)
    console.print(table)
    for row in rows:
        if not row.kept_up:
            err_console.print(f"[yellow]warning:[/yellow] at {row.streams} streams the "
                                  f"client did not keep up: {'; '.join(row.problems)}")
