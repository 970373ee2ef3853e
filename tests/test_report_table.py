"""The terminal results table: every column in a wide terminal, the essentials within 80 and
100 columns, and no column that is empty in every row."""

from __future__ import annotations

from rich.console import Console

from harness.report.run_report.summary import summary_frame
from harness.report.run_report.table import results_table
from harness.store.run_store import RunStore

from .factories import manifest, point_result, write_run


def rendered(tmp_path, width: int, power: float | None = None) -> str:
    points = [point_result("bf16-b16", "bf16", 16, conc, mean_power_w=power,
                           gpus=1 if power else 0) for conc in (4, 16)]
    if power:
        points = [p.model_copy(update={"energy": p.energy.model_copy(
            update={"j_per_output_token": 0.24})}) for p in points]
    points.append(point_result("fp8-kv-b16", "fp8-kv", 16, None, kind="search", rate=12.5,
                               point="search-r12.5"))
    root = write_run(tmp_path / f"run-{width}-{power}", points, manifest())
    frame = summary_frame(RunStore(root).load(), with_phases=True)
    console = Console(width=width, record=True)
    console.print(results_table(frame, title="t", width=width))
    return console.export_text()


def test_a_wide_terminal_gets_every_column(tmp_path):
    text = rendered(tmp_path, 220, power=300.0)
    for header in ("variant", "batch", "req/s", "TPOT p50/p99 ms", "E2E p50/p99 ms",
                   "J/out tok", "$/Mtok out", "$/Mtok total"):
        assert header in text
    assert "narrow terminal" not in text


def test_a_column_empty_in_every_row_is_left_out(tmp_path):
    assert "J/out tok" not in rendered(tmp_path, 220)  # no energy measured


def test_within_80_and_100_columns_the_table_fits_and_no_number_is_cut(tmp_path):
    for width in (80, 100):
        text = rendered(tmp_path, width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert "…" not in text  # columns are left out, never a digit
        words = " ".join(text.split())
        assert "narrow terminal" in words and "summary.csv has every column" in words
        assert "TTFT" in text and "TPOT" not in text.split("(")[0]
    assert "$/Mtok out" in rendered(tmp_path, 100)
    narrow = rendered(tmp_path, 80)
    assert "bf16-b16" in narrow and "fp8-kv-b16" in narrow  # variant and batch as the cell
    assert "search-r12.5" in narrow or "search-r1" in narrow


def test_the_slos_own_percentile_has_its_column_and_phases_are_marked(tmp_path):
    from harness.config.slo import Slo
    from harness.contract.results import PhaseResult, SloVerdict

    from .factories import dist, metrics

    slo = Slo(ttft_p95_ms=500)
    judged = metrics(ttft_p95=480.0)
    peak = point_result("bf16-b16", "bf16", 16, None, judged, point="peak", kind="profile",
                        slo=SloVerdict(limits=slo, meets=True, violations=[]),
                        phases={"peak": PhaseResult(metrics=metrics(
                            ttft_from_intended_ms=dist(value=620.0)), slo=SloVerdict(
                            limits=slo, meets=False, violations=["ttft_p95_ms 620.0 > 500"]))})
    root = write_run(tmp_path / "run", [peak], manifest())
    frame = summary_frame(RunStore(root).load(), with_phases=True)
    assert frame["slo_ttft_p95_ms"].tolist() == [480.0, 620.0]  # from intended where measured
    console = Console(width=220, record=True)
    console.print(results_table(frame, title="t", width=220))
    text = console.export_text()
    assert "TTFT p95 ms (SLO)" in text and "620.0" in text and "↳ peak" in text


def test_harness_report_reads_only_and_says_when_it_refreshes_summary_csv(tmp_path):
    """`harness report` leaves a summary.csv that says what the points say untouched; one that
    is missing or out of date it rewrites, saying so, with the mode the file had."""
    import os
    import shutil
    from pathlib import Path

    from typer.testing import CliRunner

    from harness.cli import app

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).resolve().parent.parent / "results" / "quickstart-cpu-2vcpu",
                    run)
    summary = run / "summary.csv"
    summary.write_text(summary.read_text() + "edited\n")
    os.chmod(summary, 0o644)
    first = CliRunner().invoke(app, ["report", str(run), "--format", "csv"])
    assert first.exit_code == 0, first.output
    assert f"note: {summary} was out of date" in " ".join(first.stderr.split())
    assert summary.stat().st_mode & 0o777 == 0o644
    assert first.stdout == summary.read_text()
    before = summary.stat().st_mtime_ns
    os.chmod(summary, 0o640)
    again = CliRunner().invoke(app, ["report", str(run), "--format", "csv"])
    assert again.exit_code == 0 and again.stderr == ""
    assert summary.stat().st_mtime_ns == before and summary.stat().st_mode & 0o777 == 0o640
    summary.unlink()
    os.umask(old := os.umask(0o022))
    CliRunner().invoke(app, ["report", str(run)])
    assert summary.stat().st_mode & 0o777 == 0o666 & ~old
