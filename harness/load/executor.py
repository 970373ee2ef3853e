"""Runs one load point: its phases back to back on an absolute clock.

Open-loop phases send at the instants their schedule fixed up front (coordinated omission
cannot hide: every request keeps its intended send time); closed-loop phases keep a number of
requests in flight. Every arrival sends a chain (a request, or a conversation's turns), each
request retried per the retry policy; every attempt is a record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.config.load import RetryConfig
from harness.engines.base import ServerHandle
from harness.load.client import stream_completion
from harness.load.health import LagSummary, LoopLag, dispatch_at
from harness.load.schedule import arrival_offsets, phase_starts
from harness.load.session import StreamSession
from harness.load.workload import PlannedRequest, Workload
from harness.plan import PhaseSpec, Point
from harness.records import RequestRecord

START_LEAD_S = 0.05  # time to set every phase up before the first send


@dataclass
class PhaseWindow:
    name: str
    start: float
    end: float


@dataclass
class LoadResult:
    records: list[RequestRecord]
    start: float
    end: float
    phases: list[PhaseWindow] = field(default_factory=list)
    loop_lag: LagSummary = field(default_factory=LagSummary)  # how late the event loop ran


class PointRun:
    """State of one point in flight: the session, the next chain index, the records."""

    def __init__(self, server: ServerHandle, workload: Workload, session: StreamSession,
                 timeout_s: float, retry: RetryConfig,
                 on_record: Callable[[RequestRecord], None] | None):
        self.server, self.workload, self.session = server, workload, session
        self.timeout_s, self.retry, self.on_record = timeout_s, retry, on_record
        self.records: list[RequestRecord] = []
        self.next_chain = 0

    def claim(self) -> int:
        self.next_chain += 1
        return self.next_chain - 1

    async def chain(self, index: int, intended: float | None, phase: str) -> None:
        for planned in self.workload.chain(index):
            record = await self.send(index * self.workload.turns + planned.turn, planned,
                                     intended, phase)
            if not record.ok:
                return  # a conversation does not go on after a failed turn
            think = self.workload.config.conversation
            if think and think.think_time_s:
                await asyncio.sleep(think.think_time_s)
            intended = None if intended is None else time.perf_counter()

    async def send(self, index: int, planned: PlannedRequest, intended: float | None,
                   phase: str) -> RequestRecord:
        for attempt in range(1, self.retry.max_tries + 1):
            record = await stream_completion(self.session, self.server, index, planned.prompt,
                                             planned.max_tokens, self.timeout_s,
                                             planned.input_tokens)
            record.intended_time, record.phase, record.attempt = intended, phase, attempt
            self.records.append(record)
            if self.on_record is not None:
                self.on_record(record)
            if record.ok or not self.should_retry(record) or attempt == self.retry.max_tries:
                return record
            await asyncio.sleep(self.retry.backoff_s * 2 ** (attempt - 1))
        return record

    def should_retry(self, record: RequestRecord) -> bool:
        timed_out = (record.error or "").startswith("timeout")
        return self.retry.on_timeout if timed_out else self.retry.on_error

    async def open_phase(self, phase: PhaseSpec, start: float, rng: np.random.Generator
                         ) -> None:
        """Each arrival starts its chain at its scheduled instant (a timer callback, not a
        sleeping coroutine: see dispatch_at)."""
        offsets = [start + float(offset) for offset in arrival_offsets(phase, rng)]
        chains = await dispatch_at(offsets, lambda at: at,
                                   lambda at, _: self.chain(self.claim(), at, phase.name))
        await asyncio.gather(*chains)

    async def closed_phase(self, phase: PhaseSpec, start: float) -> None:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        deadline = start + phase.duration_s if phase.duration_s is not None else None
        budget = [phase.requests]

        def more() -> bool:
            if deadline is not None and time.perf_counter() >= deadline:
                return False
            if budget[0] is not None:
                if budget[0] <= 0:
                    return False
                budget[0] -= 1
            return True

        async def sender() -> None:
            while more():
                await self.chain(self.claim(), None, phase.name)

        senders = phase.concurrency if phase.requests is None else min(phase.concurrency,
                                                                       phase.requests)
        await asyncio.gather(*(sender() for _ in range(senders)))


async def run_point(server: ServerHandle, point: Point, workload: Workload, *, seed: int,
                    salt: int, timeout_s: float, retry: RetryConfig,
                    on_record: Callable[[RequestRecord], None] | None = None) -> LoadResult:
    """Run every phase of `point`; the window runs from the first send to the last reply."""
    async with StreamSession() as session, LoopLag() as lag:
        run = PointRun(server, workload, session, timeout_s, retry, on_record)
        t0 = time.perf_counter() + START_LEAD_S
        starts = [t0 + offset for offset in phase_starts(point.phases)]
        tasks = []
        for number, (phase, start) in enumerate(zip(point.phases, starts, strict=True)):
            if phase.open_loop:
                rng = np.random.default_rng([seed, salt, 1_000_003 + number])
                tasks.append(asyncio.create_task(run.open_phase(phase, start, rng)))
            else:
                tasks.append(asyncio.create_task(run.closed_phase(phase, start)))
        await asyncio.gather(*tasks)
        end = time.perf_counter()
    windows = [PhaseWindow(p.name, s, min(s + p.duration_s, end) if p.duration_s else end)
               for p, s in zip(point.phases, starts, strict=True)]
    run.records.sort(key=lambda r: (r.index, r.attempt))
    return LoadResult(run.records, t0, end, windows, lag.summary())
