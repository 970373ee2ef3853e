"""Live display of a run: the runner's events (harness/contract/progress.py) as one line per
cell event and per finished point, a bar over all points and one per point in flight."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from harness.contract.fidelity import FidelityRecord
from harness.contract.progress import (
    CapacitySearched,
    CellAlreadyDone,
    CellFailed,
    CellOnNode,
    CellReady,
    CellRetried,
    CellStarting,
    Event,
    FidelityMeasured,
    NoCapacitySearch,
    Notice,
    PointFinished,
    PointsSkipped,
    PointStarted,
    RequestsDone,
    WarmupFailed,
)
from harness.contract.results import CapacityRecord, PointResult


class RunDisplay:
    """Renders a local run's events: the sweep's bar moves with every point measured or
    skipped; one bar follows the point in flight."""

    def __init__(self, console: Console, total_points: int):
        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.sweep: TaskID = self.progress.add_task("sweep", total=total_points)
        self.in_flight: dict[str, TaskID] = {}  # a bar per cell with a point in flight

    def __enter__(self) -> RunDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        """Show one event (the runner's `emit`)."""
        if isinstance(event, PointsSkipped):
            self.advance(event.count)
        elif isinstance(event, PointStarted):
            self.cell_stopped(event.cell)
            self.in_flight[event.cell] = self.progress.add_task(
                f"{event.cell} {event.point}", total=event.requests)
        elif isinstance(event, RequestsDone):
            if event.cell in self.in_flight:
                self.progress.advance(self.in_flight[event.cell], event.count)
        elif isinstance(event, PointFinished):
            self.cell_stopped(event.result.cell)
            self.advance(1)
            self.say(summary_line(event.result))
        else:
            self.say(describe(event))

    def say(self, message: str) -> None:
        self.progress.console.print(message)

    def advance(self, count: int) -> None:
        self.progress.advance(self.sweep, count)

    def cell_stopped(self, cell: str) -> None:
        task = self.in_flight.pop(cell, None)
        if task is not None:
            self.progress.remove_task(task)


class ClusterDisplay(RunDisplay):
    """A cluster sweep's display: cells run at once on different nodes, each with its own
    bar; the sweep's bar moves only by what the driver counts (ClusterSweep.advance), since a
    retried cell's points must not be counted twice."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, PointFinished):
            self.cell_stopped(event.result.cell)
            self.say(summary_line(event.result))
            return
        super().__call__(event)


def describe(event: Event) -> str:
    """The line a cell event gets (rich markup)."""
    match event:
        case CellStarting(cell, engine, log):
            return f"[bold]{cell}[/bold]: starting {engine} (log {escape(log)})"
        case CellOnNode(cell, hostname, address, node_id, attempt):
            again = f", attempt {attempt + 1}" if attempt else ""
            return f"{cell}: on {hostname} ({address}, node {node_id[:8]}){again}"
        case CellReady(cell, seconds):
            return f"{cell}: ready in {seconds:.0f} s"
        case CellAlreadyDone(cell, points):
            return f"[dim]{cell}: all {points} points already measured[/dim]"
        case WarmupFailed(cell, failed, sent, first_error):
            return (f"[yellow]{cell}: {failed} of {sent} warmup requests failed: "
                    f"{escape(first_error)}[/yellow]")
        case FidelityMeasured(cell, record):
            return f"{cell}: fidelity {fidelity_summary(record)} ({record.duration_s:.0f} s)"
        case CapacitySearched(cell, record, lowest):
            return capacity_line(cell, record, lowest)
        case NoCapacitySearch(cell, reason):
            return f"[yellow]{cell}: no capacity search: {escape(reason)}[/yellow]"
        case CellFailed(cell, reason, log_line):
            return f"[red]{cell}: failed: {escape(reason)}[/red]\n  [dim]{escape(log_line)}[/dim]"
        case CellRetried(cell, why, attempt, retries):
            return (f"[yellow]{cell}: its task was lost ({escape(why)}); retrying "
                    f"({attempt} of {retries})[/yellow]")
        case Notice(text, "warning"):
            return f"[yellow]{escape(text)}[/yellow]"
        case Notice(text, _):
            return escape(text)
    return escape(str(event))


def capacity_line(cell: str, record: CapacityRecord, lowest: float) -> str:
    if not record.meets_slo:
        return (f"[yellow]{cell}: no searched rate meets the SLO (lowest {lowest:.3g} "
                "req/s)[/yellow]")
    found = (f"[green]{cell}: capacity at SLO {record.rate_rps:g} req/s, "
             f"{record.output_throughput:,.1f} out tok/s")
    if record.at_upper_bound:
        return f"{found}: at least (met at the search's cap)[/green]"
    if record.bracket_rate_rps is None:
        return f"{found}[/green]"
    return (f"{found}[/green] (search bracket: {record.bracket_rate_rps:g} req/s missed, "
            f"delivering {record.bracket_output_throughput:,.1f} out tok/s)")


def fidelity_summary(record: FidelityRecord) -> str:
    if record.status == "baseline":
        return "baseline stored"
    if record.score is None:
        return f"not measured: {escape(record.reason or '')}"
    s = record.score
    return (f"against {record.baseline}: mean KL {s.kl_mean:.3g}, p99 {s.kl_p99:.3g}, "
            f"top-1 {s.top1_agreement:.1%}, {s.diverged_prompts}/{s.prompts} prompts "
            "diverged")


def summary_line(result: PointResult) -> str:
    m = result.metrics
    parts = [f"{result.cell} {result.point}: {m.completed}/{m.requests} ok",
             f"{m.output_throughput:,.1f} out tok/s",
             f"TTFT p50 {m.ttft_ms.p50 or 0:,.1f} ms",
             f"tokens {result.server.token_check}"]
    if not result.client.kept_up:
        parts.append(f"[yellow]the client fell behind: "
                     f"{escape('; '.join(result.client.problems))}[/yellow]")
    if m.burst_delivery:
        parts.append(f"[yellow]burst delivery ({m.burst_share:.0%} of tokens)[/yellow]")
    if result.slo is not None:
        parts.append("SLO met" if result.slo.meets else
                     f"SLO missed: {escape('; '.join(result.slo.violations))}")
    return ", ".join(parts)
