"""Closed-loop load: a fixed number of requests in flight, each sender waits for its reply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from harness.engines.base import ServerHandle
from harness.load.client import stream_completion
from harness.load.prompts import PromptFactory
from harness.load.session import StreamSession
from harness.records import RequestRecord


async def run_closed_loop(server: ServerHandle, prompts: PromptFactory, output_tokens: int,
                          concurrency: int, *, requests: int | None = None,
                          duration_s: float | None = None, timeout_s: float = 600.0,
                          on_record: Callable[[RequestRecord], None] | None = None,
                          ) -> tuple[list[RequestRecord], float, float]:
    """Send `requests` requests (or keep sending for `duration_s`) with `concurrency` in flight.

    Returns the records and the window: from just before the first send to the last reply.
    """
    if (requests is None) == (duration_s is None):
        raise ValueError("give exactly one of requests and duration_s")
    records: list[RequestRecord] = []
    next_index = 0
    async with StreamSession() as session:  # one keep-alive connection per sender
        start = time.perf_counter()
        deadline = start + duration_s if duration_s is not None else None

        def claim() -> int | None:
            nonlocal next_index
            if requests is not None and next_index >= requests:
                return None
            if deadline is not None and time.perf_counter() >= deadline:
                return None
            next_index += 1
            return next_index - 1

        async def sender() -> None:
            while (index := claim()) is not None:
                record = await stream_completion(session, server, index, prompts.prompt(index),
                                                 output_tokens, timeout_s, prompts.input_tokens)
                records.append(record)
                if on_record is not None:
                    on_record(record)

        senders = concurrency if requests is None else min(concurrency, requests)
        await asyncio.gather(*(sender() for _ in range(senders)))
        end = time.perf_counter()
    records.sort(key=lambda r: r.index)
    return records, start, end
