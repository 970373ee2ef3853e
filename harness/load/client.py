"""Async streaming client for /v1/completions: one RequestRecord per request.

Timestamps are time.perf_counter() seconds, taken when the bytes that complete a line arrive,
before any parsing. A chunk is token-bearing when it has choices and (where the engine streams
usage on every chunk) its cumulative completion_tokens grew; the growth is the chunk's token
count.

`stream_completion` takes either an aiohttp ClientSession or a StreamSession. Both feed the
same parser (StreamEvents), so a record means the same whichever carried it. StreamSession is
the fast one: each connection is an asyncio protocol that parses HTTP (httptools) and the
events as the bytes arrive, in the event loop's read callback, with no task switch per chunk
(benchmarks/README.md measures it against vLLM's own benchmark client).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from harness.engines.base import CONTINUOUS_USAGE, ServerHandle
from harness.load.session import StreamSession
from harness.load.sse import ERROR_TEXT_LIMIT, StreamEvents, completion_payload, encode_json
from harness.records import RequestRecord


async def stream_completion(session: aiohttp.ClientSession | StreamSession,
                            server: ServerHandle, index: int, prompt: list[int] | str,
                            max_tokens: int, timeout_s: float,
                            input_tokens: int | None = None) -> RequestRecord:
    """Send one streaming completion and record it. `input_tokens` is the intended prompt
    length (a text prompt's length in tokens is not len(prompt))."""
    sent = input_tokens if input_tokens is not None else len(prompt)
    record = RequestRecord(index, sent, max_tokens, send_time=time.perf_counter())
    payload = completion_payload(server, prompt, max_tokens)
    events = StreamEvents(record, CONTINUOUS_USAGE in server.extensions)
    stream = _stream_fast if isinstance(session, StreamSession) else _stream_aiohttp
    try:
        # asyncio.timeout, not wait_for: no task in between, so the request is written in
        # this very step of the loop, right after send_time was taken
        async with asyncio.timeout(timeout_s):
            await stream(session, server, payload, events)
    except TimeoutError:
        record.error = f"timeout after {timeout_s:g} s"
    except (aiohttp.ClientError, OSError) as err:
        record.error = f"{type(err).__name__}: {err}"
    except (ValueError, KeyError, TypeError) as err:
        record.error = f"malformed stream: {err}"
    record.done_time = time.perf_counter()
    if record.error is None and not record.chunk_times:
        record.error = "stream ended without a token"
    if record.error is not None:
        record.error = server.redact(record.error)[:ERROR_TEXT_LIMIT]
    return record


async def _stream_aiohttp(session: aiohttp.ClientSession, server: ServerHandle, payload: dict,
                          events: StreamEvents) -> None:
    async with session.post(server.base_url + "/v1/completions", json=payload,
                            headers=server.headers) as response:
        if response.status != 200:
            body = (await response.text())[:ERROR_TEXT_LIMIT]
            events.record.error = f"HTTP {response.status}: {body}"
            return
        content = response.content
        while data := await content.readany():  # all that has arrived, not line by line
            if events.feed(data, time.perf_counter()):
                return
        events.end()


async def _stream_fast(session: StreamSession, server: ServerHandle, payload: dict,
                       events: StreamEvents) -> None:
    await session.post_stream(server.base_url + "/v1/completions", encode_json(payload),
                              server.headers, events)
