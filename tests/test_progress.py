"""The run's progress: the runner's typed events, rendered by the command line (locally and on a
cluster's driver) and sent from a cell task as they are, requests batched."""

from __future__ import annotations

import io
import pickle

from rich.console import Console

from harness.cluster.task import RemoteProgress
from harness.commands.progress import ClusterDisplay, RunDisplay
from harness.config.slo import Slo
from harness.contract.progress import (
    CapacitySearched,
    CellFailed,
    CellStarting,
    Notice,
    PointFinished,
    PointsSkipped,
    PointStarted,
    RequestsDone,
    WarmupFailed,
)
from harness.contract.results import CapacityRecord

from .factories import point_result


def rendered(display_type, events, total: int = 10) -> tuple[str, float]:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    with display_type(console, total) as display:
        for event in events:
            display(event)
        done = display.progress.tasks[0].completed
    return out.getvalue(), done


def test_the_local_display_renders_each_event_and_moves_the_bar():
    result = point_result("bf16-b4", "bf16", 4, 4)
    text, done = rendered(RunDisplay, [
        CellStarting("bf16-b4", "vllm", "/r/cells/bf16-b4/server.log"),
        PointsSkipped("bf16-b4", 2),
        PointStarted("bf16-b4", "c4", 48), RequestsDone("bf16-b4"), RequestsDone("bf16-b4"),
        PointFinished(result),
        WarmupFailed("bf16-b4", 1, 8, "HTTP 500: [boom]"),
        CapacitySearched("bf16-b4", CapacityRecord(
            slo=Slo(ttft_p95_ms=500), steps=[], meets_slo=True, rate_rps=12.2, point="x",
            output_throughput=386.4), 5.0),
        CellFailed("bf16-b4", "server died", "Killed"),
        Notice("look [here]", "warning"),
    ])
    assert done == 3  # two skipped, one measured
    assert "bf16-b4: starting vllm (log /r/cells/bf16-b4/server.log)" in text
    assert "bf16-b4 c4: 100/100 ok" in text
    assert "1 of 8 warmup requests failed: HTTP 500: [boom]" in text  # markup kept as text
    assert "capacity at SLO 12.2 req/s, 386.4 out tok/s" in text
    assert "bf16-b4: failed: server died" in text and "Killed" in text
    assert "look [here]" in text


def test_the_cluster_display_leaves_the_bar_to_the_driver():
    _, done = rendered(ClusterDisplay, [PointFinished(point_result("bf16-b4", "bf16", 4, 4))])
    assert done == 0  # ClusterSweep.advance counts it, once per point however often retried


class Sink:
    """The driver's ResultSink as a cell task sees it (ray's `.remote` calls)."""

    def __init__(self):
        self.events = []
        sink = self

        class Event:
            @staticmethod
            def remote(cell, attempt, event):
                sink.events.append(pickle.loads(pickle.dumps((cell, attempt, event))))

        self.event = Event


def test_a_cell_task_sends_events_as_they_are_with_its_requests_batched():
    sink = Sink()
    progress = RemoteProgress(sink, "bf16-b4", 1)
    progress(PointStarted("bf16-b4", "c4", 3))
    for _ in range(3):
        progress(RequestsDone("bf16-b4"))
    progress(PointFinished(point_result("bf16-b4", "bf16", 4, 4)))
    kinds = [type(event).__name__ for _, _, event in sink.events]
    assert kinds == ["PointStarted", "RequestsDone", "PointFinished"]
    assert sink.events[1][2].count == 3 and {a for _, a, _ in sink.events} == {1}
