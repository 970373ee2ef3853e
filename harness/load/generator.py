"""Runs one load point: its phases back to back on an absolute clock. The one load driver:
`harness run`, the client self-test and the client benchmark all send through run_point.

Open-loop phases send at the instants their schedule fixed up front, drawn or given as
explicit offsets (coordinated omission cannot hide: every request keeps its intended send
time); closed-loop phases keep a number of requests in flight. Every arrival sends a chain (a
request, or a conversation's turns) from a RequestSource, each request retried per the retry
policy; every attempt is a record. A phase that replays a trace (PhaseSpec.trace) takes its
chains from the trace's own source: its k-th arrival sends the trace's k-th request. A Shard
runs one process's share of a point that several client processes send together
(harness/load/processes.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from harness.config.load import RetryConfig
from harness.contract.plan import PhaseSpec, Point
from harness.contract.records import RequestRecord
from harness.contract.server import ServerHandle
from harness.load.client import stream_completion
from harness.load.health import LagSummary, LoopLag, dispatch_at
from harness.load.schedule import arrival_offsets, phase_starts
from harness.load.session import StreamSession
from harness.load.workload import PlannedRequest

START_LEAD_S = 0.05  # time to set every phase up before the first send
PREBUILT_CHAINS = 10_000  # chains built before a point starts; later ones when they are sent
CLOSED_CHAINS_PER_SENDER = 8  # a timed closed phase's chains are unknown: build this many each


class RequestSource(Protocol):
    """What a point sends: chain `index` is the requests of one arrival, sent in order
    (harness.load.workload.Workload is the one `harness run` uses)."""

    @property
    def turns(self) -> int: ...

    @property
    def think_time_s(self) -> float: ...

    def chain(self, index: int) -> list[PlannedRequest]: ...


@dataclass(frozen=True)
class Shard:
    """Process `number` of `of` that send one point together: it takes every `of`-th arrival
    of an open phase and its share of a closed phase's senders and requests; its chain
    indices are local * of + number, so every process's requests differ."""

    number: int = 0
    of: int = 1

    def share(self, total: int) -> int:
        return total // self.of + (self.number < total % self.of)


def soon() -> float:
    return time.perf_counter() + START_LEAD_S


class Prebuilt:
    """A RequestSource whose first `count` chains are built now, before the point's clock and
    energy window open: turning ids into text (0.5 ms at 128 tokens, several ms at a few
    hundred on this project's CPU VM) then never delays a send. Chains are pure functions of
    their index, so building them early changes nothing that is sent."""

    def __init__(self, source: RequestSource, count: int):
        self.source = source
        self.turns, self.think_time_s = source.turns, source.think_time_s
        self.built = [source.chain(index) for index in range(min(count, PREBUILT_CHAINS))]

    def chain(self, index: int) -> list[PlannedRequest]:
        return self.built[index] if index < len(self.built) else self.source.chain(index)


def chains_needed(point: Point, seed: int, salt: int, *, trace: bool = False) -> int:
    """How many chains run_point will claim for `point` in one process from the workload (or,
    with `trace`, from the trace): exact for open-loop phases (their schedule is drawn from
    the same generators, or given) and closed phases of a request count; an estimate for
    closed phases of a duration."""
    total = 0
    for number, phase in enumerate(point.phases):
        if phase.trace != trace:
            continue
        if phase.open_loop:
            total += len(arrival_offsets(phase, _schedule_rng(seed, salt, number)))
        elif phase.requests is not None:
            total += phase.requests
        else:
            total += phase.concurrency * CLOSED_CHAINS_PER_SENDER
    return total


