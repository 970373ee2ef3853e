"""`harness validate` on copies of the committed quickstart run, broken in the ways a disk, a
crash or a hand can break it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store.run_store import RunStore

QUICKSTART = Path(__file__).resolve().parent.parent / "results" / "quickstart-cpu-2vcpu"
POINT = Path("cells") / "bf16-b4" / "points"

runner = CliRunner()


@pytest.fixture
def run(tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(QUICKSTART, copy)
    return copy


def validate(root: Path):
    return runner.invoke(app, ["validate", str(root)])


def edit_point(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def resave(root: Path, point: str = "c4") -> None:
    """Save one point again through the store, as `harness run` saves it (with checksums)."""
    store = RunStore(root)
    result = store.read_point("bf16-b4", point)
    store.save_point(result, pd.read_parquet(store.requests_parquet("bf16-b4", point)))


def points_in(run: Path) -> int:
    return len(list(run.glob("cells/*/points/*.json")))


def test_the_committed_run_is_intact(run):
    result = validate(run)
    assert result.exit_code == 0, result.output
    assert f"{points_in(run)} points checked, all intact" in result.output
    assert "no checksum recorded" not in result.output  # saved with its checksums


def test_points_saved_without_checksums_are_said_to_have_none(run):
    for sums in run.glob("cells/*/points/*.sha256"):
        sums.unlink()
    result = validate(run)
    assert result.exit_code == 0, result.output
    total = points_in(run)
    assert f"no checksum recorded for {total} of {total} points" in result.output


def test_a_truncated_parquet_is_caught(run):
    parquet = run / POINT / "c4.requests.parquet"
    parquet.write_bytes(parquet.read_bytes()[: parquet.stat().st_size // 2])
    result = validate(run)
    assert result.exit_code == 1
    assert f"{parquet}: not readable" in result.output
    assert f"2 problem(s) in {points_in(run)} points" in result.output  # and its checksum


def test_a_hand_edited_count_is_caught_without_a_checksum(run):
    edit_point(run / POINT / "c4.json", lambda d: d["metrics"].update(attempts=47))
    result = validate(run)
    assert result.exit_code == 1
    assert "c4.requests.parquet: 48 request rows, but c4.json counts 47 attempts" in \
        result.output.replace("\n", "")


def test_a_hand_edited_point_is_caught_by_its_checksum(run):
    resave(run)
    sums = run / POINT / "c4.sha256"
    check = subprocess.run(["sha256sum", "--quiet", "-c", sums.name], cwd=sums.parent)
    assert check.returncode == 0, "the checksum file is sha256sum's format"
    assert validate(run).exit_code == 0
    edit_point(run / POINT / "c4.json",
               lambda d: d["metrics"]["ttft_ms"].update(mean=d["metrics"]["ttft_ms"]["mean"] / 2))
    result = validate(run)
    assert result.exit_code == 1
    assert "c4.json: changed since it was saved" in result.output.replace("\n", "")
    assert f"1 problem(s) in {points_in(run)} points" in result.output


def test_a_replaced_parquet_is_caught_by_its_checksum(run):
    resave(run)
    parquet = run / POINT / "c4.requests.parquet"
    frame = pd.read_parquet(parquet)
    frame.loc[0, "completion_tokens"] = 999
    frame.to_parquet(parquet, index=False)
    result = validate(run)
    assert result.exit_code == 1
    assert "c4.requests.parquet: changed since it was saved" in result.output.replace("\n", "")


@pytest.mark.parametrize("change, expected", [
    (lambda p: edit_point(p, lambda d: d.update(schema_version=1)), "holds results of schema 1"),
    (lambda p: p.write_text(p.read_text()[:100]), "missing or not readable JSON"),
    (lambda p: edit_point(p, lambda d: d["metrics"].pop("attempts")),
     "not a valid PointResult: metrics.attempts"),
    (lambda p: p.with_name("c4.requests.parquet").unlink(), "c4.requests.parquet: not readable"),
])
def test_unreadable_points_are_each_named(run, change, expected):
    change(run / POINT / "c4.json")
    result = validate(run)
    assert result.exit_code == 1
    assert expected in result.output.replace("\n", "")


def test_not_a_results_directory_is_a_user_error(tmp_path):
    result = validate(tmp_path)
    assert result.exit_code == 2
    assert "no run.json here" in result.output


def test_validate_has_help():
    result = runner.invoke(app, ["validate", "--help"])
    assert result.exit_code == 0 and "checksums" in result.output


def test_a_number_edited_with_its_checksum_rewritten_is_caught_from_the_requests(run):
    from harness.store.run_store import write_checksums

    point = run / POINT / "c16.json"
    edit_point(point, lambda data: data["metrics"].update(request_throughput=78.10))
    store = RunStore(run)
    write_checksums(store.checksums("bf16-b4", "c16"),
                    [point, store.requests_parquet("bf16-b4", "c16")])
    result = validate(run)
    assert result.exit_code == 1, result.output
    assert ("bf16-b4/c16: request_throughput is 78.1 in its JSON but 36.7" in result.output)


def test_an_edited_summary_csv_is_caught(run):
    summary = pd.read_csv(run / "summary.csv", dtype={"phase": object})
    row = (summary["cell"] == "bf16-b16") & (summary["point"] == "c16")
    summary.loc[row, "output_throughput"] = 3499.1
    summary.to_csv(run / "summary.csv", index=False)
    result = validate(run)
    assert result.exit_code == 1, result.output
    assert "summary.csv: bf16-b16/c16 output_throughput is 3499.1, the point says 2499.09" in \
        " ".join(result.output.split())
