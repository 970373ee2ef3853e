"""The charts of a page of several runs, read from the Vega specs the page embeds: every run has
one colour and one shape in every chart, the values drawn are the points' own (never two runs
added up), the SLO's own percentile is drawn with its limit, the Pareto chart has its
frontier, each point has its TTFT and ITL histograms, and the page fits 1366 and 390 px."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.report.charts import frontier
from harness.report.comparison.deltas import distinct_names
from harness.report.distributions import histogram_frame
from harness.report.frames import series_label
from harness.report.run_report.html import build_report
from harness.store.run_store import RunStore
from tests.browser import check_page
from tests.test_compare import rerun
from tests.test_compare_decision import changed_run, compare
from tests.test_report_html import QUICKSTART, quickstart_copy

RUNS = ["quickstart-cpu-2vcpu", "busier"]


def busier_run(tmp_path: Path) -> Path:
    """A rerun whose bf16 batch-4 profile point served 1.5x the tokens in its peak phase and
    whose engine ran 1.5x the sequences there: values a sum of the runs would not give."""
    run = rerun(tmp_path, "busier")
    path = run / "cells" / "bf16-b4" / "points" / "peak.json"
    data = json.loads(path.read_text())
    data["phases"]["peak"]["metrics"]["output_throughput"] *= 1.5
    data["server"]["engine"]["running_max"] = 6
    path.write_text(json.dumps(data))
    return run


def embedded_specs(html: str) -> dict[str, dict]:
    """The chart specs the page draws, as its script holds them."""
    found = re.search(r"<script type='application/json' id='chart-specs'>(.*?)</script>", html,
                      re.S)
    return {key.removeprefix("chart-"): spec
            for key, spec in json.loads(found.group(1).replace("<\\/", "</")).items()}


def walk(spec: object):
    """Every dict inside a spec."""
    if isinstance(spec, dict):
        yield spec
        for value in spec.values():
            yield from walk(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from walk(value)


def rows(spec: dict) -> list[dict]:
    return [row for dataset in spec.get("datasets", {}).values() for row in dataset]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[str, list]:
    tmp = tmp_path_factory.mktemp("runs")
    runs = distinct_names([RunStore(QUICKSTART).load(), RunStore(busier_run(tmp)).load()])
    return build_report(runs).html, runs


def test_every_run_has_one_colour_and_one_shape_in_every_chart(page):
    specs = embedded_specs(page[0])
    scales: dict[str, set] = {"color": set(), "shape": set()}
    for key in ("pareto", "latency", "cost-per-point", "engine", "phases", "fidelity"):
        found = {channel: [enc[channel] for enc in walk(specs[key])
                           if isinstance(enc.get(channel), dict)
                           and enc[channel].get("field") == "run"]
                 for channel in scales}
        for channel, encodings in found.items():
            assert encodings, (key, channel)  # the run is this chart's colour and its shape
            for encoding in encodings:
                assert encoding["scale"]["domain"] == RUNS, (key, encoding)
                assert encoding["title"] == "run"
                scales[channel].add(tuple(encoding["scale"]["range"]))
    assert len(scales["color"]) == 1 and len(scales["shape"]) == 1  # the same in every chart
    colors, shapes = next(iter(scales["color"])), next(iter(scales["shape"]))
    assert len(set(colors)) == 2 and len(set(shapes)) == 2
    for run in RUNS:  # the bill of each run says whose it is
        assert run in json.dumps(specs[f"monthly-bill-{run}"]["vconcat"][0]["title"])


def test_bars_are_each_runs_own_values_never_summed(page):
    html, runs = page
    specs = embedded_specs(html)
    for key in ("phases", "engine", "fidelity"):
        for mark in walk(specs[key]):
            if mark.get("mark") in ("bar", {"type": "bar"}) and "encoding" in mark:
                value = next(mark["encoding"][axis] for axis in ("x", "y")
                             if mark["encoding"].get(axis, {}).get("type") == "quantitative")
                assert value.get("stack", "none") is None, (key, value)
    drawn = {(row["run"], row["phase"]): row["output_throughput"] for row in rows(specs["phases"])
             if row["series"] == "bf16 batch 4"}
    measured = {(run.name, name): phase.metrics.output_throughput for run in runs
                for p in run.points if p.cell == "bf16-b4" and p.point == "peak"
                for name, phase in p.phases.items()}
    assert drawn == pytest.approx(measured)
    assert drawn[("busier", "peak")] == pytest.approx(1.5 * drawn[(RUNS[0], "peak")])
    engine = {(row["run"], row["label"]): row["running_max"] for row in rows(specs["engine"])}
    for run in runs:
        for p in run.points:
            if p.server.engine is not None and p.server.engine.running_max is not None:
                label = f"{series_label(p)} {p.point}"
                assert engine[(run.name, label)] == p.server.engine.running_max
    assert engine[("busier", "bf16 batch 4 peak")] == 6  # not 6 + the first run's 4
    assert max(engine.values()) <= 16  # no bar above max_num_seqs


def test_the_slo_percentile_is_drawn_with_its_limit(page):
    html, runs = page
    specs = embedded_specs(html)
    latency = specs["latency"]
    dashes = [enc["strokeDash"] for enc in walk(latency) if isinstance(enc.get("strokeDash"), dict)
              and enc["strokeDash"].get("field") == "stat"]
    assert dashes and all(d["scale"]["domain"] == ["p50", "p95", "p99"] for d in dashes)
    drawn = {(row.get("metric"), row.get("stat")) for row in rows(latency)}
    assert ("TTFT", "p95") in drawn and ("TPOT", "p95") not in drawn  # the SLO judges TTFT
    p95 = {(row["run"], row["series"], row["load"]): row["ms"] for row in rows(latency)
           if row.get("metric") == "TTFT" and row.get("stat") == "p95"}
    for run in runs:
        for p in run.points:
            if p.kind == "closed":
                assert p95[(run.name, series_label(p), p.concurrency)] == pytest.approx(
                    p.metrics.ttft_ms.p95)
    assert "SLO: TTFT p95 ≤ 500 ms" in json.dumps(latency, ensure_ascii=False)
    phases = specs["phases"]
    assert "TTFT p95 by phase" in json.dumps(phases)
    rules = [m for m in walk(phases) if m.get("mark", {}) == {"type": "rule", "color": "#c0392b",
                                                               "strokeDash": [6, 3],
                                                               "strokeWidth": 1.5}]
    assert rules and rules[0]["encoding"]["y"]["field"] == "limit_ms"
    assert {row["limit_ms"] for row in rows(phases)} == {500.0}


def test_the_pareto_frontier_keeps_only_undominated_points():
    data = pd.DataFrame({"run": ["a"] * 4 + ["b"],
                         "interactivity": [100.0, 200.0, 150.0, 300.0, 100.0],
                         "output_tps_per_gpu": [900.0, 500.0, 400.0, 100.0, 50.0]})
    edge = frontier(data)
    a = edge[edge["run"] == "a"].sort_values("interactivity")
    assert a["interactivity"].tolist() == [100.0, 200.0, 300.0]  # 150 is beaten by 200
    assert edge[edge["run"] == "b"]["output_tps_per_gpu"].tolist() == [50.0]


def test_each_point_has_ttft_and_itl_histograms(tmp_path):
    run = RunStore(quickstart_copy(tmp_path)).load()
    bins = histogram_frame([run])
    point = next(p for p in run.points if p.cell == "bf16-b4" and p.point == "c4")
    label = f"{series_label(point)} {point.point}"
    ttft = bins[(bins["label"] == label) & (bins["metric"] == "TTFT")]
    assert ttft["count"].sum() == point.metrics.completed == point.metrics.ttft_ms.n
    itl = bins[(bins["label"] == label) & (bins["metric"] == "ITL")]
    assert itl["count"].sum() == point.metrics.itl_ms.n
    assert ttft["start"].min() == pytest.approx(
        1000 * 0, abs=point.metrics.ttft_ms.p50)  # starts at the fastest request, below p50
    assert bins["label"].nunique() == len(run.points)


def test_provenance_names_the_workload_and_the_engines_arguments(page):
    html = page[0]
    for fact in ("prompts 128 tokens, outputs 32 tokens, prompt kind text",
                 "poisson (burstiness 1), 48 requests a point",
                 "vllm: max_model_len=512, enforce_eager=True",
                 "dtype=bfloat16, kv_cache_dtype=fp8", "max_num_seqs 4, 16"):
        assert fact in html, fact
    assert "<meta name=viewport content='width=device-width, initial-scale=1'>" in html


def _cut_text(dom: str) -> list[str]:
    """Chart texts that Vega shortened with an ellipsis (a cut label or legend entry)."""
    return [t for t in re.findall(r"<text[^>]*>([^<]*)</text>", dom) if "…" in t]


def test_the_two_run_compare_page_in_chromium(chromium, tmp_path):
    page_file = tmp_path / "compare.html"
    compare(QUICKSTART, changed_run(tmp_path), "--html", page_file)
    check = check_page(chromium, page_file, tmp_path / "compare.png", width=1366)
    assert check.console_errors == [] and check.requests == []
    assert check.page_width <= 1366  # no chart or table makes the page wider than the window
    charts = {c["key"]: c for c in check.charts}
    for key in ("pareto", "latency", "latency-histograms", "cost-per-point", "engine",
                "phases", "fidelity", "monthly-bill-quickstart-cpu-2vcpu", "monthly-bill-cheaper"):
        assert charts[key]["rendered"] and charts[key]["marks"] > 20, charts[key]
    assert _cut_text(check.dom) == []
    assert "The decision, before and after" in check.dom and "-50.0%" in check.dom


def test_the_run_page_at_390_px_in_chromium(chromium, tmp_path):
    page_file = tmp_path / "report.html"
    page_file.write_text(build_report([RunStore(quickstart_copy(tmp_path)).load()]).html)
    check = check_page(chromium, page_file, tmp_path / "phone.png", width=390)
    assert check.console_errors == [] and check.requests == []
    assert check.page_width <= 390  # wide tables and charts scroll inside their own boxes
    assert all(c["rendered"] for c in check.charts if not c["missing"])
    assert _cut_text(check.dom) == []
    assert (tmp_path / "phone.png").stat().st_size > 50_000
