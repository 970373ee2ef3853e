"""Did the client keep up? How late the event loop ran (LoopLag), the verdict on that and on
the dispatch lag (client_problems; the dispatch lag itself is defined in
harness.metrics.point_metrics); and dispatch_at, which starts each scheduled request from a
timer callback so it leaves on time."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

LAG_SAMPLE_S = 0.005
LAG_STEP_S = 1e-5  # the loop lag is counted to 10 microseconds
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
        self.lags = LagTally()
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
            self.lags.add(max(0.0, clock() - before - interval))

    def summary(self) -> LagSummary:
        return self.lags.summary()


class LagTally:
    """Lags counted in steps of LAG_STEP_S, not kept one by one (the loop is sampled 200
    times a second: a list would grow a long point's memory by 23 MB an hour). Its summary's
    quantiles are exact to LAG_STEP_S, its maximum exact."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.max_s = 0.0

    def add(self, lag_s: float) -> None:
        self.counts[round(lag_s / LAG_STEP_S)] += 1
        self.max_s = max(self.max_s, lag_s)

    def summary(self) -> LagSummary:
        if not self.counts:
            return LagSummary()
        ranked = _Ranked(self.counts)
        return LagSummary(len(ranked), _quantile(ranked, 0.50) * 1e3,
                          _quantile(ranked, 0.99) * 1e3, self.max_s * 1e3)


class _Ranked:
    """Counted steps as the sorted sequence of lags they stand for (what _quantile reads)."""

    def __init__(self, counts: Counter[int]):
        self.steps = sorted(counts)
        self.ends = np.cumsum([counts[step] for step in self.steps])  # rank after each step

    def __len__(self) -> int:
        return int(self.ends[-1])

    def __getitem__(self, rank: int) -> float:
        return self.steps[int(np.searchsorted(self.ends, rank, side="right"))] * LAG_STEP_S


def client_problems(loop_lag: LagSummary, dispatch_p99_ms: float | None,
                    limit_ms: float = LAG_LIMIT_MS) -> list[str]:
    """Why the client may not have kept up (empty when it did): a p99 lag over `limit_ms`."""
    problems = []
    if loop_lag.p99_ms > limit_ms:
        problems.append(f"event-loop lag p99 {loop_lag.p99_ms:.1f} ms > {limit_ms:g} ms")
    if dispatch_p99_ms is not None and dispatch_p99_ms > limit_ms:
        problems.append(f"dispatch lag p99 {dispatch_p99_ms:.1f} ms > {limit_ms:g} ms")
    return problems


async def dispatch_at(times: np.ndarray, make: Callable[[int, float], Awaitable[None]]
                      ) -> None:
    """Run `make(k, times[k])` for each k from the absolute time times[k] on (perf_counter),
    started from a timer callback rather than a sleeping coroutine: the task takes its first
    step (and sends) one turn of the loop sooner, i.e. without first waiting for the loop to
    read all that arrived meanwhile (at 512 streams the dispatch lag p99 went from 12 to
    8 ms). Ends when every task has ended, raising the first error one raised. A finished
    task is let go at once: a long point holds only its tasks in flight."""
    loop = asyncio.get_running_loop()
    order = np.argsort(times, kind="stable")
    running: set[asyncio.Task] = set()
    finished = loop.create_future()
    state = {"next": 0}

    def over(task: asyncio.Task) -> None:
        running.discard(task)
        if finished.done():
            return
        if not task.cancelled() and task.exception() is not None:
            finished.set_exception(task.exception())
        elif not running and state["next"] == order.size:
            finished.set_result(None)

    def fire() -> None:
        if finished.done():
            return
        now = time.perf_counter()
        while state["next"] < order.size and times[order[state["next"]]] <= now:
            k = int(order[state["next"]])
            state["next"] += 1
            task = loop.create_task(make(k, float(times[k])))
            running.add(task)
            task.add_done_callback(over)
        if state["next"] == order.size:
            if not running:
                finished.set_result(None)
            return
        # The delay is reckoned on perf_counter; uvloop's timers count it in whole
        # milliseconds, so one may wake early: it then just fires again.
        loop.call_later(float(times[order[state["next"]]]) - now, fire)

    fire()
    try:
        await finished
    finally:
        for task in list(running):  # (cancelled, or another one failed)
            task.cancel()
