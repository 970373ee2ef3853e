"""A trace replay as one phase of a traffic profile, against the mock server: the trace phase
sends the trace's own lengths (and Mooncake prefix blocks) at the trace's send times shifted
by the phase's start, the other phases send the synthetic workload, every prompt is built
before the clock opens, and the point's indices stay unique."""

from __future__ import annotations

import asyncio
import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from harness.config import ExperimentConfig, load_config
from harness.config.load import RetryConfig
from harness.config.trace import read_trace
from harness.contract.plan import build_plan
from harness.load.generator import Prebuilt, chains_needed, run_point
from harness.load.trace import TraceRequests
from harness.load.workload import Workload
from harness.metrics.point_metrics import PhaseSpan, phase_metrics
from harness.mock import MockServer, Schedule

from .children import finish, harness
from .requests_files import requests_file
from .trace_samples import sample_rows, write_trace

VOCAB = list(range(3, 259))
BLOCK = 64
LENGTHS = (100, 250, 4, 12)  # prompt min/max, output min/max of the trace
TRACE_N = 20
RATE_S, CLOSED_S = 0.5, 0.5


def config_text(trace_path, phases: str, trace_block: str | None = None) -> str:
    trace = trace_block or (f"{{file: {trace_path}, format: mooncake, block_tokens: {BLOCK}, "
                            "time_scale: 0.5}")
    return textwrap.dedent(f"""\
        model: dummy:tiny
        engine: {{options: {{max_model_len: 512}}}}
        workload: {{input_tokens: 16, output_tokens: 4}}
        load:
          trace: {trace}
          scenarios:
            morning: {phases}
        """)


PROFILE = (f"[{{duration_s: {RATE_S}, rate: 20, arrival: constant}}, "
           f"{{name: replay, trace: true}}, {{duration_s: {CLOSED_S}, concurrency: 2}}]")


@pytest.fixture
def mooncake(tmp_path):
    return write_trace(tmp_path / "t.jsonl", "mooncake", n=TRACE_N, rate=20.0, seed=4,
                       lengths=LENGTHS, block_tokens=BLOCK, shared=1)


def planned(tmp_path, mooncake, phases: str = PROFILE):
    path = tmp_path / "exp.yaml"
    path.write_text(config_text(mooncake, phases))
    config = load_config(path)
    return config, next(p for p in build_plan(config)[0].points if p.id == "morning")


class Counting:
    """A RequestSource that records which chains were built."""

    def __init__(self, source):
        self.source, self.built = source, []
        self.turns, self.think_time_s = source.turns, source.think_time_s

    def chain(self, index: int):
        self.built.append(index)
        return self.source.chain(index)


def test_the_trace_phase_lasts_the_traces_span_and_the_plan_says_so(tmp_path, mooncake):
    config, point = planned(tmp_path, mooncake)
    rate, replay, closed = point.phases
    trace = read_trace(config.load.trace, config.max_model_len)
    assert (replay.name, replay.trace, rate.trace, closed.trace) == ("replay", True, False,
                                                                    False)
    assert replay.duration_s == trace.offsets[-1] > 0
    assert replay.offsets == trace.offsets and replay.requests == TRACE_N
    assert point.duration_s == pytest.approx(RATE_S + trace.offsets[-1] + CLOSED_S)
    assert chains_needed(point, 0, 1, trace=True) == TRACE_N
    assert chains_needed(point, 0, 1) == 10 + 2 * 8  # the rate phase's and the closed estimate


