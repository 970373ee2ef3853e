"""Results directory: atomic writes, resume bookkeeping, refusing a different config."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.report.tables import summary_frame, write_summary
from harness.store import RunStore, StoreMismatch, write_json


def point_result(cell="bf16-b4", point="c2", concurrency=2, out_tps=100.0):
    dist = {"n": 1, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p95": 1.0, "p99": 1.0}
    return {
        "cell": cell, "point": point, "variant": "bf16", "max_num_seqs": 4,
        "tensor_parallel_size": 1, "concurrency": concurrency,
        "metrics": {"requests": 1, "completed": 1, "errors": 0, "error_rate": 0.0,
                    "duration_s": 1.0, "prompt_tokens": 10, "output_tokens": 100,
                    "request_throughput": 1.0, "output_throughput": out_tps,
                    "total_token_throughput": out_tps + 10, "ttft_ms": dist, "tpot_ms": dist,
                    "itl_ms": dist, "e2e_ms": dist, "output_length_mismatches": 0},
        "server": {"prompt_tokens": 10, "generation_tokens": 100, "token_check": "match"},
    }


def test_write_json_leaves_no_temporary_files(tmp_path):
    write_json(tmp_path / "a" / "x.json", {"k": 1})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"k": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_a_half_written_point_does_not_count_as_done(tmp_path):
    store = RunStore(tmp_path)
    path = store.point_json("cell", "c1")
    path.parent.mkdir(parents=True)
    path.write_text('{"cell": "cell", "metr')  # what a crash mid-write could leave
    assert not store.point_done("cell", "c1")
    store.save_point("cell", "c1", {"cell": "cell"}, pd.DataFrame({"index": [0]}))
    assert store.point_done("cell", "c1")
    assert store.requests_parquet("cell", "c1").exists()


def test_begin_twice_resumes_and_records_invocations(tmp_path):
    store = RunStore(tmp_path)
    store.begin({"config_hash": "abc", "config": {}})
    store.end("interrupted")
    store.begin({"config_hash": "abc", "config": {}})
    store.end("complete")
    run = json.loads(store.run_json.read_text())
    assert [i["status"] for i in run["invocations"]] == ["interrupted", "complete"]
    assert run["status"] == "complete" and run["started_at"] <= run["ended_at"]


def test_a_different_config_is_refused(tmp_path):
    store = RunStore(tmp_path)
    store.begin({"config_hash": "abc", "config": {}})
    with pytest.raises(StoreMismatch, match="different config"):
        store.begin({"config_hash": "def", "config": {}})


def test_summary_has_a_row_per_point_and_failed_points(tmp_path):
    store = RunStore(tmp_path)
    store.save_point("bf16-b4", "c2", point_result(), pd.DataFrame({"index": [0]}))
    store.record_failure("bf16-b8", {"cell": "bf16-b8", "variant": "bf16", "max_num_seqs": 8,
                                     "tensor_parallel_size": 1, "reason": "exited with code 2",
                                     "points": [{"id": "c2", "concurrency": 2}]})
    frame = write_summary(store, usd_per_hour=3.6)
    assert list(frame["status"]) == ["ok", "failed"]
    assert frame.loc[0, "usd_per_mtok_output"] == pytest.approx(3.6 / (100 * 3600 / 1e6))
    assert frame.loc[1, "reason"] == "exited with code 2"
    assert pd.read_csv(store.summary_csv).shape[0] == 2


def test_summary_without_price_has_no_cost(tmp_path):
    store = RunStore(tmp_path)
    store.save_point("bf16-b4", "c2", point_result(), pd.DataFrame({"index": [0]}))
    assert summary_frame(store, None).loc[0, "usd_per_mtok_output"] is None
