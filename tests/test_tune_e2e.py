"""`harness tune` on real vLLM (CPU): two trials (bf16, and an FP8 KV cache held to a fidelity
floor it cannot meet), then the same command again, which measures nothing; the tuned run
reads back through validate, report and cost like any run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .children import run_harness

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parent.parent
CONFIG = {
    "model": "dummy:tiny",
    "engine": {"startup_timeout_s": 300, "env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
               "options": {"max_model_len": 128, "enforce_eager": True}},
    "matrix": {"max_num_seqs": [4],
               "variants": {"bf16": {"dtype": "bfloat16"},
                            "fp8-kv": {"dtype": "bfloat16", "kv_cache_dtype": "fp8"}}},
    "workload": {"input_tokens": 32, "output_tokens": 8},
    "load": {"concurrency": [4], "requests": 8, "warmup_requests": 2},
    "slo": {"ttft_p95_ms": 2000, "max_error_rate": 0},
    "capacity": {"steps": 2, "duration_s": 2, "grow_to": 2},
    "fidelity": {"baseline": "bf16", "max_kl": 1e-9, "prompts": 4, "prompt_tokens": 32,
                 "output_tokens": 8},
    "tune": {"trials": 2},
    "cost": {"usd_per_hour": 1.0},
}


def harness(*args: str) -> tuple[int, str]:
    return run_harness(*args, cwd=REPO)


def test_tune_two_trials_then_resume_without_measuring(tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    out = tmp_path / "results"
    code, output = harness("tune", str(path), "--out", str(out))
    assert code == 0, output
    record = json.loads((out / "tune" / "trials.json").read_text())
    states = {t["cell"]: t for t in record["trials"]}
    assert set(states) == {"bf16-b4", "fp8-kv-b4"}, output
    assert record["launches"] == 2
    assert states["bf16-b4"]["state"] == "complete" and states["bf16-b4"]["capacity_rps"] > 0
    fp8 = states["fp8-kv-b4"]
    assert fp8["state"] == "infeasible" and "max_kl" in fp8["reason"], fp8
    assert record["trials"][0]["cell"] == "bf16-b4"  # the fidelity baseline first
    best = record["trials"][[t["number"] for t in record["trials"]].index(record["best"][0])]
    assert best["cell"] == "bf16-b4"
    assert "best: trial" in output and "vllm serve" in output

    best_config = yaml.safe_load((out / "tune" / "best.yaml").read_text())
    assert "tune" not in best_config and list(best_config["matrix"]["variants"]) == ["bf16"]
    assert best_config["matrix"]["max_num_seqs"] == [4]
    serve = (out / "tune" / "best-serve.sh").read_text()
    assert "--max-num-seqs 4" in serve and "--dtype bfloat16" in serve

    logs = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/server.log")}
    code, again = harness("tune", str(path), "--out", str(out))
    assert code == 0, again
    assert "2 server launches in all; this time 0 launches" in again, again
    assert {p: p.stat().st_mtime_ns for p in out.glob("cells/*/server.log")} == logs

    code, checked = harness("validate", str(out))
    assert code == 0, checked
    html = (out / "report.html").read_text()
    assert "Tuning" in html and "bf16-b4" in html and "data-figure='tune-tune'" in html
    code, answer = harness("cost", str(out), "--profile",
                           str(REPO / "configs" / "profile-example.yaml"))
    assert code == 0, answer
    assert "tuned: the variants are the 2 trials of `harness tune`" in answer, answer