def test_profile_with_a_trace_phase_sends_the_traces_lengths_at_its_shifted_times(
        tmp_path, mooncake):
    config, point = planned(tmp_path, mooncake)
    trace = read_trace(config.load.trace, config.max_model_len)
    base = Workload(config.workload, VOCAB, None, 0, 11, 12)
    workload = Counting(base)
    replay = Counting(TraceRequests(trace, Workload(config.workload, VOCAB, None, 0, 13, 12),
                                    BLOCK))
    requests = Prebuilt(workload, chains_needed(point, 0, 3))
    traced = Prebuilt(replay, chains_needed(point, 0, 3, trace=True))
    built = (list(workload.built), list(replay.built))
    # steps of 30 ms: a request takes at least 4 of them, so the closed phase's two senders
    # send fewer chains than chains_needed's estimate for a closed phase of a duration
    with MockServer(Schedule(0.03)) as mock:
        result = asyncio.run(run_point(mock.handle(), point, requests, seed=0, salt=3,
                                       timeout_s=10, retry=RetryConfig(), trace=traced))
    assert (workload.built, replay.built) == built, "no prompt was built while the point ran"
    assert replay.built == list(range(TRACE_N))

    records = result.records
    assert all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert len({r.index for r in records}) == len(records), "indices unique in the point"
    by_phase = {name: [r for r in records if r.phase == name]
                for name in ("phase1", "replay", "phase3")}
    assert len(by_phase["phase1"]) == 10 and len(by_phase["phase3"]) > 0

    sent = sorted(by_phase["replay"], key=lambda r: r.intended_time)
    start = result.phases[1].start
    assert start == pytest.approx(result.start + RATE_S)
    assert np.allclose([r.intended_time - start for r in sent], trace.offsets, atol=1e-9)
    assert [(r.input_tokens, r.max_tokens) for r in sent] == \
        [(t.input_tokens, t.output_tokens) for t in trace.requests]
    assert [r.prompt_tokens for r in sent] == [t.input_tokens for t in trace.requests], \
        "the server counted the trace's prompt lengths"
    synthetic = by_phase["phase1"] + by_phase["phase3"]
    assert {(r.input_tokens, r.max_tokens) for r in synthetic} == {(16, 4)}

    # Mooncake's shared hash id became one shared block of every trace prompt
    prompts = [requests.prompt for chain in traced.built for requests in chain]
    assert all(p[:BLOCK] == prompts[0][:BLOCK] for p in prompts)
    assert not any(chain[0].prompt[:BLOCK] == prompts[0][:BLOCK] for chain in requests.built)

    closed = result.phases[2]
    assert closed.start == pytest.approx(start + trace.offsets[-1])
    assert min(r.send_time for r in by_phase["phase3"]) >= closed.start
    spans = [PhaseSpan(w.name, w.start - result.start, w.end - result.start)
             for w in result.phases]
    metrics = phase_metrics(requests_file(tmp_path, records, result.start), spans)
    assert metrics["replay"].completed == TRACE_N
    assert metrics["replay"].dispatch_lag_ms.n == TRACE_N


def test_two_trace_phases_send_the_trace_twice_with_different_prompts(tmp_path):
    """Tokens that no hash id names are drawn per request: a second replay's differ (blocks
    that hash ids name are the trace's content, the same in both)."""
    plain = write_trace(tmp_path / "plain.jsonl", "jsonl", n=TRACE_N, lengths=LENGTHS)
    path = tmp_path / "exp.yaml"
    path.write_text(config_text(plain, "[{name: first, trace: true}, {duration_s: 0.2, rate: "
                                "10}, {name: again, trace: true}]",
                                f"{{file: {plain}, format: jsonl, time_scale: 0.5}}"))
    config = load_config(path)
    point = next(p for p in build_plan(config)[0].points if p.id == "morning")
    trace = read_trace(config.load.trace, config.max_model_len)
    source = TraceRequests(trace, Workload(config.workload, VOCAB, None, 0, 13, 12), BLOCK)
    traced = Prebuilt(source, chains_needed(point, 0, 3, trace=True))
    assert len(traced.built) == 2 * TRACE_N
    with MockServer(Schedule(0.002)) as mock:
        result = asyncio.run(run_point(
            mock.handle(), point, Workload(config.workload, VOCAB, None, 0, 11, 12), seed=0,
            salt=3, timeout_s=10, retry=RetryConfig(), trace=traced))
    first, again = ([r for r in result.records if r.phase == name] for name in ("first",
                                                                                "again"))
    assert sorted(r.input_tokens for r in first) == sorted(r.input_tokens for r in again) == \
        sorted(t.input_tokens for t in trace.requests)
    prompts = {tuple(chain[0].prompt) for chain in traced.built}
    assert len(prompts) == 2 * TRACE_N, "the second replay's prompts differ from the first's"


