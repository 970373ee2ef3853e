"""Client, engine metrics and the external engine against one real vLLM server on the CPU."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import aiohttp
import pytest
import yaml

from harness.engines.base import EngineError
from harness.engines.vllm import VllmEngine
from harness.load.prompts import allowed_token_ids
from harness.metrics.point_metrics import e2e, ttft
from harness.telemetry import server_metrics as sm

from .conftest import API_KEY, TINY_ENV, TINY_OPTIONS, running, server_pids
from .loads import closed_loop, workload
from .requests_files import rows_of

pytestmark = pytest.mark.vllm


async def measured(server, requests, concurrency, count):
    """Load plus this test's own reads of vLLM's /metrics (independent of the runner)."""
    async with aiohttp.ClientSession() as session:
        before = await sm.scrape(session, server.metrics_url)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sm.sample_until(session, server.metrics_url, stop, 0.05))
        load = await closed_loop(server, requests, concurrency, count)
        records, start, end = load.records, load.start, load.end
        stop.set()
        samples = await sampler
        client = (sum(r.prompt_tokens for r in records), sum(r.completion_tokens for r in records))
        after = before
        for _ in range(30):
            after = await sm.scrape(session, server.metrics_url)
            if (sm.delta(before, after, sm.PROMPT_TOKENS),
                    sm.delta(before, after, sm.GENERATION_TOKENS)) == client:
                break
            await asyncio.sleep(0.1)
    return records, start, end, client, before, after, samples


def test_closed_loop_counts_equal_vllm_counters(vllm_server, tiny_model, tmp_path):
    engine, server = vllm_server
    requests = workload(allowed_token_ids(str(tiny_model)), 40, 7, salt=11)
    records, start, end, client, before, after, _ = asyncio.run(
        measured(server, requests, 3, 9))
    server_counts = (sm.delta(before, after, sm.PROMPT_TOKENS),
                     sm.delta(before, after, sm.GENERATION_TOKENS))
    assert client == server_counts == (9 * 40, 9 * 7)
    assert [r.index for r in records] == list(range(9))
    for r in records:
        assert r.ok, r.error
        assert r.prompt_tokens == 40 and r.completion_tokens == 7
        assert sum(r.chunk_tokens) == 7, "per-chunk token counts must add up to usage"
        assert r.finish_reason == "length"
        assert start <= r.send_time and r.done_time <= end
    rows = rows_of(tmp_path, records, start)
    assert (0 < ttft(rows)).all() and (ttft(rows) <= e2e(rows)).all()


def test_engine_stats_show_the_batch_limit_and_the_queue(vllm_server, tiny_model):
    """8 requests in flight against max_num_seqs 4: at most 4 run, the rest wait."""
    engine, server = vllm_server
    requests = workload(allowed_token_ids(str(tiny_model)), 64, 96, salt=13)
    *_, before, after, samples = asyncio.run(measured(server, requests, 8, 24))
    stats = sm.engine_stats(before, after, samples, max_num_seqs=4)
    assert stats.samples >= 2
    assert 0 < stats.running_max <= 4
    assert stats.waiting_max >= 1
    assert 0 < stats.kv_cache_usage_peak <= 1
    assert stats.preemptions == 0
    assert stats.prefix_cache_queries == 24 * 64
    assert stats.prefix_hit_rate == 0, "distinct prompts must not hit the prefix cache"


def test_too_long_request_is_an_error_and_server_survives(vllm_server, tiny_model):
    engine, server = vllm_server
    requests = workload(allowed_token_ids(str(tiny_model)), 300, 4, salt=12)
    records = asyncio.run(closed_loop(server, requests, 1, 1)).records
    assert records[0].error.startswith("HTTP 400")
    assert engine.alive()


def external_run(tmp_path, server, tiny_model, key_value):
    config = {
        "model": "tiny", "tokenizer": str(tiny_model),
        "engine": {"kind": "external", "url": server.base_url, "api_key_env": "TEST_SERVER_KEY"},
        "workload": {"input_tokens": 16, "output_tokens": 4},
        "load": {"concurrency": [2], "requests": 6, "warmup_requests": 1},
    }
    path = tmp_path / "external.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    env = {**os.environ, "TEST_SERVER_KEY": key_value}
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "--out",
                             str(out)], capture_output=True, text=True, env=env, timeout=300)
    return result, out


def files_containing(root, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_external_engine_measures_a_running_server_without_leaking_its_key(
        vllm_server, tiny_model, tmp_path):
    _, server = vllm_server
    result, out = external_run(tmp_path, server, tiny_model, API_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert API_KEY not in result.stdout + result.stderr
    assert files_containing(out, API_KEY) == []
    log = (out / "cells" / "default" / "server.log").read_text()
    assert "accepted" in log and "token_ids" in log  # probed: vLLM takes token ids
    point = yaml.safe_load((out / "cells" / "default" / "points" / "c2.json").read_text())
    assert point["server"]["token_check"] == "match"
    assert point["metrics"]["completed"] == 6 and point["metrics"]["input_length_mismatches"] == 0


def test_external_engine_with_a_wrong_key_fails_the_cell_without_leaking_it(
        vllm_server, tiny_model, tmp_path):
    _, server = vllm_server
    wrong = "sk-wrong-key-0123456789"
    result, out = external_run(tmp_path, server, tiny_model, wrong)
    assert result.returncode == 1
    assert "401" in result.stdout + result.stderr
    assert wrong not in result.stdout + result.stderr
    assert files_containing(out, wrong) == []


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


def test_shared_prefixes_hit_the_prefix_cache_and_distinct_prompts_do_not(vllm_server,
                                                                           tiny_model):
    """vLLM caches whole 128-token blocks on the CPU: a 160-token shared prefix hits one."""
    from harness.config.load import RetryConfig, WorkloadConfig
    from harness.contract.plan import PhaseSpec, Point
    from harness.load.generator import run_point
    from harness.load.workload import Workload

    _, server = vllm_server
    vocab = allowed_token_ids(str(tiny_model))
    point = Point("c2", "closed", (PhaseSpec("main", None, 8, 2, None),))

    async def hit_rate(config: WorkloadConfig, salt: int) -> float:
        async with aiohttp.ClientSession() as session:
            before = await sm.scrape(session, server.metrics_url)
            await run_point(server, point, Workload(config, vocab, None, 0, salt, salt + 1),
                            seed=0, salt=salt, timeout_s=60, retry=RetryConfig())
            await asyncio.sleep(0.5)
            after = await sm.scrape(session, server.metrics_url)
        return sm.engine_stats(before, after, [], 4).prefix_hit_rate

    shared = WorkloadConfig(input_tokens=200, output_tokens=4,
                            shared_prefix={"share": 0.8, "prefixes": 1})
    distinct = WorkloadConfig(input_tokens=200, output_tokens=4)
    first = asyncio.run(hit_rate(shared, 21))
    assert first > 0.4  # 7 of 8 requests hit 128 of 200 tokens
    assert asyncio.run(hit_rate(distinct, 23)) == 0
    # the same prefix again finds it cached from the first time (8 of 8 hit) ...
    assert asyncio.run(hit_rate(shared, 21)) > first
    # ... unless the engine's reset emptied the cache in between (what runs after each point)
    engine, _ = vllm_server
    assert engine.reset_prefix_cache() == "reset"
    assert asyncio.run(hit_rate(shared, 21)) == pytest.approx(first)
