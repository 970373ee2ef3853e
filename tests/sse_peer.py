"""A small OpenAI-style streaming peer for client edge cases vLLM cannot be made to produce
on demand (an error inside a 200 stream, a stream that hangs, multi-token chunks).
The end-to-end behaviour is tested against real vLLM elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

PAYLOADS = web.AppKey("payloads", list)
SEEN = web.AppKey("seen", set)


def _chunk(completion_tokens: int, finish: str | None = None, choices: bool = True) -> bytes:
    message = {"object": "text_completion",
               "choices": [{"index": 0, "text": "x", "finish_reason": finish}] if choices else [],
               "usage": {"prompt_tokens": 4, "completion_tokens": completion_tokens,
                         "total_tokens": 4 + completion_tokens}}
    return b"data: " + json.dumps(message).encode() + b"\n\n"


async def completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    request.app[PAYLOADS].append(body)
    scenario = body["model"]
    if scenario == "http-400":
        return web.json_response({"error": {"message": "max_tokens too large"}}, status=400)
    if scenario == "fail-first":  # every prompt fails once, then succeeds
        key = str(body["prompt"])
        if key not in request.app[SEEN]:
            request.app[SEEN].add(key)
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        scenario = "multi-token"
    if scenario == "echo-auth":  # a server that (badly) echoes the credentials it refused
        return web.json_response({"error": f"bad key {request.headers['Authorization']}"},
                                 status=401)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    if scenario == "multi-token":  # chunks of 1, 3 and 2 tokens, keep-alive comment between
        for total in (1, 4):
            await response.write(_chunk(total))
        await response.write(b": keep-alive\n\n")
        await response.write(_chunk(6, "length"))
        await response.write(_chunk(6, choices=False))
    elif scenario == "error-mid-stream":
        await response.write(_chunk(1))
        await response.write(b'data: {"error": {"message": "engine died", "code": 500}}\n\n')
    elif scenario == "hang":
        await response.write(_chunk(1))
        await asyncio.sleep(3600)
    elif scenario == "usage-on-finish-chunk":
        for text in ("a", "b"):
            await response.write(b'data: {"choices": [{"index": 0, "text": "' + text.encode()
                                 + b'"}]}\n\n')
        await response.write(b'data: {"choices": [{"index": 0, "text": "", "finish_reason": '
                             b'"length"}], "usage": {"prompt_tokens": 4, "completion_tokens": 3,'
                             b' "total_tokens": 7}}\n\n')
        return response  # no [DONE]
    elif scenario == "text-held-back":  # every token's text withheld until the end
        await response.write(b'data: {"choices": [{"index": 0, "text": "", "finish_reason": '
                             b'"length"}], "usage": {"prompt_tokens": 4, "completion_tokens": 5,'
                             b' "total_tokens": 9}}\n\n')
        return response
    elif scenario == "no-tokens":
        await response.write(_chunk(0, choices=False))
    await response.write(b"data: [DONE]\n\n")
    return response


@contextlib.asynccontextmanager
async def running_peer():
    app = web.Application()
    app[PAYLOADS] = []
    app[SEEN] = set()
    app.router.add_post("/v1/completions", completions)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app[PAYLOADS]
    finally:
        await runner.cleanup()
