"""A hung server, told apart from a slow one: while a point runs, its /health is asked once a
second; when nothing at all has answered (any HTTP status counts as an answer) for longer than
a request may take, the server is taken as hung and the point is stopped."""

from __future__ import annotations

import asyncio
import time

import aiohttp

POLL_S = 1.0


class ServerHung(Exception):
    """Nothing answered for longer than `limit_s`: the message says for how long."""


async def watch(session: aiohttp.ClientSession, base_url: str, limit_s: float,
                headers: dict[str, str] | None = None, poll_s: float = POLL_S) -> None:
    """Return never; raise ServerHung once `base_url` has not answered for `limit_s`."""
    answered = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=max(poll_s, 1.0))
    while True:
        try:
            async with session.get(base_url + "/health", headers=headers,
                                   timeout=timeout) as response:
                await response.read()
            answered = time.perf_counter()
        except (TimeoutError, aiohttp.ClientError, OSError):
            silent = time.perf_counter() - answered
            if silent > limit_s:
                raise ServerHung(f"no answer from the server for {silent:.0f} s (longer than "
                                 f"request_timeout_s {limit_s:g} s): it is hung") from None
        await asyncio.sleep(poll_s)


async def unless_hung(work: asyncio.Future, session: aiohttp.ClientSession, base_url: str,
                      limit_s: float, headers: dict[str, str] | None = None):
    """`work`'s result, or ServerHung (with `work` cancelled) once the server hangs."""
    watcher = asyncio.ensure_future(watch(session, base_url, limit_s, headers))
    work = asyncio.ensure_future(work)
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            watcher.result()  # raises ServerHung
        return work.result()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
