"""Async streaming client for /v1/completions: one RequestRecord per request.

Timestamps are time.perf_counter() seconds, taken when a line arrives, before JSON parsing.
A chunk is token-bearing when it has choices and (where the engine streams usage on every
chunk) its cumulative completion_tokens grew; the growth is the chunk's token count.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

from harness.engines.base import (
    CONTINUOUS_USAGE,
    HF_GENERATION_CONFIG,
    IGNORE_EOS,
    INCLUDE_USAGE,
    MIN_TOKENS,
    ServerHandle,
)

ERROR_TEXT_LIMIT = 300


@dataclass
class RequestRecord:
    index: int
    input_tokens: int  # what was sent
    max_tokens: int  # what was asked for
    send_time: float
    done_time: float = 0.0  # stream closed (after the usage chunk and [DONE])
    chunk_times: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    prompt_tokens: int | None = None  # server usage
    completion_tokens: int | None = None  # server usage
    finish_reason: str | None = None
    error: str | None = None
    intended_time: float | None = None  # open loop: when the schedule meant it to be sent
    phase: str | None = None  # the traffic phase it belongs to
    attempt: int = 1  # 2+ for retries of the same request

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def first_token_time(self) -> float | None:
        return self.chunk_times[0] if self.chunk_times else None

    @property
    def last_token_time(self) -> float | None:
        return self.chunk_times[-1] if self.chunk_times else None


def completion_payload(server: ServerHandle, prompt: list[int] | str, max_tokens: int) -> dict:
    """The request body, with only the extensions this server accepts."""
    ext = server.extensions
    payload: dict = {"model": server.model, "prompt": prompt, "max_tokens": max_tokens,
                     "stream": True}
    if INCLUDE_USAGE in ext:
        payload["stream_options"] = {"include_usage": True}
        if CONTINUOUS_USAGE in ext:
            payload["stream_options"]["continuous_usage_stats"] = True
    if IGNORE_EOS in ext:
        payload["ignore_eos"] = True
    if MIN_TOKENS in ext:
        payload["min_tokens"] = max_tokens
    if HF_GENERATION_CONFIG in ext:
        payload["generation_config"] = json.dumps(
            {"max_new_tokens": max_tokens, "min_new_tokens": max_tokens})
    return payload


async def stream_completion(session: aiohttp.ClientSession, server: ServerHandle, index: int,
                            prompt: list[int] | str, max_tokens: int, timeout_s: float,
                            input_tokens: int | None = None) -> RequestRecord:
    """Send one streaming completion and record it. `input_tokens` is the intended prompt
    length (a text prompt's length in tokens is not len(prompt))."""
    sent = input_tokens if input_tokens is not None else len(prompt)
    record = RequestRecord(index, sent, max_tokens, send_time=time.perf_counter())
    try:
        await asyncio.wait_for(_stream(session, server, prompt, max_tokens, record), timeout_s)
    except TimeoutError:
        record.error = f"timeout after {timeout_s:g} s"
    except aiohttp.ClientError as err:
        record.error = f"{type(err).__name__}: {err}"
    except (ValueError, KeyError, TypeError) as err:
        record.error = f"malformed stream: {err}"
    record.done_time = time.perf_counter()
    if record.error is None and not record.chunk_times:
        record.error = "stream ended without a token"
    if record.error is not None:
        record.error = server.redact(record.error)[:ERROR_TEXT_LIMIT]
    return record


async def _stream(session: aiohttp.ClientSession, server: ServerHandle, prompt: list[int] | str,
                  max_tokens: int, record: RequestRecord) -> None:
    payload = completion_payload(server, prompt, max_tokens)
    continuous = CONTINUOUS_USAGE in server.extensions
    seen = 0
    async with session.post(server.base_url + "/v1/completions", json=payload,
                            headers=server.headers) as response:
        if response.status != 200:
            body = (await response.text())[:ERROR_TEXT_LIMIT]
            record.error = f"HTTP {response.status}: {body}"
            return
        async for raw in response.content:
            now = time.perf_counter()
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue  # blank separators and ':' keep-alive comments
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            message = json.loads(data)
            if "error" in message:  # vLLM reports errors inside a 200 stream
                record.error = f"error in stream: {json.dumps(message['error'])}"
                return
            usage = message.get("usage")
            choices = message.get("choices")
            if choices:
                if continuous and usage:
                    tokens = usage["completion_tokens"] - seen
                    seen = usage["completion_tokens"]
                else:  # one token per chunk, except a closing chunk that only brings usage
                    tokens = 0 if usage and not choices[0].get("text") else 1
                if tokens > 0:
                    record.chunk_times.append(now)
                    record.chunk_tokens.append(tokens)
                record.finish_reason = choices[0].get("finish_reason") or record.finish_reason
            if usage and (not choices or not continuous):  # the final count
                record.prompt_tokens = usage.get("prompt_tokens")
                record.completion_tokens = usage.get("completion_tokens")
