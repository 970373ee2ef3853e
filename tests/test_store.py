"""Results directory: atomic writes, resume bookkeeping, refusing a different config or an
older schema, and reading every file back as its typed model."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.report.run_report.summary import summary_frame, write_summary
from harness.store.run_store import ResultsError, RunStore, StoreMismatch, write_atomic

from .factories import failure, manifest, metrics, point_result, write_run


def test_write_atomic_leaves_no_temporary_files(tmp_path):
    write_atomic(tmp_path / "a" / "x.json", b'{"k": 1}')
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"k": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_a_half_written_or_edited_point_does_not_count_as_done(tmp_path):
    store = RunStore(tmp_path)
    result = point_result("cell", "bf16", 4, 1)
    path = store.point_json("cell", "c1")
    path.parent.mkdir(parents=True)
    path.write_text('{"cell": "cell", "metr')  # what a crash mid-write could leave
    assert not store.point_done("cell", "c1")
    edited = json.loads(result.model_dump_json())
    edited["metrics"]["completed"] = "lots"
    path.write_text(json.dumps(edited))
    assert not store.point_done("cell", "c1")
    store.save_point(result, pd.DataFrame({"index": [0]}))
    assert store.point_done("cell", "c1")
    assert store.read_point("cell", "c1") == result
    assert store.requests_parquet("cell", "c1").exists()


def test_begin_twice_resumes_and_records_invocations(tmp_path):
    store = RunStore(tmp_path)
    store.begin(manifest())
    store.end("interrupted")
    store.begin(manifest())
    store.end("complete")
    run = store.read_run()
    assert [i.status for i in run.invocations] == ["interrupted", "complete"]
    assert run.status == "complete" and run.started_at <= run.ended_at


def test_a_different_config_is_refused(tmp_path):
    store = RunStore(tmp_path)
    store.begin(manifest())
    with pytest.raises(StoreMismatch, match="different config"):
        store.begin(manifest(config={"seed": 7}))


def test_an_older_schema_is_refused_in_one_line(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"schema": 1, "run": "old"}))
    for action in (RunStore(tmp_path).load, lambda: RunStore(tmp_path).begin(manifest())):
        with pytest.raises(ResultsError) as caught:
            action()
        message = str(caught.value)
        assert "schema 1" in message and "re-run" in message and "\n" not in message


def test_the_whole_directory_reads_back_typed(tmp_path):
    good = point_result("bf16-b4", "bf16", 4, 2, metrics(110, 100))
    root = write_run(tmp_path, [good], failures=[failure("bf16-b8", "bf16", 8, [("c2", 2)])])
    (root / "cells" / "bf16-b4" / "points" / "c9.json").write_text('{"schema_version": 2}')
    run = RunStore(root).load()
    assert run.points == [good] and run.failures[0].points[0].id == "c2"
    assert len(run.problems) == 1 and "c9.json: not a valid PointResult" in run.problems[0]


def test_summary_has_a_row_per_point_and_failed_points(tmp_path):
    root = write_run(tmp_path, [point_result("bf16-b4", "bf16", 4, 2, metrics(110, 100))],
                     manifest(usd_per_hour=3.6),
                     failures=[failure("bf16-b8", "bf16", 8, [("c2", 2)],
                                       reason="exited with code 2")])
    frame = write_summary(RunStore(root))
    assert list(frame["status"]) == ["ok", "failed"]
    assert frame.loc[0, "usd_per_mtok_output"] == pytest.approx(3.6 / (100 * 3600 / 1e6))
    assert frame.loc[1, "reason"] == "exited with code 2"
    assert pd.read_csv(RunStore(root).summary_csv).shape[0] == 2


def test_summary_without_price_has_no_cost(tmp_path):
    root = write_run(tmp_path, [point_result("bf16-b4", "bf16", 4, 2)],
                     manifest(usd_per_hour=None))
    assert summary_frame(RunStore(root).load()).loc[0, "usd_per_mtok_output"] is None


def test_a_full_disk_fails_the_point_and_keeps_the_earlier_ones(tmp_path, monkeypatch):
    import errno

    from harness.store import run_store as store_module
    from harness.store.run_store import ResultsLost

    store = RunStore(tmp_path)
    store.begin(manifest())
    first = point_result("cell", "bf16", 4, 1)
    store.save_point(first, pd.DataFrame({"index": [0]}))
    kept = {p.name: p.read_bytes() for p in store.point_json("cell", "c1").parent.iterdir()}

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "write_atomic", full)
    second = point_result("cell", "bf16", 4, 2)
    with pytest.raises(ResultsLost, match="cannot save point cell/c2 .No space left on device."):
        store.save_point(second, pd.DataFrame({"index": [0]}))
    assert not store.point_done("cell", "c2")
    points = store.point_json("cell", "c1").parent
    assert {p.name: p.read_bytes() for p in points.iterdir()
            if not p.name.startswith("c2")} == kept
    assert not [p for p in points.iterdir() if p.name.startswith(".")], "no temporary files"


def test_a_removed_results_directory_is_not_recreated(tmp_path):
    import shutil

    from harness.store.run_store import ResultsLost

    store = RunStore(tmp_path / "run")
    store.begin(manifest())
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(ResultsLost, match="was removed during the run"):
        store.save_point(point_result("cell", "bf16", 4, 1), pd.DataFrame({"index": [0]}))
    assert not (tmp_path / "run").exists()
