"""The client and engine against one real vLLM server on the CPU."""

from __future__ import annotations

import asyncio

import pytest

from harness.engines import EngineError, VllmEngine
from harness.load.closed_loop import run_closed_loop
from harness.load.prompts import PromptFactory, allowed_token_ids
from harness.metrics import e2e, ttft
from harness.telemetry.server_metrics import (
    GENERATION_TOKENS,
    PROMPT_TOKENS,
    scrape_once,
)

from .conftest import TINY_ENV, TINY_OPTIONS, running, server_pids

pytestmark = pytest.mark.vllm


async def counters_after(url: str, before: dict, expected: tuple[int, int]) -> tuple[int, int]:
    """This test's own read of vLLM's counters (independent of the harness's check)."""
    deltas = (0, 0)
    for _ in range(30):
        after = await scrape_once(url)
        deltas = (int(after[PROMPT_TOKENS] - before[PROMPT_TOKENS]),
                  int(after[GENERATION_TOKENS] - before[GENERATION_TOKENS]))
        if deltas == expected:
            break
        await asyncio.sleep(0.1)
    return deltas


def test_closed_loop_counts_equal_vllm_counters(vllm_server, tiny_model):
    engine, server = vllm_server
    prompts = PromptFactory(allowed_token_ids(str(tiny_model)), 40, seed=0, salt=11)

    async def go():
        before = await scrape_once(server.metrics_url)
        records, start, end = await run_closed_loop(server, prompts, 7, 3, requests=9,
                                                    timeout_s=60)
        client = (sum(r.prompt_tokens for r in records), sum(r.completion_tokens for r in records))
        return records, start, end, client, await counters_after(server.metrics_url, before,
                                                                 client)

    records, start, end, client, server_counts = asyncio.run(go())
    assert client == server_counts == (9 * 40, 9 * 7)
    assert [r.index for r in records] == list(range(9))
    for r in records:
        assert r.ok, r.error
        assert r.prompt_tokens == 40 and r.completion_tokens == 7
        assert sum(r.chunk_tokens) == 7, "per-chunk token counts must add up to usage"
        assert r.finish_reason == "length"
        assert start <= r.send_time and r.done_time <= end
        assert 0 < ttft(r) <= e2e(r)


def test_too_long_request_is_an_error_and_server_survives(vllm_server, tiny_model):
    engine, server = vllm_server
    prompts = PromptFactory(allowed_token_ids(str(tiny_model)), 300, seed=0, salt=12)
    records, _, _ = asyncio.run(run_closed_loop(server, prompts, 4, 1, requests=1, timeout_s=60))
    assert records[0].error.startswith("HTTP 400")
    assert engine.alive()


def test_bad_flag_fails_startup_with_log_tail(tiny_model, tmp_path):
    log = tmp_path / "server.log"
    engine = VllmEngine(str(tiny_model), "tiny", {**TINY_OPTIONS, "no_such_flag": 1}, log,
                        env=TINY_ENV, startup_timeout_s=120)
    with pytest.raises(EngineError) as caught:
        with engine:
            engine.start()
    assert "exited with code" in caught.value.reason
    assert "unrecognized arguments: --no-such-flag" in caught.value.log_tail
    assert not any(running(pid) for pid in server_pids(log))
