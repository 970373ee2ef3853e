"""stream_completion over aiohttp: an independent transport to check StreamSession against.

`stream_completion_aiohttp` sends the request with an aiohttp ClientSession and fills the
record through the same record_completion as stream_completion, with the same parser
(StreamEvents), timeout and error handling: the two differ only in how the bytes travel, so
records that differ point at StreamSession.
"""

from __future__ import annotations

import time

import aiohttp

from harness.contract.records import RequestRecord
from harness.contract.server import ServerHandle
from harness.load.client import record_completion
from harness.load.sse import ERROR_TEXT_LIMIT, StreamEvents


async def stream_completion_aiohttp(session: aiohttp.ClientSession, server: ServerHandle,
                                    index: int, prompt: list[int] | str, max_tokens: int,
                                    timeout_s: float, input_tokens: int | None = None
                                    ) -> RequestRecord:
    """stream_completion with an aiohttp ClientSession for the transport."""
    return await record_completion(_post, session, server, index, prompt, max_tokens,
                                   timeout_s, input_tokens,
                                   transport_errors=(aiohttp.ClientError, OSError))


async def _post(session: aiohttp.ClientSession, server: ServerHandle, payload: dict,
                events: StreamEvents) -> None:
    async with session.post(server.base_url + "/v1/completions", json=payload,
                            headers=server.headers) as response:
        if response.status != 200:
            body = (await response.text())[:ERROR_TEXT_LIMIT]
            events.record.fail("http", f"HTTP {response.status}: {body}")
            events.record.http_status = response.status
            return
        content = response.content
        while data := await content.readany():  # all that has arrived, not line by line
            if events.feed(data, time.perf_counter()):
                return
        events.end()
