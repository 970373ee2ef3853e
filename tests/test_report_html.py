"""`harness report --html/--png`: the page of the committed real quickstart run opened in headless
Chromium (every chart drawn, no console error, no network request), a GPU run's energy,
telemetry and hardware charts from the recorded H200 trace, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from harness.cli import app
from harness.contract.manifest import CellTelemetry
from harness.contract.results import EngineStats
from harness.report.run_report.html import build_report
from harness.run.runner import cell_telemetry
from harness.store.run_store import RunStore, write_model
from tests import factories
from tests.browser import check_page
from tests.fake_pynvml import H200_TRACE, fake_nvml
from tests.test_nvml import open_monitor, replay

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "results" / "quickstart-cpu-2vcpu"
runner = CliRunner()


def quickstart_copy(tmp_path: Path, name: str = "quickstart") -> Path:
    """The committed run, copied: `harness report` rewrites a run's summary.csv."""
    target = tmp_path / name
    shutil.copytree(QUICKSTART, target)
    return target


def assert_page_clean(check, drawn: set[str], missing: set[str]) -> None:
    assert check.console_errors == []
    assert check.requests == []
    charts = {chart["key"]: chart for chart in check.charts}
    assert drawn <= set(charts) and missing <= set(charts)
    for key in drawn:
        chart = charts[key]
        assert chart["rendered"] and chart["svgs"] >= 1 and chart["marks"] > 20, chart
        assert chart["width"] > 200 and chart["height"] > 150, chart
    for key in missing:
        assert charts[key]["missing"] and charts[key]["svgs"] == 0, charts[key]


def test_the_quickstart_report_renders_offline_in_chromium(chromium, tmp_path):
    run = quickstart_copy(tmp_path)
    page, pngs = tmp_path / "report.html", tmp_path / "png"
    result = runner.invoke(app, ["report", str(run), "--html", str(page), "--png", str(pngs)])
    assert result.exit_code == 0, result.output
    check = check_page(chromium, page, tmp_path / "report.png")
    drawn = {"pareto", "latency", "latency-histograms", "capacity-search", "cost-per-point",
             "monthly-bill", "engine", "phases", "fidelity"}
    assert_page_clean(check, drawn, {"energy-per-token", "telemetry", "hardware"})
    assert (tmp_path / "report.png").stat().st_size > 100_000
    assert {p.stem for p in pngs.glob("*.png")} == drawn
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs.glob("*.png"))


def test_the_committed_example_report_renders_offline_in_chromium(chromium, tmp_path):
    check = check_page(chromium, QUICKSTART / "report.html", tmp_path / "committed.png")
    drawn = {"pareto", "latency", "cost-per-point", "monthly-bill", "engine", "phases",
             "fidelity"}
    assert_page_clean(check, drawn, {"energy-per-token", "telemetry", "hardware"})


def test_the_page_says_why_energy_is_missing_never_zero(tmp_path):
    html = build_report([RunStore(quickstart_copy(tmp_path)).load()]).html
    assert "GPU energy per output token</b>: not measured: NVML unavailable" in html
    assert "How close to the hardware (quickstart)</b>: not applicable: this run had no GPU" in html
    assert "cheaper than 9 of 9 APIs" in html  # the same verdict `harness cost` prints
    assert "measured on AMD EPYC (no GPU), model dummy:tiny" in html  # its caveats


def test_the_browser_check_catches_requests_and_errors(chromium, tmp_path):
    """The check itself can fail: a page that loads a URL and logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><img src='http://127.0.0.1:9/x.png'>"
                    "<script>console.error('broken chart'); undefinedCall();</script>"
                    "</body></html>")
    check = check_page(chromium, page, tmp_path / "bad.png", settle_s=3)
    assert check.requests == ["http://127.0.0.1:9/x.png"]
    assert any("broken chart" in e for e in check.console_errors)
    assert any("undefinedCall" in str(e) for e in check.console_errors)


# --- a GPU run: energy, telemetry and the bandwidth floor ---------------------------------

def measured_on_the_h200_trace() -> tuple[CellTelemetry, list[pd.DataFrame]]:
    """What the real EnergyMonitor records over the recorded H200 trace (fake pynvml): the
    cell's telemetry facts, and the samples of two windows (quarter and full load)."""
    nvml = fake_nvml(H200_TRACE)
    monitor = open_monitor(nvml)
    try:
        cell = cell_telemetry(monitor)
        windows = [replay(monitor, nvml.clock, phase, *nvml.gpus[0].trace.phase_s(phase))
                   for phase in ("quarter_load", "full_load")]
    finally:
        monitor.close()
    return cell, [window.samples for window in windows]


