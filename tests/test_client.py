"""The streaming client: records, token counts per chunk, and every failure it must catch."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from harness.engines.base import ServerHandle
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.load.client import completion_payload, stream_completion
from harness.metrics import tpot

from .sse_peer import running_peer


def fetch(scenario: str, timeout_s: float = 5.0, extensions=VLLM_EXTENSIONS):
    async def go():
        async with running_peer() as (url, payloads):
            server = ServerHandle(url, scenario, frozenset(extensions))
            async with aiohttp.ClientSession() as session:
                record = await stream_completion(session, server, 0, [5, 6, 7, 8], 6, timeout_s)
            return record, payloads
    return asyncio.run(go())


def test_multi_token_chunks_are_counted_by_usage_growth():
    record, payloads = fetch("multi-token")
    assert record.ok, record.error
    assert record.chunk_tokens == [1, 3, 2]
    assert record.completion_tokens == 6 and record.prompt_tokens == 4
    assert record.finish_reason == "length"
    assert record.send_time <= record.first_token_time <= record.last_token_time
    assert record.last_token_time <= record.done_time
    assert tpot(record) == pytest.approx((record.last_token_time - record.first_token_time) / 5)
    sent = payloads[0]
    assert sent["prompt"] == [5, 6, 7, 8] and sent["max_tokens"] == 6 and sent["stream"]
    assert sent["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}


def test_error_inside_a_200_stream_is_an_error():
    record, _ = fetch("error-mid-stream")
    assert not record.ok
    assert "error in stream" in record.error and "engine died" in record.error


def test_http_error_keeps_status_and_body():
    record, _ = fetch("http-400")
    assert record.error.startswith("HTTP 400")
    assert "max_tokens too large" in record.error


def test_a_hanging_stream_times_out():
    record, _ = fetch("hang", timeout_s=0.5)
    assert record.error == "timeout after 0.5 s"
    assert record.done_time - record.send_time < 2.0


def test_a_stream_without_tokens_is_an_error():
    record, _ = fetch("no-tokens")
    assert record.error == "stream ended without a token"


def test_connection_refused_is_an_error():
    async def go():
        server = ServerHandle("http://127.0.0.1:9", "x", VLLM_EXTENSIONS)
        async with aiohttp.ClientSession() as session:
            return await stream_completion(session, server, 0, [1], 1, 5.0)
    assert "ClientConnector" in asyncio.run(go()).error


def test_extensions_are_sent_only_to_engines_that_accept_them():
    plain = completion_payload(ServerHandle("u", "m", frozenset()), [1, 2], 4)
    assert "ignore_eos" not in plain and "min_tokens" not in plain
    assert plain["stream_options"] == {"include_usage": True}
    vllm = completion_payload(ServerHandle("u", "m", VLLM_EXTENSIONS), [1, 2], 4)
    assert vllm["ignore_eos"] is True and vllm["min_tokens"] == 4


def test_without_continuous_usage_each_chunk_counts_one_token():
    record, payloads = fetch("multi-token", extensions=set())
    assert record.chunk_tokens == [1, 1, 1]
    assert record.completion_tokens == 6  # the final usage chunk still rules the count
    assert "continuous_usage_stats" not in payloads[0]["stream_options"]
