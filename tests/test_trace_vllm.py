"""Trace replay on one real vLLM server (CPU), text prompts as `harness run` sends them: a
sample of every layout keeps its arrival times, the server counts exactly the trace's prompt
lengths, and a Mooncake sample's shared blocks hit the prefix cache."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from harness.config.load import RetryConfig, WorkloadConfig
from harness.config.trace import TraceConfig, read_trace
from harness.contract.plan import PhaseSpec, Point
from harness.load.generator import run_point
from harness.load.health import LAG_LIMIT_MS
from harness.load.prompts import TextCodec, allowed_token_ids
from harness.load.trace import TraceRequests
from harness.load.workload import Workload
from harness.telemetry import server_metrics as sm

from .requests_files import metrics_of
from .trace_samples import write_trace

pytestmark = pytest.mark.vllm

SAMPLES = {  # format -> (lengths: min/max in, min/max out, block tokens)
    "azure": ((16, 120, 4, 12), 512),
    "burstgpt": ((16, 120, 4, 12), 512),
    "jsonl": ((16, 120, 4, 12), 512),
    "mooncake": ((140, 220, 4, 8), 128),  # vLLM on the CPU caches whole 128-token blocks
}


async def replay(server, source: TraceRequests, offsets) -> tuple:
    point = Point("trace", "trace", (PhaseSpec("trace", None, len(offsets), None, None,
                                               offsets=tuple(offsets)),))
    async with aiohttp.ClientSession() as session:
        before = await sm.scrape(session, server.metrics_url)
        load = await run_point(server, point, source, seed=0, salt=5, timeout_s=60,
                               retry=RetryConfig())
        await asyncio.sleep(0.5)
        after = await sm.scrape(session, server.metrics_url)
    return load, sm.engine_stats(before, after, [], 4).prefix_hit_rate


def test_every_trace_layout_replays_with_its_times_and_lengths(vllm_server, tiny_model,
                                                              tmp_path):
    _, server = vllm_server
    codec = TextCodec.load(str(tiny_model))
    vocab = allowed_token_ids(str(tiny_model))
    hit_rates = {}
    for number, (fmt, (lengths, block)) in enumerate(SAMPLES.items()):
        path = write_trace(tmp_path / f"sample.{fmt}", fmt, n=30, rate=15.0, seed=number,
                           lengths=lengths, block_tokens=block)
        trace = read_trace(TraceConfig(file=str(path), format=fmt, block_tokens=block),
                           max_model_len=256)
        base = Workload(WorkloadConfig(input_tokens=8, output_tokens=2), vocab, codec, 0,
                        100 + number, 200 + number)
        load, hit_rates[fmt] = asyncio.run(
            replay(server, TraceRequests(trace, base, block), trace.offsets))
        metrics = metrics_of(tmp_path, load.records, load.start, load.end)
        assert metrics.completed == 30 and metrics.errors == 0, fmt
        assert metrics.input_length_mismatches == 0, fmt
        assert metrics.output_length_mismatches == 0, fmt
        sent = sorted(load.records, key=lambda r: r.intended_time)
        intended = np.array([r.intended_time for r in sent]) - sent[0].intended_time
        assert np.allclose(intended, trace.offsets, atol=1e-6), fmt
        # sent on time: the median within the run's limit; the tail is left some room, as
        # the 2-vCPU test host runs vLLM's server, its engine and this client together
        assert metrics.dispatch_lag_ms.p50 < LAG_LIMIT_MS, (fmt, metrics.dispatch_lag_ms)
        assert metrics.dispatch_lag_ms.p99 < 50 * LAG_LIMIT_MS, (fmt, metrics.dispatch_lag_ms)
        by_index = {r.index: r for r in load.records}
        assert [by_index[k].input_tokens for k in range(30)] == \
            [r.input_tokens for r in trace.requests]
    assert hit_rates["mooncake"] > 0.3  # 128 of 140-220 tokens shared by 29 of 30 requests
    assert hit_rates["azure"] == 0
