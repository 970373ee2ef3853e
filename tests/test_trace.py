"""Trace replay: each public layout read streaming, its window cut and rescaled, its bad
lines refused with file and line, and its hash ids turned into shared prompt blocks."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from harness.config import ConfigError, load_config
from harness.config.load import WorkloadConfig
from harness.config.trace import TraceConfig, TraceError, read_trace
from harness.contract.plan import build_plan
from harness.load.trace import TraceRequests
from harness.load.workload import Workload

from .trace_samples import sample_rows, write_trace

FORMATS = ("azure", "burstgpt", "mooncake", "jsonl")


def trace(path, fmt, **options) -> TraceConfig:
    return TraceConfig(file=str(path), format=fmt, **options)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_layout_gives_the_rows_times_and_lengths(tmp_path, fmt):
    path = write_trace(tmp_path / f"t.{fmt}", fmt, n=300, rate=20.0, seed=3)
    replay = read_trace(trace(path, fmt))
    rows = sample_rows(300, 20.0, 3, (16, 200, 4, 24))
    assert len(replay.requests) == 300
    assert [(r.input_tokens, r.output_tokens) for r in replay.requests] == \
        [(i, o) for _, i, o in rows]
    expected = np.array([t for t, _, _ in rows])
    # each layout rounds times its own way: azure to 0.1 us, mooncake to ms, burstgpt to ms
    assert np.allclose(replay.offsets, expected - expected[0], atol=1e-3)
    assert replay.offsets[0] == 0.0


def test_window_start_duration_and_max_requests(tmp_path):
    path = write_trace(tmp_path / "t.jsonl", "jsonl", n=300, rate=20.0)
    full = read_trace(trace(path, "jsonl")).offsets
    cut = read_trace(trace(path, "jsonl", start_s=2.0, duration_s=3.0))
    inside = [t for t in full if 2.0 <= t < 5.0]
    assert len(cut.requests) == len(inside)
    assert np.allclose(cut.offsets, np.array(inside) - inside[0])
    assert len(read_trace(trace(path, "jsonl", max_requests=17)).requests) == 17


def test_time_scale_and_target_rate(tmp_path):
    path = write_trace(tmp_path / "t.jsonl", "jsonl", n=200, rate=20.0)
    base = np.array(read_trace(trace(path, "jsonl")).offsets)
    half = np.array(read_trace(trace(path, "jsonl", time_scale=0.5)).offsets)
    assert np.allclose(half, base * 0.5)
    scaled = np.array(read_trace(trace(path, "jsonl", rate=5.0)).offsets)
    assert (len(scaled) - 1) / scaled[-1] == pytest.approx(5.0)
    assert np.allclose(scaled / scaled[-1], base / base[-1])  # the shape of the arrivals kept
    with pytest.raises(ValueError, match="not both"):
        trace(path, "jsonl", rate=5.0, time_scale=2.0)


def test_reading_stops_at_the_end_of_the_window(tmp_path):
    """A window at the start of a huge trace reads only its start: a malformed line far
    beyond it is never reached."""
    path = write_trace(tmp_path / "t.jsonl", "jsonl", n=300, rate=20.0)
    with path.open("a") as handle:
        handle.write("{broken\n")
    assert len(read_trace(trace(path, "jsonl", duration_s=2.0)).requests) > 0
    with pytest.raises(TraceError, match=r"line 301: not valid JSON"):
        read_trace(trace(path, "jsonl"))


def test_lengths_beyond_max_model_len_are_clipped_and_counted(tmp_path):
    path = write_trace(tmp_path / "t.csv", "azure", n=100, lengths=(100, 400, 50, 150))
    rows = sample_rows(100, 20.0, 0, (100, 400, 50, 150))
    replay = read_trace(trace(path, "azure"), max_model_len=256)
    assert replay.clipped == sum(i + o > 256 for _, i, o in rows) > 0
    assert all(r.input_tokens + r.output_tokens <= 256 for r in replay.requests)
    assert all(r.input_tokens >= 1 for r in replay.requests)


def test_burstgpt_failed_rows_are_skipped(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                    "5,ChatGPT,472,18,490,Conversation log\n"
                    "45,ChatGPT,1087,0,1087,Conversation log\n"
                    "118,GPT-4,417,276,693,API log\n")
    replay = read_trace(trace(path, "burstgpt"))
    assert [(r.offset_s, r.input_tokens) for r in replay.requests] == [(0.0, 472), (113.0, 417)]
    assert replay.skipped == 1


@pytest.mark.parametrize(("content", "fmt", "expected"), [
    ("TIMESTAMP,Tokens\n", "azure", "line 1: a azure trace needs the columns"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,12\n", "azure",
     "line 2: 2 columns"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,12,4\n", "azure",
     "line 2: TIMESTAMP 'yesterday' is not a date"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.1,-3,4\n", "azure",
     "line 2: ContextTokens '-3' is not a positive whole number"),
    ('{"timestamp": 0, "input_length": 10}\n', "mooncake",
     "line 1: a mooncake line needs the keys timestamp, input_length, output_length"),
    ('{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": ["a"]}\n',
     "mooncake", "line 1: hash_ids must be a list of whole numbers"),
    ('{"timestamp": 5, "input_tokens": 10, "output_tokens": 2}\n'
     '{"timestamp": 4, "input_tokens": 10, "output_tokens": 2}\n', "jsonl",
     "line 2: timestamp goes back in time"),
    ('{"timestamp": 0, "input_tokens": 10, "output_tokens": 2.5}\n', "jsonl",
     "line 1: output_tokens '2.5' is not a positive whole number"),
    ("", "jsonl", "no requests in the replayed window"),
])
def test_bad_trace_is_one_line_naming_file_and_line(tmp_path, content, fmt, expected):
    path = tmp_path / "bad.trace"
    path.write_text(content)
    with pytest.raises(TraceError) as caught:
        read_trace(trace(path, fmt))
    assert expected in str(caught.value)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_file_and_empty_window(tmp_path):
    with pytest.raises(TraceError, match="No such file"):
        read_trace(trace(tmp_path / "nope.csv", "azure"))
    path = write_trace(tmp_path / "t.jsonl", "jsonl", n=50, rate=20.0)
    with pytest.raises(TraceError, match="no requests in the replayed window"):
        read_trace(trace(path, "jsonl", start_s=1000.0))


def config_text(trace_block: str) -> str:
    return textwrap.dedent(f"""\
        model: dummy:tiny
        engine: {{options: {{max_model_len: 512}}}}
        workload: {{input_tokens: 16, output_tokens: 4}}
        load:
          concurrency: [2]
          requests: 4
        {textwrap.indent(trace_block, '  ')}
        """)


def test_config_with_a_trace_plans_an_open_loop_point_at_the_trace_times(tmp_path):
    path = write_trace(tmp_path / "t.jsonl", "mooncake", n=40, rate=10.0)
    config_path = tmp_path / "exp.yaml"
    config_path.write_text(config_text(
        f"trace: {{file: {path}, format: mooncake, time_scale: 0.5}}"))
    plan = build_plan(load_config(config_path))
    point = plan[0].points[-1]
    assert (point.id, point.kind) == ("trace", "trace")
    phase = point.phases[0]
    assert phase.open_loop and phase.requests == 40
    base = read_trace(TraceConfig(file=str(path), format="mooncake")).offsets
    assert np.allclose(phase.offsets, np.array(base) * 0.5)


@pytest.mark.parametrize(("block", "expected"), [
    ("trace: {file: /no/such/trace.csv, format: azure}", "trace /no/such/trace.csv: No such"),
    ("trace: {file: x.csv, format: splitwise}", "load.trace.format: Input should be"),
])
def test_bad_trace_in_config_is_a_config_error(tmp_path, block, expected):
    config_path = tmp_path / "exp.yaml"
    config_path.write_text(config_text(block))
    with pytest.raises(ConfigError) as caught:
        load_config(config_path)
    assert expected in str(caught.value) and str(config_path) in str(caught.value)


def test_malformed_line_in_config_trace_names_line(tmp_path):
    path = write_trace(tmp_path / "t.jsonl", "jsonl", n=20)
    lines = path.read_text().splitlines()
    lines[6] = json.dumps({"timestamp": "soon", "input_tokens": 3, "output_tokens": 2})
    path.write_text("\n".join(lines) + "\n")
    config_path = tmp_path / "exp.yaml"
    config_path.write_text(config_text(f"trace: {{file: {path}, format: jsonl}}"))
    with pytest.raises(ConfigError, match=r"line 7: timestamp 'soon' is not a time"):
        load_config(config_path)


def requests_of(path, fmt="mooncake", block_tokens=512, vocab=range(3, 259)):
    replay = read_trace(trace(path, fmt))
    base = Workload(WorkloadConfig(input_tokens=8, output_tokens=2), list(vocab), None, 0, 11,
                    12)
    return replay, TraceRequests(replay, base, block_tokens)


def test_hash_ids_become_shared_blocks_and_lengths_are_exact(tmp_path):
    path = write_trace(tmp_path / "m.jsonl", "mooncake", n=60, lengths=(200, 300, 4, 8),
                       block_tokens=64, shared=2)
    replay, source = requests_of(path, block_tokens=64)
    sent = [source.chain(k)[0] for k in range(60)]
    for wanted, planned in zip(replay.requests, sent, strict=True):
        assert len(planned.prompt) == planned.input_tokens == wanted.input_tokens
        assert planned.max_tokens == wanted.output_tokens
    first = sent[0].prompt[:128]
    assert all(p.prompt[:128] == first for p in sent)  # two shared blocks, token for token
    assert len({tuple(p.prompt[128:192]) for p in sent}) == 60  # own blocks differ
    again = requests_of(path, block_tokens=64)[1]
    assert again.chain(7)[0] == sent[7]  # reproducible


def test_same_hash_id_same_tokens_across_requests(tmp_path):
    path = tmp_path / "m.jsonl"
    rows = [{"timestamp": 0, "input_length": 1100, "output_length": 2, "hash_ids": [5, 6, 7]},
            {"timestamp": 10, "input_length": 600, "output_length": 2, "hash_ids": [5, 9]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, source = requests_of(path)
    a, b = source.chain(0)[0].prompt, source.chain(1)[0].prompt
    assert a[:512] == b[:512] and a[512:600] != b[512:600]
    assert (len(a), len(b)) == (1100, 600)