def test_trace_enters_the_stored_config_only_where_set(tmp_path, mooncake):
    """A profile without trace phases dumps (and hashes) as it did before they existed, so
    its results directory still resumes; a trace phase survives the stored round trip."""
    config, _ = planned(tmp_path, mooncake)
    dumped = config.model_dump(mode="json")
    phases = dumped["load"]["scenarios"]["morning"]
    assert ["trace" in phase for phase in phases] == [False, True, False]
    again = ExperimentConfig.model_validate(dumped, context={"stored": True})
    assert [phase.trace for phase in again.load.scenarios["morning"]] == [False, True, False]
    assert again.hash() == config.hash()
    plain = tmp_path / "plain.yaml"
    plain.write_text(config_text(mooncake, "[{duration_s: 1, rate: 2}]"))
    assert "trace" not in load_config(plain).model_dump()["load"]["scenarios"]["morning"][0]


def test_a_run_point_of_a_trace_phase_needs_its_trace_requests(tmp_path, mooncake):
    _, point = planned(tmp_path, mooncake)
    with pytest.raises(ValueError, match="replays a trace"):
        asyncio.run(run_point(None, point, None, seed=0, salt=0, timeout_s=1,
                              retry=RetryConfig()))


def test_harness_run_measures_the_trace_phase_like_any_phase(tmp_path, tiny_model, mooncake):
    """`harness run` against the mock server (an external engine): the point's parquet has the
    trace's lengths at its shifted times in the trace phase, the workload's elsewhere, unique
    indices, and the point's result per-phase metrics and verdicts for all three."""
    out = tmp_path / "results"
    with MockServer(Schedule(0.002)) as mock:
        path = tmp_path / "run.yaml"
        path.write_text(json.dumps({
            "model": "tiny", "tokenizer": str(tiny_model),
            "engine": {"kind": "external", "url": mock.base_url},
            "workload": {"input_tokens": 16, "output_tokens": 4},
            "slo": {"ttft_p95_ms": 5000},
            "load": {"warmup_requests": 0,
                     "trace": {"file": str(mooncake), "format": "mooncake",
                               "block_tokens": BLOCK, "time_scale": 0.5},
                     "scenarios": {"morning": [
                         {"duration_s": RATE_S, "rate": 20, "arrival": "constant"},
                         {"name": "replay", "trace": True},
                         {"duration_s": CLOSED_S, "concurrency": 2}]}}}))
        code, output = finish(harness("run", str(path), "--out", str(out)), timeout=300)
    assert code == 0, output
    points = out / "cells" / "default" / "points"
    frame = pd.read_parquet(points / "morning.requests.parquet")
    assert frame["index"].is_unique
    replay = frame[frame.phase == "replay"].sort_values("intended_s")
    rows = sample_rows(TRACE_N, 20.0, 4, LENGTHS)
    assert list(replay.input_tokens) == [i for _, i, _ in rows]
    assert list(replay.max_tokens) == [o for _, _, o in rows]
    offsets = np.array([t for t, _, _ in rows]) * 0.5
    start = replay.intended_s.iloc[0] - offsets[0]
    assert start == pytest.approx(RATE_S, abs=1e-9)  # times count from the point's start
    assert np.allclose(replay.intended_s - start, offsets, atol=2e-3)  # mooncake's ms
    others = frame[frame.phase != "replay"]
    assert set(others.input_tokens) == {16} and set(others.phase) == {"phase1", "phase3"}

    result = json.loads((points / "morning.json").read_text())
    assert set(result["phases"]) == {"phase1", "replay", "phase3"}
    assert result["phases"]["replay"]["metrics"]["completed"] == TRACE_N
    assert result["phases"]["replay"]["slo"]["meets"] is not None
    planned_phases = {p["name"]: p for p in result["planned"]["phases"]}
    assert planned_phases["replay"]["trace"] is True
    assert planned_phases["replay"]["duration_s"] == pytest.approx(offsets[-1], abs=2e-3)
    assert "phase replay from the mooncake trace" in result["planned"]["input_tokens"]
    assert (points / "trace.json").exists(), "load.trace keeps its own point"
