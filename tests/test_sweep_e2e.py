"""`harness run` end to end on real vLLM (CPU): a 2 batch sizes x 2 load points sweep that is
interrupted with Ctrl-C, resumed, and resumed again; and a cell whose server cannot start."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.engines.process import STOP_GRACE_S

from .children import finish, harness
from .conftest import running, server_pids
from .trace_samples import write_trace

pytestmark = pytest.mark.vllm

INPUT, OUTPUT = 24, 8

SWEEP = {
    "model": "dummy:tiny",
    "engine": {"startup_timeout_s": 300, "env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
               "options": {"max_model_len": 128, "enforce_eager": True}},
    "matrix": {"max_num_seqs": [2, 4], "variants": {"bf16": {"dtype": "bfloat16"}}},
    "workload": {"input_tokens": INPUT, "output_tokens": OUTPUT},
    "load": {"concurrency": [1, 3], "requests": 6, "warmup_requests": 2},
    "cost": {"usd_per_hour": 1.0},
}




def all_server_pids(out: Path) -> set[int]:
    return set().union(*(server_pids(log) for log in out.glob("cells/*/server.log")))


def point_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.glob("cells/*/points/*.json")}


@pytest.fixture
def sweep_config(tmp_path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEP))
    return path


def test_interrupt_resume_and_exact_counts(sweep_config, tmp_path):
    out = tmp_path / "results"
    first_point = out / "cells" / "bf16-b2" / "points" / "c1.json"

    # 1. Ctrl-C once the first point is on disk: servers stop, finished points stay.
    proc = harness("run", str(sweep_config), "--out", str(out))
    deadline = time.monotonic() + 400
    while not first_point.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "first point never finished"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    code, output = finish(proc, timeout=120)
    assert code == 130, output
    assert "Run the same command to resume" in output
    assert not [pid for pid in all_server_pids(out) if running(pid)], "orphaned server process"
    kept = point_files(out)
    assert "cells/bf16-b2/points/c1.json" in kept

    # 2. The same command resumes: only the missing points are measured.
    code, output = finish(harness("run", str(sweep_config), "--out", str(out)))
    assert code == 0, output
    assert f"{4 - len(kept)} points measured, {len(kept)} already done" in output
    assert {k: v for k, v in point_files(out).items() if k in kept} == kept
    assert not [pid for pid in all_server_pids(out) if running(pid)]

    # 3. Again: nothing is re-run and no server is started.
    logs = {p: p.stat().st_size for p in out.glob("cells/*/server.log")}
    code, output = finish(harness("run", str(sweep_config), "--out", str(out)))
    assert code == 0, output
    assert "0 points measured, 4 already done" in output
    assert {p: p.stat().st_size for p in out.glob("cells/*/server.log")} == logs

    # Every point: client counts equal vLLM's own counter deltas; every request exact.
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 and set(summary["status"]) == {"ok"}
    assert sorted(zip(summary["max_num_seqs"], summary["concurrency"], strict=True)) == [
        (2, 1), (2, 3), (4, 1), (4, 3)]
    for point in out.glob("cells/*/points/*.json"):
        result = json.loads(point.read_text())
        server, metrics = result["server"], result["metrics"]
        assert server["token_check"] == "match", point
        requests = pd.read_parquet(point.with_name(point.stem + ".requests.parquet"))
        assert len(requests) == 6 and requests["error"].isna().all()
        assert requests["prompt_tokens"].sum() == server["prompt_tokens"] == 6 * INPUT
        assert requests["completion_tokens"].sum() == server["generation_tokens"] == 6 * OUTPUT
        assert (requests["completion_tokens"] == OUTPUT).all()
        assert (requests["first_token_s"] <= requests["last_token_s"]).all()
        assert all(sum(tokens) == OUTPUT for tokens in requests["chunk_tokens"])
        assert metrics["ttft_ms"]["n"] == 6 and metrics["output_length_mismatches"] == 0
    assert summary["usd_per_mtok_output"].notna().all()

    run = json.loads((out / "run.json").read_text())
    assert [i["status"] for i in run["invocations"]] == ["interrupted", "complete", "complete"]
    assert run["engine_package"]["package"] in ("vllm", "vllm-cpu")
    assert run["config_hash"] and run["host"]["cpu_count"]


def test_failed_cell_is_recorded_and_the_run_goes_on(tmp_path):
    config = {**SWEEP,
              "matrix": {"max_num_seqs": [2], "variants": {"broken": {"no_such_flag": 1},
                                                           "bf16": {"dtype": "bfloat16"}}},
              "load": {"concurrency": [2], "requests": 4, "warmup_requests": 0}}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    code, output = finish(harness("run", str(path), "--out", str(out)))
    assert code == 1, output
    assert "broken-b2: failed" in output or "failed: broken-b2" in output
    failure = json.loads((out / "cells" / "broken-b2" / "failed.json").read_text())
    assert "unrecognized arguments: --no-such-flag" in failure["log_tail"]
    summary = pd.read_csv(out / "summary.csv").set_index("cell")
    assert summary.loc["broken-b2", "status"] == "failed"
    assert summary.loc["bf16-b2", "status"] == "ok"
    report = (out / "report.html").read_text()  # the run's page shows the cell failed
    assert "broken-b2: FAILED, 1 points not measured" in report and f"Report: {out}" in output
    assert not [pid for pid in all_server_pids(out) if running(pid)]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 130), (signal.SIGKILL, -9)])
def test_killing_the_harness_leaves_no_server(sweep_config, tmp_path, sig, code):
    """SIGTERM stops the run like Ctrl-C; even SIGKILL, which the harness cannot catch, leaves
    no engine process behind (the guard sees its lifeline close)."""
    out = tmp_path / "results"
    log = out / "cells" / "bf16-b2" / "server.log"
    proc = harness("run", str(sweep_config), "--out", str(out))
    deadline = time.monotonic() + 120
    while not (log.exists() and "EngineCore" in log.read_text(errors="replace")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(sig)
    assert finish(proc, timeout=120)[0] == code
    pids = server_pids(log)
    assert len(pids) >= 3  # guard, API server, engine core
    deadline = time.monotonic() + 40
    while [pid for pid in pids if running(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if running(pid)]


def test_open_loop_profile_and_capacity_search(tmp_path):
    """Open-loop points record intended and actual send times; a profile reports each phase;
    a trace replays at its own times, as a point and as a profile's phase; every point has
    its steady window; the capacity search returns a rate whose point meets the SLO."""
    trace = write_trace(tmp_path / "trace.jsonl", "jsonl", n=12, rate=8.0,
                        lengths=(INPUT, INPUT + 40, OUTPUT, OUTPUT))
    config = {**SWEEP,
              "matrix": {"max_num_seqs": [4], "variants": {"bf16": {"dtype": "bfloat16"}}},
              "load": {"rates": [8], "requests": 12, "warmup_requests": 2,
                       "trace": {"file": str(trace), "format": "jsonl"},
                       "scenarios": {"day": [{"name": "average", "rate": 4, "duration_s": 2},
                                            {"name": "replay", "trace": True},
                                            {"name": "peak", "rate": 16, "duration_s": 2}]}},
              "slo": {"ttft_p95_ms": 1500, "max_error_rate": 0},
              # 10 req/s for 3 s: enough arrivals to show a queue (sustain.min_requests)
              "capacity": {"min_rate": 10, "max_rate": 400, "steps": 4, "duration_s": 3}}
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    code, output = finish(harness("run", str(path), "--out", str(out)))
    assert code == 0, output
    points = out / "cells" / "bf16-b4" / "points"

    rate = json.loads((points / "r8.json").read_text())
    assert rate["kind"] == "open" and rate["prefix_cache"] == "reset"
    m = rate["metrics"]
    assert m["dispatch_lag_ms"]["n"] == m["ttft_from_intended_ms"]["n"] == 12
    assert m["ttft_from_intended_ms"]["p50"] >= m["ttft_ms"]["p50"]
    requests = pd.read_parquet(points / "r8.requests.parquet")
    assert (requests["send_s"] >= requests["intended_s"]).all()
    assert requests["intended_s"].diff().dropna().gt(0).all()

    day = json.loads((points / "day.json").read_text())
    assert set(day["phases"]) == {"average", "replay", "peak"}
    average, peak = (day["phases"][name]["metrics"] for name in ("average", "peak"))
    assert peak["requests"] > 2 * average["requests"]
    assert day["phases"]["peak"]["slo"] is not None
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["phase"].dropna()) == {"average", "replay", "peak"}
    # the trace phase: the trace's lengths, counted so by the server, at its times + 2 s
    in_day = pd.read_parquet(points / "day.requests.parquet")
    assert in_day["index"].is_unique
    replayed = in_day[in_day["phase"] == "replay"].sort_values("intended_s")
    rows = pd.read_json(trace, lines=True)
    assert list(replayed["input_tokens"]) == list(rows["input_tokens"])
    assert (replayed["prompt_tokens"] == replayed["input_tokens"]).all()
    assert replayed["intended_s"].to_numpy() - 2.0 == pytest.approx(
        (rows["timestamp"] - rows["timestamp"][0]).to_numpy(), abs=1e-6)
    assert day["phases"]["replay"]["metrics"]["completed"] == 12
    assert day["phases"]["replay"]["slo"] is not None
    assert set(in_day.loc[in_day["phase"] != "replay", "input_tokens"]) == {INPUT}

    replay = json.loads((points / "trace.json").read_text())
    assert replay["kind"] == "trace" and replay["metrics"]["completed"] == 12
    assert replay["metrics"]["input_length_mismatches"] == 0  # text prompts, exact lengths
    sent = pd.read_parquet(points / "trace.requests.parquet").sort_values("intended_s")
    gaps = sent["intended_s"].diff().dropna().to_numpy()
    planned = pd.read_json(trace, lines=True)["timestamp"].diff().dropna().to_numpy()
    assert gaps == pytest.approx(planned, abs=1e-6)
    for point in ("r8", "day", "trace"):
        steady = json.loads((points / f"{point}.json").read_text())["steady"]
        assert steady["rule"] == "first completion to last send", point

    capacity = json.loads((out / "cells" / "bf16-b4" / "capacity.json").read_text())
    assert capacity["meets_slo"], capacity
    assert 1 <= len(capacity["steps"]) <= 4
    found = json.loads((points / f"{capacity['point']}.json").read_text())
    assert found["slo"]["meets"] and found["rate"] == capacity["rate_rps"]
    assert "capacity at SLO" in output


def test_a_hung_engine_fails_its_cell_and_its_server_group_is_killed(tmp_path):
    """SIGSTOP every server process mid-point: within request_timeout_s (plus the stop's grace)
    the cell is failed with the reason, the run exits 1 and no server process is left."""
    timeout_s = 10
    config = {**SWEEP,
              "matrix": {"max_num_seqs": [2], "variants": {"bf16": {"dtype": "bfloat16"}}},
              "load": {"concurrency": [2], "requests": 400, "warmup_requests": 0,
                       "request_timeout_s": timeout_s}}
    path = tmp_path / "hung.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    log = out / "cells" / "bf16-b2" / "server.log"
    proc = harness("run", str(path), "--out", str(out))
    deadline = time.monotonic() + 400
    while not (log.exists() and log.read_text(errors="replace").count("POST /v1/completions")
               >= 6):  # the readiness probe's, then the point's
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the point never started"
        time.sleep(0.2)
    pids = server_pids(log)
    assert len(pids) >= 3  # guard, API server, engine core
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    code, output = finish(proc, timeout=180)
    took = time.monotonic() - stopped
    assert code == 1, output
    failure = json.loads((out / "cells" / "bf16-b2" / "failed.json").read_text())
    assert "server stopped answering during point c2" in failure["reason"], failure["reason"]
    assert "it is hung" in failure["reason"]
    assert took < timeout_s + STOP_GRACE_S + 30, f"{took:.0f} s to give up on a hung engine"
    assert not [pid for pid in pids if running(pid)], "a stopped server process was left"
    assert "failed: bf16-b2" in output
