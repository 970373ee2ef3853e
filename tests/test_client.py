"""The streaming client: records, token counts per chunk, and every failure it must catch."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from harness.contract.server import INCLUDE_USAGE, ServerHandle
from harness.engines.transformers import TRANSFORMERS_EXTENSIONS
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.load.client import stream_completion
from harness.load.session import StreamSession
from harness.load.sse import completion_payload
from harness.metrics.point_metrics import tpot

from .aiohttp_reference import stream_completion_aiohttp
from .requests_files import rows_of
from .sse_peer import running_peer


def fetch(scenario: str, timeout_s: float = 5.0, extensions=VLLM_EXTENSIONS):
    async def go():
        async with running_peer() as (url, payloads):
            server = ServerHandle(url, scenario, frozenset(extensions))
            async with StreamSession() as session:
                record = await stream_completion(session, server, 0, [5, 6, 7, 8], 6, timeout_s)
            return record, payloads
    return asyncio.run(go())


def test_multi_token_chunks_are_counted_by_usage_growth(tmp_path):
    record, payloads = fetch("multi-token")
    assert record.ok, record.error
    assert list(record.chunk_tokens) == [1, 3, 2]
    assert record.completion_tokens == 6 and record.prompt_tokens == 4
    assert record.finish_reason == "length"
    assert record.send_time <= record.first_token_time <= record.last_token_time
    assert record.last_token_time <= record.done_time
    streaming = record.last_token_time - record.first_token_time
    assert tpot(rows_of(tmp_path, [record]))[0] == pytest.approx(streaming / 5)
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
        async with StreamSession() as session:
            fast = await stream_completion(session, server, 0, [1], 1, 5.0)
        async with aiohttp.ClientSession() as session:  # aiohttp's error text, as before
            slow = await stream_completion_aiohttp(session, server, 0, [1], 1, 5.0)
        return fast, slow
    fast, slow = asyncio.run(go())
    assert fast.error.startswith("ConnectionRefusedError")
    assert "ClientConnector" in slow.error


def test_extensions_are_sent_only_to_engines_that_accept_them():
    plain = completion_payload(ServerHandle("u", "m", frozenset()), [1, 2], 4)
    assert set(plain) == {"model", "prompt", "max_tokens", "stream"}
    vllm = completion_payload(ServerHandle("u", "m", VLLM_EXTENSIONS), [1, 2], 4)
    assert vllm["ignore_eos"] is True and vllm["min_tokens"] == 4
    assert vllm["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    hf = completion_payload(ServerHandle("u", "m", TRANSFORMERS_EXTENSIONS), "some text", 4)
    assert "ignore_eos" not in hf and "stream_options" not in hf
    assert json.loads(hf["generation_config"]) == {"max_new_tokens": 4, "min_new_tokens": 4}


def test_without_continuous_usage_each_chunk_counts_one_token():
    record, payloads = fetch("multi-token", extensions={INCLUDE_USAGE})
    assert list(record.chunk_tokens) == [1, 1, 1]
    assert record.completion_tokens == 6  # the final usage chunk still rules the count
    assert payloads[0]["stream_options"] == {"include_usage": True}


def test_usage_on_the_closing_choices_chunk_is_not_a_token():
    """transformers serve sends usage with an empty-text finish chunk and no [DONE]."""
    record, _ = fetch("usage-on-finish-chunk", extensions=TRANSFORMERS_EXTENSIONS)
    assert record.ok, record.error
    assert list(record.chunk_tokens) == [1, 1]
    assert (record.prompt_tokens, record.completion_tokens) == (4, 3)
    assert record.finish_reason == "length"


def test_tokens_whose_text_was_held_back_arrive_with_the_usage_chunk():
    record, _ = fetch("text-held-back", extensions=TRANSFORMERS_EXTENSIONS)
    assert record.ok, record.error
    assert list(record.chunk_tokens) == [5] and record.completion_tokens == 5


def test_api_key_never_reaches_an_error_text():
    async def go():
        async with running_peer() as (url, _):
            server = ServerHandle(url, "echo-auth", VLLM_EXTENSIONS,
                                  headers={"Authorization": "Bearer sk-secret-123"},
                                  secret="sk-secret-123")
            async with StreamSession() as session:
                return await stream_completion(session, server, 0, [1], 1, 5.0)
    record = asyncio.run(go())
    assert record.error.startswith("HTTP 401") and "***" in record.error
    assert "sk-secret-123" not in record.error
