"""Live display of a run: one line per cell event and per finished point, a bar over all
points and one per point in flight (the runner's Progress)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from harness.contract.results import PointResult


class RunDisplay:
    def __init__(self, console: Console, total_points: int):
        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.sweep: TaskID = self.progress.add_task("sweep", total=total_points)
        self.point: TaskID | None = None

    def __enter__(self) -> RunDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def say(self, message: str) -> None:
        self.progress.console.print(message)

    def points_skipped(self, count: int) -> None:
        self.progress.advance(self.sweep, count)

    def point_started(self, label: str, total: int | None) -> None:
        self.point = self.progress.add_task(label, total=total)

    def request_done(self) -> None:
        if self.point is not None:
            self.progress.advance(self.point)

    def point_finished(self, result: PointResult) -> None:
        if self.point is not None:
            self.progress.remove_task(self.point)
            self.point = None
        self.progress.advance(self.sweep)
        self.say(summary_line(result))


def summary_line(result: PointResult) -> str:
    m = result.metrics
    parts = [f"{result.cell} {result.point}: {m.completed}/{m.requests} ok",
             f"{m.output_throughput:,.1f} out tok/s",
             f"TTFT p50 {m.ttft_ms.p50 or 0:,.1f} ms",
             f"tokens {result.server.token_check}"]
    if not result.client.kept_up:
        parts.append(f"[yellow]the client fell behind: "
                     f"{'; '.join(result.client.problems)}[/yellow]")
    if m.burst_delivery:
        parts.append(f"[yellow]burst delivery ({m.burst_share:.0%} of tokens)[/yellow]")
    if result.slo is not None:
        parts.append("SLO met" if result.slo.meets else
                     f"SLO missed: {'; '.join(result.slo.violations)}")
    return ", ".join(parts)


class ClusterDisplay(RunDisplay):
    """A cluster sweep's display: the same bar over all points, and one bar per cell that has
    a point in flight (cells run at once on different nodes)."""

    def __init__(self, console: Console, total_points: int):
        super().__init__(console, total_points)
        self.in_flight: dict[str, TaskID] = {}

    def cell_point_started(self, cell: str, label: str, total: int | None) -> None:
        self.cell_stopped(cell)
        self.in_flight[cell] = self.progress.add_task(label, total=total)

    def cell_requests_done(self, cell: str, count: int) -> None:
        if cell in self.in_flight:
            self.progress.advance(self.in_flight[cell], count)

    def cell_point_finished(self, cell: str, result: PointResult) -> None:
        self.cell_stopped(cell)
        self.say(summary_line(result))  # the sweep's bar moves with the driver's count

    def cell_stopped(self, cell: str) -> None:
        task = self.in_flight.pop(cell, None)
        if task is not None:
            self.progress.remove_task(task)
