"""Live display of a run: one line per cell event, a bar over all points and one per point."""

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

    def point_finished(self, summary: str) -> None:
        if self.point is not None:
            self.progress.remove_task(self.point)
            self.point = None
        self.progress.advance(self.sweep)
        self.say(summary)
