"""Fidelity on real vLLM (CPU), in one `harness run` of three launches: the baseline scored
against itself on a second launch (the control: KL 0, 100% top-1, no divergence), and an FP8
KV-cache variant scored against it, marked in the table and the cost answer when it misses
`max_kl`."""

from __future__ import annotations

import json

import pytest
import yaml

from .children import run_harness

pytestmark = pytest.mark.vllm

CONFIG = {
    "model": "dummy:tiny",
    "engine": {"startup_timeout_s": 300, "env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
               "options": {"max_model_len": 128, "enforce_eager": True}},
    "matrix": {"max_num_seqs": [4],
               "variants": {"fp8-kv": {"dtype": "bfloat16", "kv_cache_dtype": "fp8"},
                            "bf16": {"dtype": "bfloat16"},
                            "bf16-again": {"dtype": "bfloat16"}}},
    "workload": {"input_tokens": 16, "output_tokens": 4},
    "load": {"concurrency": [2], "requests": 4, "warmup_requests": 1},
    "slo": {"ttft_p95_ms": 5000, "max_error_rate": 0},
    "cost": {"usd_per_hour": 1.0},
    "fidelity": {"baseline": "bf16", "max_kl": 1e-9, "prompts": 8, "prompt_tokens": 48,
                 "output_tokens": 24},
}


def test_control_and_fp8_kv_against_bf16(tmp_path):
    path = tmp_path / "fidelity.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    out = tmp_path / "results"
    code, output = run_harness("run", str(path), "--out", str(out))
    assert code == 0, output
    cells = [json.loads(p.read_text())["cell"] for p in out.glob("cells/*/points/c2.json")]
    assert sorted(cells) == ["bf16-again-b4", "bf16-b4", "fp8-kv-b4"]
    assert output.index("bf16-b4: fidelity baseline stored") < output.index("fp8-kv-b4: start")

    records = {v: json.loads((out / "fidelity" / f"{v}.json").read_text())
               for v in ("bf16", "bf16-again", "fp8-kv")}
    assert records["bf16"]["status"] == "baseline" and records["bf16"]["score"] is None
    control = records["bf16-again"]["score"]
    assert records["bf16-again"]["status"] == "scored", records["bf16-again"]
    assert control["kl_mean"] == control["kl_max"] == 0.0
    assert control["top1_agreement"] == 1.0
    assert control["diverged_prompts"] == 0 and control["first_divergence_min"] is None
    assert control["positions"] == 8 * 24

    fp8 = records["fp8-kv"]["score"]
    assert records["fp8-kv"]["teacher_forced"] and fp8["positions"] == 8 * 24
    assert 0 < fp8["kl_mean"] <= fp8["kl_p99"] <= fp8["kl_max"]  # FP8 keys and values differ
    assert 0.5 < fp8["top1_agreement"] <= 1.0

    code, report = run_harness("report", str(out))
    assert code == 0, report
    assert "baseline" in report and "fidelity" in report

    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"traffic": {"tokens_per_day": 1e6,
                                                   "input_output_ratio": 3}}))
    code, answer = run_harness("cost", str(out), "--profile", str(profile))
    assert code == 0, answer
    assert "fp8-kv: misses fidelity" in answer
    assert "bf16-again: misses fidelity" not in answer
