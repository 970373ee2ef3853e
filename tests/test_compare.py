"""`harness compare`: aligned points, deltas against the noise of the bootstrap intervals, the
settings that differ, every output format, the overlaid page in Chromium, and bad input."""

from __future__ import annotations

import io
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.report.comparison.deltas import noise
from tests.browser import check_page
from tests.test_report_html import QUICKSTART, assert_page_clean

runner = CliRunner()


def rerun(tmp_path: Path, name: str = "quickstart-again", **config_changes) -> Path:
    """The committed run under another directory, started a day later (as a re-run would be);
    `config_changes` edit its stored config."""
    target = tmp_path / name
    shutil.copytree(QUICKSTART, target)
    data = json.loads((target / "run.json").read_text())
    started = date.fromisoformat(data["started_at"][:10])
    data["started_at"] = str(started + timedelta(days=1)) + data["started_at"][10:]
    data["config"].update(config_changes)
    (target / "run.json").write_text(json.dumps(data))
    return target


def invoke(*args: object):
    return runner.invoke(app, ["compare", *map(str, args)])


def test_the_noise_verdict_is_whether_the_intervals_overlap():
    assert noise([10, 12], [11, 13]) == "within noise"
    assert noise([10, 12], [12, 13]) == "within noise"  # touching intervals overlap
    assert noise([10, 12], [12.5, 13]) == "beyond noise"
    assert noise(None, [1, 2]) == "no CI stored"



def points() -> int:
    """The committed run's points (every one is in a rerun of it)."""
    return len(list(QUICKSTART.glob("cells/*/points/*.json")))


