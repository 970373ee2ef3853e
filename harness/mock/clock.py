"""One worker's step clock: like a vLLM engine, every step writes the next chunk of every
running stream, on an absolute perf_counter grid, and stamps each write."""

from __future__ import annotations

import asyncio
import os
import time
from array import array
from collections import deque
from typing import Protocol

from harness.mock.token_schedule import Schedule

KEPT = 200_000  # finished streams and steps remembered until their stamps are fetched


class Connection(Protocol):
    """What a stream writes to (harness.mock.http.Connection)."""

    closed: bool
    transport: asyncio.Transport

    def stream_done(self) -> None: ...


class Stream:
    """One request being streamed: its pre-built chunks and the write stamp of each."""

    __slots__ = ("conn", "chunks", "key", "sent", "stamps")

    def __init__(self, conn: Connection, chunks: tuple[bytes, ...], key: int):
        self.conn = conn
        self.chunks = chunks
        self.key = key
        self.sent = 0
        self.stamps = array("d")


class StepClock:
    """The worker's step clock: each step writes the next chunk of every running stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop, schedule: Schedule):
        self.loop = loop
        self.schedule = schedule
        self.running: list[Stream] = []
        self.next_step: float | None = None  # perf_counter time the next step is due
        # Bounded, for a server left running with nobody fetching: the newest are kept.
        self.step_lag: deque[float] = deque(maxlen=KEPT)  # how late each step started, s
        self.finished: deque[Stream] = deque(maxlen=KEPT)  # their stamps not yet fetched
        self.chunks_written = 0

    def admit(self, stream: Stream) -> None:
        self.running.append(stream)
        if self.next_step is None:  # idle: the first token comes one step from now
            self.next_step = time.perf_counter() + self.schedule.interval_s
            self._arm()

    def _arm(self) -> None:
        delay = self.next_step - time.perf_counter()
        if delay <= 0:
            self.loop.call_soon(self._step)
        else:  # the delay is reckoned on perf_counter; the loop's clock only counts it down
            self.loop.call_later(delay, self._step)

    def _step(self) -> None:
        now = time.perf_counter()
        if now < self.next_step:  # a timer that fired early (uvloop counts whole ms): never
            self._arm()  # write ahead of the schedule
            return
        self.step_lag.append(now - self.next_step)
        perf_counter = time.perf_counter
        still = []
        for stream in self.running:
            if not stream.conn.closed:
                # Stamped just before the write: on loopback the bytes can be read the
                # moment write() hands them to the kernel, before it returns.
                stream.stamps.append(perf_counter())
                stream.conn.transport.write(stream.chunks[stream.sent])
                stream.sent += 1
                if stream.sent < len(stream.chunks):
                    still.append(stream)
                    continue
                stream.conn.stream_done()
            self.finished.append(stream)
        self.chunks_written += len(self.running)
        self.running = still
        if still:
            # Steps stay on the absolute grid; a late step is followed at once by the next.
            self.next_step += self.schedule.interval_s
            self._arm()
        else:
            self.next_step = None

    def take_stamps(self) -> dict:
        stamps = [[stream.key, stream.stamps.tolist()] for stream in self.finished]
        lags = sorted(self.step_lag)
        report = {"pid": os.getpid(), "requests": stamps, "steps": len(lags),
                  "step_lag_p50_s": lags[len(lags) // 2] if lags else 0.0,
                  "step_lag_p99_s": lags[int(len(lags) * 0.99)] if lags else 0.0,
                  "step_lag_max_s": lags[-1] if lags else 0.0,
                  "chunks_written": self.chunks_written}
        self.finished.clear()
        self.step_lag.clear()
        self.chunks_written = 0
        return report