def gpu_run(root: Path) -> Path:
    cell_facts, samples = measured_on_the_h200_trace()
    manifest = factories.manifest(model="dummy:llama-3.1-8b",
                                  gpus=[cell_facts.gpus[0].name],
                                  config={"matrix": {"max_num_seqs": [8, 32]}})
    points = []
    for batch in (8, 32):
        cell = f"default-b{batch}"
        manifest.telemetry[cell] = cell_facts
        m = factories.metrics(output=150.0 * batch, tpot_ms=factories.dist(100, 8.0 + batch / 8))
        point = factories.point_result(cell, "default", batch, batch, m, mean_power_w=500.0,
                                       gpus=1)
        point.energy.j_per_output_token = 500.0 / (150.0 * batch)
        point.server.engine = EngineStats(
            samples=10, running_mean=batch * 0.9, running_max=batch, max_num_seqs=batch,
            waiting_max=0, kv_cache_usage_peak=0.2, preemptions=0, prefix_cache_queries=None,
            prefix_cache_hits=None, prefix_hit_rate=None)
        points.append(point)
    store = RunStore(root)
    write_model(store.run_json, manifest)
    for point, window in zip(points, samples, strict=True):
        store.save_point(point, pd.DataFrame({"index": [0]}), window)
    return root


def test_a_gpu_run_draws_energy_telemetry_and_the_hardware_floor(chromium, tmp_path):
    run = RunStore(gpu_run(tmp_path / "gpu")).load()
    report = build_report([run])
    figures = {fig.key: fig for fig in report.figures}
    for key in ("energy-per-token", "telemetry", "hardware", "engine", "pareto"):
        assert figures[key].spec is not None, (key, figures[key].reason)
    values = figures["hardware"].spec["datasets"]
    fractions = [row["fraction"] for rows in values.values() for row in rows]
    assert fractions and all(0 < f < 1 for f in fractions)
    page = tmp_path / "gpu.html"
    page.write_text(report.html)
    check = check_page(chromium, page, tmp_path / "gpu.png")
    assert_page_clean(check, {"energy-per-token", "telemetry", "hardware", "pareto"}, set())


# --- bad input ----------------------------------------------------------------------------

def test_a_directory_that_is_not_a_run_is_one_line_exit_2(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path}: no run.json here; give a directory made by `harness run`"]
    assert not (tmp_path / "r.html").exists()


def test_a_run_of_an_older_schema_is_one_line_exit_2(tmp_path):
    run = quickstart_copy(tmp_path)
    data = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**data, "schema_version": 1}))
    result = runner.invoke(app, ["report", str(run), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "holds results of schema 1" in result.output


def test_failed_cells_are_shown_failed_with_their_reason(tmp_path):
    points = [factories.point_result("a-b4", "a", 4, 4)]
    failures = [factories.failure("a-b16", "a", 16, [("c4", 4)],
                                  reason="server exited with code 2: out of memory")]
    run = RunStore(factories.write_run(tmp_path / "r", points, failures=failures)).load()
    html = build_report([run]).html
    assert "a-b16: FAILED, 1 points not measured: server exited with code 2: out of memory" in html
    assert "no build-or-buy verdict" in html  # no cost profile: said, not guessed


def test_the_run_writes_its_report_and_a_broken_report_is_one_warning(tmp_path, monkeypatch,
                                                                       capsys):
    from harness.commands import run as run_command

    store = RunStore(quickstart_copy(tmp_path))
    run_command.write_run_report(store)
    assert "vegaEmbed" in (store.root / "report.html").read_text()
    (store.root / "report.html").unlink()

    def broken(runs):
        raise RuntimeError("chart data unreadable\nsecond line")

    monkeypatch.setattr("harness.report.run_report.html.build_report", broken)
    run_command.write_run_report(store)  # returns: the run's exit code is not the page's
    err = capsys.readouterr().err
    assert err.strip() == "warning: no report.html: chart data unreadable"
    assert not (store.root / "report.html").exists()


def test_latency_is_drawn_against_one_kind_of_load(tmp_path):
    points = [factories.point_result("a-b4", "a", 4, 4),
              factories.point_result("a-b4", "a", 4, None, kind="open", rate=2.5)]
    run = RunStore(factories.write_run(tmp_path / "r", points)).load()
    spec = next(f.spec for f in build_report([run]).figures if f.key == "latency")
    rows = [row for rows in spec["datasets"].values() for row in rows if "kind" in row]
    assert rows and {row["kind"] for row in rows} == {"closed"}
    assert "concurrency (requests in flight)" in str(spec)


def test_the_report_renders_in_every_format(tmp_path):
    """One document, five formats: the table's rows in Markdown, summary.csv's rows in CSV
    and JSON, the page; summary.csv rewritten either way."""
    run = tmp_path / "run"
    shutil.copytree(QUICKSTART, run)
    (run / "summary.csv").unlink()
    markdown = runner.invoke(app, ["report", str(run), "--format", "md"])
    assert markdown.exit_code == 0, markdown.output
    assert markdown.stdout.startswith(f"# quickstart ({run})")
    assert "summary.csv was missing: rewritten from the points" in markdown.stderr
    points = len(list(run.glob("cells/*/points/*.json")))
    assert markdown.stdout.count("| bf16 |") + markdown.stdout.count("| fp8-kv |") >= points
    assert "[green]" not in markdown.stdout and "| met |" in markdown.stdout
    rows = json.loads(runner.invoke(app, ["report", str(run), "--format", "json"]).output)
    csv = runner.invoke(app, ["report", str(run), "--format", "csv"]).output
    assert csv == (run / "summary.csv").read_text()
    assert len(rows["runs"][0]["rows"]) == len(pd.read_csv(run / "summary.csv"))
    page = runner.invoke(app, ["report", str(run), "--format", "html"]).output
    assert "Build or buy" in page and "</html>" in page