def test_a_rerun_differs_only_in_times_and_every_delta_is_within_noise(tmp_path):
    result = invoke(QUICKSTART, rerun(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runs"] == ["quickstart-cpu-2vcpu", "quickstart-again"]
    assert data["settings_that_differ"] == {}
    assert list(data["also_differs"]) == ["started at"]
    deltas = pd.DataFrame(data["deltas"])
    assert len(deltas) == points() * 8  # 8 metrics a point
    latency = deltas[deltas["metric"].str.contains("ms")]
    assert (latency["noise"] == "within noise").all() and (deltas["delta"] == 0).all()


def test_the_table_lists_settings_and_marks_deltas(tmp_path):
    result = invoke(QUICKSTART, rerun(tmp_path))
    assert result.exit_code == 0, result.output
    assert "Settings that differ:" in result.output and "none: the same model" in result.output
    assert f"{points() * 8} deltas" in result.output and "0 beyond noise" in result.output


def test_a_changed_setting_is_listed_and_a_shifted_point_is_beyond_noise(tmp_path):
    other = rerun(tmp_path, seed=7)
    point = other / "cells" / "bf16-b4" / "points" / "c4.json"
    data = json.loads(point.read_text())
    ttft = data["metrics"]["ttft_ms"]
    ttft["p50"], ttft["p50_ci"] = ttft["p50"] * 3, [v * 3 for v in ttft["p50_ci"]]
    point.write_text(json.dumps(data))
    shutil.rmtree(other / "cells" / "fp8-kv-b16")
    result = invoke(QUICKSTART, other, "--format", "md")
    assert result.exit_code == 0, result.output
    assert "- seed: 0 | 7" in result.output
    row = next(line for line in result.output.splitlines()
               if line.startswith("| bf16 | 4 | c4 | TTFT p50 ms"))
    assert row.endswith("| beyond noise | sampling noise only |")
    assert "not compared: fp8-kv/16/1/c4 only in quickstart-cpu-2vcpu" in result.output


def test_csv_has_one_row_per_delta(tmp_path):
    result = invoke(QUICKSTART, rerun(tmp_path), "--format", "csv")
    assert result.exit_code == 0
    frame = pd.read_csv(io.StringIO(result.output))
    assert list(frame.columns[:3]) == ["table", "variant", "cell"]
    assert (frame["table"] == "point").sum() == points() * 8
    assert {"model", "max_num_seqs", "metric", "noise"} <= set(frame.columns)


def test_runs_with_nothing_in_common_are_exit_2_naming_what_differs(tmp_path):
    other = rerun(tmp_path, model="dummy:llama-3.2-1b")
    data = json.loads((other / "run.json").read_text())
    data["config"]["workload"]["output_tokens"]["value"] = 64
    (other / "run.json").write_text(json.dumps(data))
    result = invoke(QUICKSTART, other)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "model (dummy:tiny vs dummy:llama-3.2-1b)" in lines[0]
    assert "workload.output_tokens.value (32 vs 64)" in lines[0]


def test_one_run_or_a_directory_that_is_not_a_run_is_exit_2(tmp_path):
    assert invoke(QUICKSTART).exit_code == 2
    result = invoke(QUICKSTART, tmp_path)
    assert result.exit_code == 2 and "no run.json here" in result.output


def test_the_compare_page_overlays_two_runs_in_chromium(chromium, tmp_path):
    page = tmp_path / "compare.html"
    result = invoke(QUICKSTART, rerun(tmp_path), "--html", page)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "Settings that differ" in html and "quickstart-again" in html
    check = check_page(chromium, page, tmp_path / "compare.png")
    drawn = {"pareto", "latency", "cost-per-point", "monthly-bill-quickstart-cpu-2vcpu",
             "monthly-bill-quickstart-again"}
    assert_page_clean(check, drawn, {"energy-per-token"})


def test_every_format_renders_the_same_comparison(tmp_path):
    other = rerun(tmp_path)
    markdown = invoke(QUICKSTART, other, "--format", "md")
    assert markdown.exit_code == 0, markdown.output
    header = next(line for line in markdown.output.splitlines() if line.startswith("| variant"))
    assert "| noise |" in header and markdown.output.count("\n| ") > 10
    page = invoke(QUICKSTART, other, "--format", "html")
    assert page.output.startswith("<!doctype html>") or page.output.lstrip().startswith("<")
    assert "Settings that differ" in page.output and "quickstart-again" in page.output
    rows = json.loads(invoke(QUICKSTART, other, "--format", "json").output)["deltas"]
    decision = json.loads(invoke(QUICKSTART, other, "--format", "json").output)["decision"]
    csv = invoke(QUICKSTART, other, "--format", "csv").output.strip().splitlines()
    assert len(csv) == len(decision) + len(rows) + 1  # a line per row under one header


def test_a_machine_of_another_speed_is_a_setting_that_differs(tmp_path):
    def timed(name: str, mops: float, gbps: float) -> Path:
        run = rerun(tmp_path, name)
        data = json.loads((run / "run.json").read_text())
        data["host"]["speed"] = {"single_core_mops": mops, "memory_gbps": gbps}
        (run / "run.json").write_text(json.dumps(data))
        return run

    slow, fast = timed("slow", 20.0, 10.0), timed("fast", 46.0, 11.0)
    result = invoke(slow, fast)
    assert result.exit_code == 0, result.output
    assert "host speed differs: 2.3x" in result.output
    same = invoke(slow, timed("same", 21.0, 10.5))
    assert "host speed differs" not in same.output  # within 15%: the same machine's noise


def test_with_repeats_a_delta_is_judged_against_the_run_to_run_noise(tmp_path):
    from harness.report.comparison.deltas import compare as compare_runs
    from harness.report.comparison.deltas import mean_interval
    from harness.store.run_store import RunStore

    from .factories import manifest, metrics, point_result, write_run

    def run(name: str, outputs: list[float]) -> Path:
        points = [point_result("bf16-b4", "bf16", 4, 4, metrics(o * 4, o),
                               point="c4" if k == 1 else f"c4-rep{k}", repeat=k)
                  for k, o in enumerate(outputs, 1)]
        return write_run(tmp_path / name, points, manifest())

    noisy = [run("a", [1000, 1100, 950]), run("b", [1050, 980, 1120])]
    loaded = [RunStore(path).load() for path in noisy]
    loaded[1].manifest.run = "b"
    deltas = compare_runs(loaded).deltas.set_index("metric")
    row = deltas.loc["output tok/s"]
    assert row["noise"] == "within noise" and row["noise_from"] == "repeats (3 and 3)"
    assert row["base"] == pytest.approx(1016.67, abs=0.01)
    assert row["base_ci"] == pytest.approx(mean_interval([1000, 1100, 950]))
    shifted = RunStore(run("c", [1500, 1520, 1490])).load()
    shifted.manifest.run = "c"
    row = compare_runs([loaded[0], shifted]).deltas.set_index("metric").loc["output tok/s"]
    assert row["noise"] == "beyond noise"
    single = RunStore(run("d", [1500])).load()
    single.manifest.run = "d"
    row = compare_runs([loaded[0], single]).deltas.set_index("metric").loc["output tok/s"]
    assert row["noise_from"] == "sampling noise only" and row["noise"] == "no CI stored"


@pytest.mark.parametrize("width", [80, 120])
def test_no_number_is_cut_at_80_or_120_columns(tmp_path, width):
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "harness", "compare", str(QUICKSTART),
                             str(rerun(tmp_path))], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": str(width)})  # piped: COLUMNS rules
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= width
    assert "1,221.46" in result.stdout  # a whole number, where 80 columns cut it before


def test_two_runs_bars_stand_side_by_side_never_summed(tmp_path):
    from harness.report.run_report.html import build_report
    from harness.store.run_store import RunStore

    runs = [RunStore(QUICKSTART).load(), RunStore(rerun(tmp_path)).load()]
    figures = {f.key: f.spec for f in build_report(runs).figures}

    def bar_layers(spec: dict):
        for key in ("layer", "hconcat", "vconcat"):
            for part in spec.get(key, []):
                yield from bar_layers(part)
        mark = spec.get("mark")
        if (mark == "bar" or (isinstance(mark, dict) and mark.get("type") == "bar")):
            yield spec["encoding"]
        if "spec" in spec:
            yield from bar_layers(spec["spec"])

    for key in ("phases", "engine"):
        bars = list(bar_layers(figures[key]))
        assert bars, key
        for encoding in bars:
            value, offset = (("x", "yOffset") if encoding["x"].get("type") == "quantitative"
                             else ("y", "xOffset"))
            assert encoding[value].get("stack", "none") is None, (key, encoding[value])
            assert encoding[offset]["field"] == "run" and encoding["color"]["field"] == "run"
    # the values drawn are the points' own: each run's peak phase of bf16 batch 4, not a sum
    data = [row for dataset in figures["phases"]["datasets"].values() for row in dataset
            if row.get("series") == "bf16 batch 4" and row.get("phase") == "peak"]
    assert len(data) == 2 and {round(row["output_throughput"], 1) for row in data} == {1009.8}
