"""Did the client keep up? How late the event loop ran (LoopLag), the verdict on that and on
the dispatch lag (client_problems; the dispatch lag itself is defined in harness.metrics); and
dispatch_at, which starts each scheduled request from a timer callback so it leaves on time."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.metrics import dispatch_lag
from harness.records import RequestRecord

LAG_SAMPLE_S = 0.005
LAG_LIMIT_MS = 5.0  # the default tolerance of a real run


@dataclass(frozen=True)
class LagSummary:
    """A lag distribution in milliseconds, with its sample count."""

    n: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LagSummary:
        if not seconds:
            return cls()
        ordered = sorted(seconds)
        return cls(len(ordered), _quantile(ordered, 0.50) * 1e3, _quantile(ordered, 0.99) * 1e3,
                   ordered[-1] * 1e3)


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) of a sorted sample."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class LoopLag:
    """How late the event loop wakes a task that sleeps `interval_s`, sampled all through a
    run: every read callback of the loop waited about as long.

        async with LoopLag() as lag:
            ...                     # the run
        lag.summary()               # LagSummary
    """

    def __init__(self, interval_s: float = LAG_SAMPLE_S):
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _sample(self) -> None:
        clock, interval = time.perf_counter, self.interval_s
        while True:
            before = clock()
            await asyncio.sleep(interval)
            self.samples.append(max(0.0, clock() - before - interval))

    def summary(self) -> LagSummary:
        return LagSummary.of(self.samples)


def dispatch_summary(records: Sequence[RequestRecord]) -> LagSummary:
    """The dispatch lag (harness.metrics.dispatch_lag) of these records, summarized."""
    return LagSummary.of([lag for r in records if (lag := dispatch_lag(r)) is not None])


def client_problems(loop_lag: LagSummary, dispatch_p99_ms: float | None,
                    limit_ms: float = LAG_LIMIT_MS) -> list[str]:
    """Why the client may not have kept up (empty when it did): a p99 lag over `limit_ms`."""
    problems = []
    if loop_lag.p99_ms > limit_ms:
        problems.append(f"event-loop lag p99 {loop_lag.p99_ms:.1f} ms > {limit_ms:g} ms")
    if dispatch_p99_ms is not None and dispatch_p99_ms > limit_ms:
        problems.append(f"dispatch lag p99 {dispatch_p99_ms:.1f} ms > {limit_ms:g} ms")
    return problems


def dispatch_at(items: Sequence[Any], when: Callable[[Any], float],
                make: Callable[[Any, float], Any]) -> asyncio.Future:
    """Start a task `make(item, t)` for each item at its absolute time t = when(item), from a
    timer callback rather than a sleeping coroutine: the task takes its first step (and
    sends) one turn of the loop sooner, i.e. without first waiting for the loop to read all
    that arrived meanwhile (at 512 streams the dispatch lag p99 went from 12 to 8 ms). The
    future's result is the list of tasks, once all are started."""
    loop = asyncio.get_running_loop()
    pending = sorted(items, key=when, reverse=True)
    tasks: list[asyncio.Task] = []
    started = loop.create_future()

    def fire() -> None:
        now = time.perf_counter()
        while pending and when(pending[-1]) <= now:
            item = pending.pop()
            tasks.append(loop.create_task(make(item, when(item))))
        if not pending:
            started.set_result(tasks)
            return
        # The delay is reckoned on perf_counter; uvloop's timers count it in whole
        # milliseconds, so one may wake early: it then just fires again.
        loop.call_later(when(pending[-1]) - now, fire)

    fire()
    return started
