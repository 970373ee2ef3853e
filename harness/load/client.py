"""Async streaming client for /v1/completions: one RequestRecord per request.

Timestamps are time.perf_counter() seconds, taken when the bytes that complete a line arrive,
before any parsing. A chunk is token-bearing when it has choices and (where the engine streams
usage on every chunk) its cumulative completion_tokens grew; the growth is the chunk's token
count.

`stream_completion` sends on a StreamSession (harness/load/session.py): each connection is an
asyncio protocol that parses HTTP (httptools) and the events (StreamEvents, harness/load/sse.py)
as the bytes arrive, in the event loop's read callback, with no task switch per chunk
(benchmarks/README.md measures it against vLLM's own benchmark client). `record_completion` is
all of it but the transport: the tests send the same requests over aiohttp through it
(tests/aiohttp_reference.py), so that a record means the same whichever carried it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from harness.contract.records import ErrorKind, RequestRecord
from harness.contract.server import CONTINUOUS_USAGE, INCLUDE_USAGE, ServerHandle
from harness.load.session import StreamSession
from harness.load.sse import ERROR_TEXT_LIMIT, StreamEvents, completion_payload, encode_json

SessionT = TypeVar("SessionT")


async def stream_completion(session: StreamSession, server: ServerHandle, index: int,
                            prompt: list[int] | str, max_tokens: int, timeout_s: float,
                            input_tokens: int | None = None) -> RequestRecord:
    """Send one streaming completion and record it. `input_tokens` is the intended prompt
    length (a text prompt's length in tokens is not len(prompt))."""
    return await record_completion(_post_stream, session, server, index, prompt, max_tokens,
                                   timeout_s, input_tokens)


async def record_completion(
        post: Callable[[SessionT, ServerHandle, dict, StreamEvents], Awaitable[None]],
        session: SessionT, server: ServerHandle, index: int, prompt: list[int] | str,
        max_tokens: int, timeout_s: float, input_tokens: int | None = None,
        transport_errors: tuple[type[Exception], ...] = (OSError,)) -> RequestRecord:
    """Record the completion that `post(session, server, payload, events)` sends and feeds to
    `events`. Whatever goes wrong ends in record.error: the timeout, `transport_errors` (what
    the transport raises when a connection fails), a malformed stream, a stream without a
    token."""
    sent = input_tokens if input_tokens is not None else len(prompt)
    record = RequestRecord(index, sent, max_tokens, send_time=time.perf_counter())
    payload = completion_payload(server, prompt, max_tokens)
    events = StreamEvents(record, CONTINUOUS_USAGE in server.extensions)
    try:
        # asyncio.timeout, not wait_for: no task in between, so the request is written in
        # this very step of the loop, right after send_time was taken
        async with asyncio.timeout(timeout_s):
            await post(session, server, payload, events)
    except TimeoutError:
        record.fail("timeout", f"timeout after {timeout_s:g} s")
    except transport_errors as err:
        record.fail(transport_kind(err), f"{type(err).__name__}: {err}")
    except (ValueError, KeyError, TypeError) as err:
        record.fail("protocol", f"malformed stream: {err}")
    record.done_time = time.perf_counter()
    if record.error is None:
        check_stream(record, events, INCLUDE_USAGE in server.extensions)
    if record.error is not None:
        record.error = server.redact(record.error)[:ERROR_TEXT_LIMIT]
    return record


def transport_kind(err: Exception) -> ErrorKind:
    """`connect` when no connection was made, else `reset` (it broke during the request)."""
    if isinstance(err, ConnectionRefusedError | socket.gaierror) or \
            "Connector" in type(err).__name__:  # aiohttp's ClientConnectorError
        return "connect"
    return "reset"


def check_stream(record: RequestRecord, events: StreamEvents, usage_asked: bool) -> None:
    """A stream that ended normally still fails when it cannot be trusted: no token, no
    usage chunk though one was asked for, or usage that disagrees with the tokens that the
    stream's own per-chunk counts add up to."""
    if not record.chunk_times:
        record.fail("protocol", "stream ended without a token")
    elif usage_asked and record.completion_tokens is None:
        record.fail("protocol", "stream ended without its usage chunk")
    elif events.continuous and record.completion_tokens != sum(record.chunk_tokens):
        record.fail("protocol", f"usage says {record.completion_tokens} tokens but the "
                                f"stream carried {sum(record.chunk_tokens)}")


async def _post_stream(session: StreamSession, server: ServerHandle, payload: dict,
                       events: StreamEvents) -> None:
    await session.post_stream(server.base_url + "/v1/completions", encode_json(payload),
                              server.headers, events)