def _schedule_rng(seed: int, salt: int, phase_number: int) -> np.random.Generator:
    return np.random.default_rng([seed, salt, 1_000_003 + phase_number])


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
    """State of one point in flight: the session, the chain indices claimed, the records.

    A chain has two indices: its number in the point (claim(), shared by every phase, so the
    records' indices are unique) and its number in its source: the workload's chains are
    numbered across the point's workload phases; a trace phase's arrival k takes the trace's
    chain k (after the chains of earlier trace phases, so a second replay's prompts differ)."""

    def __init__(self, server: ServerHandle, requests: RequestSource, session: StreamSession,
                 timeout_s: float, retry: RetryConfig,
                 on_record: Callable[[RequestRecord], None] | None, shard: Shard,
                 trace: RequestSource | None = None, keep_records: bool = True):
        self.server, self.requests, self.session = server, requests, session
        self.trace = trace
        self.timeout_s, self.retry, self.on_record = timeout_s, retry, on_record
        self.shard = shard
        self.turns = max(requests.turns, trace.turns if trace else 1)  # per chain index
        self.records: list[RequestRecord] = []
        self.keep_records = keep_records
        self.next_chain = 0
        self.next_workload_chain = 0

    def claim(self) -> int:
        self.next_chain += 1
        return (self.next_chain - 1) * self.shard.of + self.shard.number

    def workload_chain(self) -> int:
        self.next_workload_chain += 1
        return (self.next_workload_chain - 1) * self.shard.of + self.shard.number

    async def chain(self, source: RequestSource, local: int, intended: float | None,
                    phase: str) -> None:
        """Send chain `local` of `source` as the point's next chain."""
        index = self.claim()
        for planned in source.chain(local):
            record = await self.send(index * self.turns + planned.turn, planned,
                                     intended, phase)
            if not record.ok:
                return  # a conversation does not go on after a failed turn
            if source.think_time_s:
                await asyncio.sleep(source.think_time_s)
            intended = None if intended is None else time.perf_counter()

    async def send(self, index: int, planned: PlannedRequest, intended: float | None,
                   phase: str) -> RequestRecord:
        for attempt in range(1, self.retry.max_tries + 1):
            record = await stream_completion(self.session, self.server, index, planned.prompt,
                                             planned.max_tokens, self.timeout_s,
                                             planned.input_tokens)
            record.intended_time, record.phase, record.attempt = intended, phase, attempt
            if self.keep_records:
                self.records.append(record)
            if self.on_record is not None:
                self.on_record(record)
            if record.ok or not self.should_retry(record) or attempt == self.retry.max_tries:
                return record
            await asyncio.sleep(self.retry.backoff_s * 2 ** (attempt - 1))
        return record

    def should_retry(self, record: RequestRecord) -> bool:
        return self.retry.on_timeout if record.error_kind == "timeout" else self.retry.on_error

    async def open_phase(self, phase: PhaseSpec, start: float, rng: np.random.Generator,
                         trace_base: int = 0) -> None:
        """Each arrival starts its chain at its scheduled instant (a timer callback, not a
        sleeping coroutine: see dispatch_at). A trace phase's arrival k (of the whole phase)
        sends the trace's chain trace_base + k."""
        offsets = np.asarray(arrival_offsets(phase, rng), dtype=float)
        mine = np.arange(offsets.size)[self.shard.number::self.shard.of]  # arrival numbers
        times = start + offsets[mine]

        def send(k: int, at: float):
            if phase.trace:
                return self.chain(self.trace, trace_base + int(mine[k]), at, phase.name)
            return self.chain(self.requests, self.workload_chain(), at, phase.name)

        await dispatch_at(times, send)

    async def closed_phase(self, phase: PhaseSpec, start: float) -> None:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        deadline = start + phase.duration_s if phase.duration_s is not None else None
        budget = [None if phase.requests is None else self.shard.share(phase.requests)]

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
                await self.chain(self.requests, self.workload_chain(), None, phase.name)

        senders = self.shard.share(phase.concurrency)
        if budget[0] is not None:
            senders = min(senders, budget[0])
        await asyncio.gather(*(sender() for _ in range(senders)))


async def run_point(server: ServerHandle, point: Point, requests: RequestSource, *,
                    seed: int, salt: int, timeout_s: float, retry: RetryConfig,
                    on_record: Callable[[RequestRecord], None] | None = None,
                    shard: Shard = Shard(), connections: int = 0,
                    start: Callable[[], float] = soon,
                    trace: RequestSource | None = None,
                    keep_records: bool = True) -> LoadResult:
    """Run every phase of `point`; the window runs from the first send to the last reply.
    Phases that replay a trace send from `trace`, the others from `requests`.

    Every finished attempt goes to `on_record`; without `keep_records` that is all (the
    result's records are then empty: a long point's memory does not grow with its length,
    harness/store/spool.py).

    `connections` are opened before the start, which `start()` gives (a perf_counter time;
    processes sending together agree on it)."""
    if point.replays_trace and trace is None:
        raise ValueError(f"point {point.id} replays a trace: give its trace requests")
    async with StreamSession() as session, LoopLag() as lag:
        run = PointRun(server, requests, session, timeout_s, retry, on_record, shard, trace,
                       keep_records)
        await session.preconnect(server.base_url, connections)
        t0 = start()
        starts = [t0 + offset for offset in phase_starts(point.phases)]
        tasks, trace_base = [], 0
        for number, (phase, start) in enumerate(zip(point.phases, starts, strict=True)):
            if phase.open_loop:
                rng = _schedule_rng(seed, salt, number)
                tasks.append(asyncio.create_task(run.open_phase(phase, start, rng, trace_base)))
                trace_base += len(phase.offsets) if phase.trace else 0
            else:
                tasks.append(asyncio.create_task(run.closed_phase(phase, start)))
        await asyncio.gather(*tasks)
        end = time.perf_counter()
    windows = [PhaseWindow(p.name, s, min(s + p.duration_s, end) if p.duration_s else end)
               for p, s in zip(point.phases, starts, strict=True)]
    run.records.sort(key=lambda r: (r.index, r.attempt))
    return LoadResult(run.records, t0, end, windows, lag.summary())
