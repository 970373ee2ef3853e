"""Named workloads (matrix.workloads): every cell measured at each, ids that carry the name,
configs without them unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.config import ConfigError
from harness.config.experiment import load_config
from harness.contract.plan import build_plan
from harness.report.run_report.summary import summary_frame
from harness.store.run_store import RunStore

from .factories import manifest, metrics, point_result, write_run

REPO = Path(__file__).resolve().parent.parent
BASE = {"model": "dummy:tiny", "engine": {"options": {"max_model_len": 1024}},
        "matrix": {"max_num_seqs": [4, 8], "variants": {"bf16": {}, "fp8": {}}},
        "workload": {"input_tokens": 128, "output_tokens": 32},
        "load": {"concurrency": [4], "requests": 8}}


def config(tmp_path: Path, **matrix):
    raw = {**BASE, "matrix": {**BASE["matrix"], **matrix}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_a_config_without_named_workloads_keeps_its_hash_and_ids(tmp_path):
    quickstart = load_config(REPO / "configs" / "quickstart.yaml")
    stored = yaml.safe_load((REPO / "results" / "quickstart-cpu-2vcpu" / "run.json").read_text())
    assert quickstart.hash() == stored["config_hash"]
    assert [c.id for c in build_plan(quickstart)] == ["bf16-b4", "bf16-b16", "fp8-kv-b4",
                                                      "fp8-kv-b16"]


def test_every_cell_is_measured_at_each_named_workload(tmp_path):
    plain = config(tmp_path)
    named = config(tmp_path, workloads={"chat": {}, "rag": {"input_tokens": 512}})
    assert named.hash() != plain.hash()
    cells = build_plan(named)
    assert [c.id for c in cells] == ["bf16-chat-b4", "bf16-chat-b8", "bf16-rag-b4",
                                     "bf16-rag-b8", "fp8-chat-b4", "fp8-chat-b8",
                                     "fp8-rag-b4", "fp8-rag-b8"]
    assert named.for_workload("rag").workload.input_tokens.value == 512
    assert named.for_workload("rag").workload.output_tokens.value == 32   # the run's, kept
    assert named.for_workload("chat").workload == named.workload
    assert named.for_workload(None) is named


@pytest.mark.parametrize("workloads, expected", [
    ({"rag-long": {}}, "workload name 'rag-long'"),
    ({"rag": {"input_tokens": 2000}}, "matrix.workloads.rag: a request can need 2032 tokens"),
    ({"rag": {"input_tokenz": 5}}, "matrix.workloads.rag: input_tokenz: unknown key"),
])
def test_bad_named_workloads_are_one_line(tmp_path, workloads, expected):
    with pytest.raises(ConfigError) as err:
        config(tmp_path, workloads=workloads)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_points_and_the_summary_carry_the_workload(tmp_path):
    run = manifest(config={"matrix": {"workloads": {"chat": {}, "rag": {"input_tokens": 900}}}})
    points = [point_result(f"default-{w}", "default", None, 4, metrics(), workload=w)
              for w in ("rag", "chat")]
    root = write_run(tmp_path / "run", points, run)
    stored = RunStore(root).load()
    assert {p.workload for p in stored.points} == {"chat", "rag"}
    frame = summary_frame(stored)
    assert list(frame["workload"]) == ["chat", "rag"]
    assert list(frame["cell"]) == ["default-chat", "default-rag"]
