"""The capacity search is on by default where a run ends with a cost answer at an SLO, its range
derived from the cell's own measured rate; `harness cost` then takes its open-loop capacity.
Against the mock server (an external engine), so it runs in the fast suite."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from harness.config import ExperimentConfig
from harness.config.load import CapacityConfig
from harness.cost.answer import build_answer
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import load_profile
from harness.cost.measured import load_results
from harness.mock import MockServer, Schedule

from .factories import CONFIG

PROFILE = {"traffic": {"tokens_per_day": 1_000_000, "peak_to_average": 2},
           "slo": {"ttft_p95_ms": 2000}, "apis": ["llama-3.1-8b"]}


def test_the_search_is_on_by_default_with_a_cost_profile_and_an_slo():
    base = {**CONFIG, "slo": {"ttft_p95_ms": 500}}
    with_profile = {**base, "cost": {"profile": "profile.yaml"}}
    assert ExperimentConfig.model_validate(with_profile).capacity_search == CapacityConfig()
    assert ExperimentConfig.model_validate(base).capacity_search is None
    off = ExperimentConfig.model_validate({**with_profile, "capacity": False})
    assert off.capacity_search is None
    default = CapacityConfig()
    assert default.steps == 5 and default.duration_s == 10
    assert default.rates(40.0) == (6.25, 50.0)          # 1.25 x 40, then / 8
    assert default.rates(None) is None
    assert CapacityConfig(max_rate=30).rates(None) == (3.75, 30)


def test_a_run_with_a_cost_profile_searches_and_the_answer_uses_the_search(tmp_path,
                                                                           tiny_model):
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    out = tmp_path / "results"
    with MockServer(Schedule(0.002)) as mock:
        config = {"model": "tiny", "tokenizer": str(tiny_model),
                  "engine": {"kind": "external", "url": mock.base_url},
                  "workload": {"input_tokens": 16, "output_tokens": 4},
                  "load": {"concurrency": [4], "requests": 20, "warmup_requests": 0},
                  "slo": {"ttft_p95_ms": 2000},
                  "capacity": {"steps": 3, "duration_s": 1},     # range derived per cell
                  "cost": {"usd_per_hour": 1.0, "profile": str(profile)}}
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(config))
        run = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "--out",
                              str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    (cell,) = out.glob("cells/*/capacity.json")
    record = json.loads(cell.read_text())
    closed = json.loads((cell.parent / "points" / "c4.json").read_text())
    top = 1.25 * closed["metrics"]["request_throughput"]
    # the derived range tops out at 1.25 x the best rate measured; a top that meets grows,
    # doubling up to 8 x that top (3 more steps at most)
    rates = [s["rate_rps"] for s in record["steps"]]
    assert len(rates) <= 3 + 3 and rates[1] == float(f"{top:.3g}")
    assert max(rates) <= record["cap_rps"] == pytest.approx(8 * top, rel=0.01)
    if record["at_upper_bound"]:
        assert record["rate_rps"] == record["cap_rps"] == max(rates)
    answer = build_answer(load_results(out), load_profile(profile), load_price_book())
    (variant,) = answer.variants
    assert variant.capacity.source == "capacity search" and variant.capacity.verified
    assert variant.capacity.rate_rps == record["rate_rps"]


def test_repeats_measure_every_point_again_and_the_capacity_with_its_bracket(tmp_path,
                                                                             tiny_model):
    out = tmp_path / "results"
    with MockServer(Schedule(0.002)) as mock:
        config = {"model": "tiny", "tokenizer": str(tiny_model),
                  "engine": {"kind": "external", "url": mock.base_url},
                  "workload": {"input_tokens": 16, "output_tokens": 4},
                  "load": {"concurrency": [2], "requests": 20, "warmup_requests": 0},
                  "slo": {"ttft_p95_ms": 2000},
                  "capacity": {"min_rate": 20, "max_rate": 40, "grow_to": 1, "steps": 2,
                               "duration_s": 1, "repeats": 2}}
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(config))
        run = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "--out",
                              str(out), "--repeat", "2"], capture_output=True, text=True,
                             timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    (cell,) = out.glob("cells/*")
    repeat = json.loads((cell / "points" / "c2-rep2.json").read_text())
    assert repeat["repeat"] == 2 and repeat["concurrency"] == 2
    record = json.loads((cell / "capacity.json").read_text())
    found = record["rate_rps"]
    assert found is not None
    again = [r for r in record["repeats"] if r["rate_rps"] == found]
    assert [r["point"] for r in again] == [f"search-r{found:g}-rep2"]
    assert (cell / "points" / f"search-r{found:g}-rep2.json").exists()
