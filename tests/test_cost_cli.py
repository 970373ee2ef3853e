"""`harness cost` and `harness prices` on the command line: output, dates, bad input."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.cost.answer import build_answer
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import load_profile
from harness.cost.measured import load_results

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "results" / "quickstart-cpu-2vcpu"
EXAMPLE_PROFILE = REPO / "configs" / "profile-example.yaml"

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def run_date() -> str:
    """The day the example run started (its rented price is dated by it)."""
    return json.loads((Path(QUICKSTART) / "run.json").read_text())["started_at"][:10]


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


def test_register_adds_both_commands():
    result = invoke("--help")
    assert result.exit_code == 0 and "cost" in result.output and "prices" in result.output
    for command in ("cost", "prices"):
        assert invoke(command, "--help").exit_code == 0


def test_cost_on_the_quickstart_prints_the_answer_with_dated_prices():
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--price-date",
                    "2026-11-26", "--detail")
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in ("Self-hosted", "Hosted APIs", "Build or buy", "machines for peak",
                     "groq:llama-3.1-8b-instant", "openai:gpt-5-mini", "bf16", "fp8-kv",
                     "prices in force on 2026-11-26", "llama-3.1-8b checked 2026-11-26",
                     "cost.usd_per_hour in configs/quickstart.yaml",
                     f"the price set for the run of {run_date()}",
                     "capacity search, search bracket ",
                     "tiny random-weight model", "What flips the decision",
                     "owned: left out: the run had no GPU"):
        assert expected in out, expected
    assert "owned $/mo" not in out  # per-GPU owned inputs are not applied to a CPU machine


def test_the_answer_leads_with_the_decision_and_fits_a_terminal():
    result = runner.invoke(app, ["cost", str(QUICKSTART), "--profile", str(EXAMPLE_PROFILE)],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # a tiny random-weight model on a CPU (a critical caveat): no verdict to act on
    assert lines[3].startswith("bf16: indicative only: the run served dummy:tiny")
    assert lines[4].startswith("  cheapest as measured: self-hosted (rented), $219.00 a month")
    assert lines[5].startswith("  runner-up: API ")
    decision = lines[1:lines.index("Caveats that matter:")]  # the title holds the paths
    assert max(len(line) for line in decision) <= 120, decision
    assert any("rests on: " in line and "dummy_model" in line for line in lines)
    # the committed run searched every cell: its capacity is verified under open-loop arrivals
    assert any(", capacity search, search bracket " in line for line in lines)
    assert "--detail" in result.output and "Hosted APIs" not in result.output
    assert len(lines) < 30


def test_api_prices_default_to_today():
    today = datetime.now(UTC).date().isoformat()
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE)
    assert result.exit_code == 0, result.output
    assert f"prices in force on {today}" in result.output


def test_machine_readable_answer_carries_the_dates():
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--price-date",
                    "2026-11-26", "--format", "csv")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.output))
    assert set(frame["variant"]) == {"bf16", "fp8-kv"}
    assert (frame["api_prices_as_of"] == "2026-11-26").all()
    assert frame["rented_price_dated"].str.contains(run_date()).all()
    assert frame["api_tier_checked"].notna().all()
    assert {"rented_usd_per_month", "api_usd_per_month", "rented_break_even_utilization",
            "rented_cheaper", "rented_caveats", "rented_break_even_ranges",
            "capacity_source", "capacity_n"} <= set(frame.columns)
    assert frame["rented_caveats"].str.contains("dummy_model").all()
    assert (frame["capacity_source"] == "capacity search").all()
    caveats = pd.read_csv(io.StringIO(invoke(
        "cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--format", "csv", "--table",
        "caveats").output))
    assert list(caveats.columns[:3]) == ["code", "text", "severity"]
    assert {"dummy_model", "no_gpu"} <= set(caveats["code"])


def test_json_answer_carries_capacity_caveats_price_dates_ranges_and_sensitivity():
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--format", "json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert all("api_prices_as_of" in row for row in answer["verdicts"])
    for variant in answer["capacity"]:
        assert variant["capacity_source"] == "capacity search" and variant["capacity_n"] >= 100
        assert variant["capacity_verified"] is True
    caveats = {c["code"]: c for c in answer["caveats"]}
    assert caveats["no_gpu"]["severity"] == "warning"
    assert caveats["dummy_model"]["severity"] == "critical"
    assert set(caveats["no_gpu"]) == {"code", "text", "severity", "variant", "side", "api"}
    prices = answer["prices"]
    assert prices and all(p["data_date"] and p["age_days"] is not None for p in prices)
    assert {p["kind"] for p in prices} == {"rented", "api"}
    assert answer["break_even_ranges"] and answer["sensitivity"]
    assert {row["input"] for row in answer["sensitivity"]} >= {
        "rented $/h per replica", "measured capacity", "peak-to-average", "cached input share"}
    assert answer["decision"][0]["cheapest"].startswith("self-hosted (rented)")
    assert answer["decision"][0]["indicative"] == ("indicative only: the run served dummy:tiny, "
                                                   "a tiny random-weight model")
    # what the terminal shows is in the JSON too: the traffic's volume, the severity behind
    # each decision
    assert round(answer["demand"]["traffic_mtok_month"]) == 12_167
    assert answer["demand"]["traffic_tokens_per_day"] == pytest.approx(400_000_000)
    assert answer["decision"][0]["caveat_severity"] == "critical"
    assert "owned_inputs" in answer


def test_an_old_price_date_warns_in_every_format():
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--price-date",
                    "2030-01-01", "--format", "json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    stale = [c for c in answer["caveats"] if c["code"] == "price_stale"]
    assert stale and all(c["severity"] == "warning" for c in stale)
    assert all(p["in_force_on"] == "2030-01-01" and p["stale"] for p in answer["prices"]
               if p["kind"] == "api")
    assert all("price_stale" in row["rented_caveats"] for row in answer["verdicts"])
    table = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--price-date",
                   "2030-01-01")
    assert "price_stale" in table.output and "prices in force on 2030-01-01" in table.output


def test_points_list_every_measured_point():
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--points",
                    "--format", "csv")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.output))
    points = len(list(Path(QUICKSTART).glob("cells/*/points/*.json")))
    assert len(frame) == points and frame["usd_per_mtok_output"].notna().all()
    table = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--points")
    assert table.exit_code == 0 and "Measured points" in table.output


def test_no_point_meeting_the_slo_is_said(tmp_path):
    path = tmp_path / "strict.yaml"
    raw = yaml.safe_load(EXAMPLE_PROFILE.read_text())
    raw["slo"] = {"ttft_p95_ms": 1}
    path.write_text(yaml.safe_dump(raw))
    result = invoke("cost", QUICKSTART, "--profile", path)
    assert result.exit_code == 0, result.output
    assert "no point meets the SLO; closest: batch" in result.output
    assert "no measured point meets the SLO" in result.output
    assert "bf16: no capacity at this SLO" in result.output
    answer = json.loads(invoke("cost", QUICKSTART, "--profile", path, "--format", "json").output)
    assert {row["cheapest"] for row in answer["decision"]} == {"no capacity at this SLO"}
    assert all(row["capacity_tps"] is None for row in answer["capacity"])


def write_profile(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(EXAMPLE_PROFILE.read_text())
    change(raw)
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("change, expected", [
    (lambda p: p["traffic"].update(tokens_per_dya=1), "traffic.tokens_per_dya: unknown key"),
    (lambda p: p["traffic"].update(requests_per_s=3), "exactly one of `tokens_per_day`"),
    (lambda p: p["traffic"].update(peak_to_average=0.5), "traffic.peak_to_average"),
    (lambda p: p["own"].update(years=100), "own.years"),
    (lambda p: p["own"].update(cost_of_capital=1.5), "own.cost_of_capital"),
    (lambda p: p["own"].update(usd_per_kwh=0), "own.usd_per_kwh"),
    (lambda p: p["own"].update(capex_per_gpu_usd=-5), "own.capex_per_gpu_usd"),
    (lambda p: p["slo"].update(ttft_p95=500), "slo: unknown SLO 'ttft_p95'"),
    (lambda p: p.update(gpu="H1000"), "unknown GPU 'H1000' (did you mean H100"),
    (lambda p: p.update(apis=["llama-3.1-8"]), "unknown API 'llama-3.1-8' (did you mean"),
])
def test_bad_profile_is_one_line_and_exit_2(tmp_path, change, expected):
    result = invoke("cost", QUICKSTART, "--profile", write_profile(tmp_path, change))
    assert result.exit_code == 2, result.output
    assert len(error_lines(result)) == 1 and expected in result.output.replace("\n", "")
    assert result.output.startswith("error:")


@pytest.mark.parametrize("text, expected", [
    (None, "no such profile file"),
    ("traffic: [1, 2\n", "invalid YAML"),
    ("- a list\n", "expected a mapping"),
])
def test_missing_or_malformed_profile(tmp_path, text, expected):
    path = tmp_path / "profile.yaml"
    if text is not None:
        path.write_text(text)
    result = invoke("cost", QUICKSTART, "--profile", path)
    assert result.exit_code == 2 and expected in result.output
    assert len(error_lines(result)) == 1


def test_other_bad_input(tmp_path):
    for args, expected in [
        (("cost", tmp_path), "no run.json"),
        (("cost", QUICKSTART, "--price-date", "26/11/2026"), "--price-date"),
        (("cost", QUICKSTART, "--prices", tmp_path / "nope.yaml"), "no such price file"),
        (("prices", "--gpu", "B300x"), "unknown GPU 'B300x'"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output and len(error_lines(result)) == 1


def test_prices_lists_gpu_and_api_prices_with_dates():
    result = invoke("prices", "--price-date", "2026-11-26")
    assert result.exit_code == 0, result.output
    for expected in ("GPU rental", "Hosted APIs", "H100", "B200", "L40S", "A100-80GB",
                     "SkyPilot catalog", "2026-11-26", "genai-prices", "frontier-large"):
        assert expected in result.output, expected
    only_gpu = invoke("prices", "--gpu", "H200", "--format", "json")
    data = json.loads(only_gpu.output)
    assert data["apis"] == [] and {row["gpu"] for row in data["gpus"]} == {"H200"}
    only_api = invoke("prices", "--api", "llama-3.1-8b", "--format", "csv")
    frame = pd.read_csv(io.StringIO(only_api.output))
    assert set(frame["kind"]) == {"api"} and frame["prices_as_of"].notna().all()


def test_a_refresh_that_cannot_reach_the_network_keeps_the_bundled_data():
    result = CliRunner().invoke(app, ["prices", "--api", "llama-3.1-8b", "--refresh",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    if "could not refresh" in result.stderr:   # no network: a warning, the bundled data used
        assert result.stderr.startswith("warning: could not refresh the genai-prices data (")
    apis = json.loads(result.stdout)["apis"]
    assert apis and all(row["data_date"] for row in apis)


def test_points_say_what_was_measured():
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--points", "--format",
                    "csv")
    frame = pd.read_csv(io.StringIO(result.output))
    kinds = dict(zip(frame["point"], frame["measured_at"], strict=False))
    assert kinds["peak"] == "at offered load"
    closed = frame[frame["kind"] == "closed"]
    saturated = closed["concurrency"] >= closed["max_num_seqs"]
    assert (closed[saturated]["measured_at"] == "at saturation").all()
    assert (closed[~saturated]["measured_at"].str.startswith("at concurrency")).all()
    table = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--points")
    assert "at full load" not in table.output and "at saturation" in table.output


def test_owned_machines_need_per_machine_inputs(tmp_path):
    path = write_profile(tmp_path, lambda p: p["own"].update(per="machine", capex_per_gpu_usd=3000,
                                                             server_share_per_gpu_usd=0,
                                                             power_w_per_gpu=150))
    answer = json.loads(invoke("cost", QUICKSTART, "--profile", path, "--format", "json").output)
    assert all(row["owned_usd_per_month"] > 0 for row in answer["verdicts"])
    assert "owned_left_out" not in {c["code"] for c in answer["caveats"]}
    assert "power_assumed" in answer["verdicts"][0]["owned_caveats"]
    per_gpu = json.loads(invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--format",
                                "json").output)
    assert "owned_left_out" in {c["code"] for c in per_gpu["caveats"]}
    assert "owned_usd_per_month" not in per_gpu["verdicts"][0]


def test_bad_prices_are_one_line_and_exit_2(tmp_path):
    on_h100 = write_profile(tmp_path, lambda p: p.update(gpu="H100"))
    reserved = tmp_path / "reserved.yaml"
    reserved.write_text(on_h100.read_text().replace("tier: on-demand", "tier: reserved"))
    no_price = tmp_path / "prices.yaml"
    no_price.write_text(yaml.safe_dump({"apis": [{"name": "mine", "input_mtok": 1,
                                                  "source": "s", "checked": "2026-01-01"}]}))
    negative = tmp_path / "negative.yaml"
    negative.write_text(yaml.safe_dump({"gpus": [
        {"gpu": "H100", "provider": "x", "tier": "on-demand", "usd_per_gpu_hour": -2,
         "source": "s", "checked": "2026-01-01"}]}))
    for args, expected in [
        (("--profile", on_h100, "--price-date", "2020-01-01"),
         "--price-date 2020-01-01: before any H100 on-demand price"),
        (("--profile", reserved), "no H100 price at tier 'reserved'"),
        (("--profile", EXAMPLE_PROFILE, "--prices", no_price),
         "apis.0.output_mtok: Field required"),
        (("--profile", EXAMPLE_PROFILE, "--prices", negative), "gpus.0.usd_per_gpu_hour"),
        (("--profile", EXAMPLE_PROFILE, "--format", "csv", "--table", "nope"), "--table: 'nope'"),
    ]:
        result = invoke("cost", QUICKSTART, *args)
        assert result.exit_code == 2, (args, result.output)
        assert len(error_lines(result)) == 1 and expected in result.output, result.output


class PageTables(HTMLParser):
    """A page's section headings and tables (class, rows of cell texts)."""

    def __init__(self, html: str):
        super().__init__()
        self.headings: list[str] = []
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._text: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append((dict(attrs).get("class") or "", []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th", "h2"):
            self._text = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][1][-1].append(" ".join("".join(self._text).split()))
        elif tag == "h2":
            self.headings.append("".join(self._text))
        if tag in ("td", "th", "h2"):
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def table(self, header: str) -> list[list[str]]:
        """The rows (header first) of the table whose first header cell is `header`."""
        return next(rows for _, rows in self.tables if rows and rows[0][0] == header)


def markdown_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with `| header |`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    assert set(lines[start + 1]) <= {"|", "-"}
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def quickstart_answer():
    profile = load_profile(EXAMPLE_PROFILE)
    book = load_price_book(max_age_days=profile.max_price_age_days)
    return build_answer(load_results(QUICKSTART), profile, book)


def test_the_answer_in_markdown_holds_the_decision_and_every_table():
    answer = quickstart_answer()
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--format", "md")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("# Build or buy: ") and out.endswith("\n")
    for decision in answer.decision:
        assert f"- **{decision.variant}: {decision.indicative}**" in out
        assert f"  - cheapest as measured: {decision.cheapest}, " in out
        assert f"  - rests on: {decision.caveat_codes.replace('; ', ', ')}" in out
    for title in ("Self-hosted", "Hosted APIs", "Build or buy (a month of this traffic)",
                  "What flips the decision"):
        assert f"**{title}" in out
    assert [row[0] for row in markdown_rows(out, "variant | capacity at SLO from")] == [
        v.variant for v in answer.variants]
    assert [row[0] for row in markdown_rows(out, "API | tier")] == [a.name for a in answer.apis]
    verdicts = markdown_rows(out, "variant | API | API $/mo")
    assert [(row[0], row[1]) for row in verdicts] == [
        (v.variant.variant, v.api.name) for v in answer.verdicts]
    assert len(markdown_rows(out, "variant | side | input")) == len(answer.sensitivity)
    assert all(line in out for line in answer.prices_used)


def test_the_answer_as_a_page_parses_and_holds_the_decision():
    answer = quickstart_answer()
    result = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--format", "html")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<!DOCTYPE html>") and "</html>" in result.output
    page = PageTables(result.output)
    assert page.headings[0] == "Decision" and "The whole answer" in page.headings
    decision = page.table("variant")[1:]
    assert [row[:2] for row in decision] == [
        [d.variant, f"{d.indicative}as measured: {d.cheapest}"] for d in answer.decision]
    assert all(f"{d.usd_per_month:,.2f}" in row[2] for d, row in zip(answer.decision, decision,
                                                                        strict=True))
    whole = [rows for _, rows in page.tables if rows[0][:3] == ["variant", "API", "API $/mo"]]
    assert len(whole) == 1 and len(whole[0]) == len(answer.verdicts) + 1
    assert "<pre class=answer>" not in result.output   # tables, not a recorded console


def test_points_in_markdown_and_html(tmp_path):
    points = len(list(Path(QUICKSTART).glob("cells/*/points/*.json")))
    md = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--points", "--format", "md")
    assert md.exit_code == 0, md.output
    assert md.output.startswith("# Measured points")
    rows = markdown_rows(md.output, "variant | batch | load")
    assert len(rows) == points and all(row[4] in ("yes", "no") or row[4].startswith("no ")
                                       for row in rows)
    html = invoke("cost", QUICKSTART, "--profile", EXAMPLE_PROFILE, "--points", "--format",
                  "html")
    assert html.exit_code == 0, html.output
    assert len(PageTables(html.output).table("variant")) == points + 1


def test_prices_in_markdown_and_html():
    md = invoke("prices", "--gpu", "H100", "--format", "md")
    assert md.exit_code == 0, md.output
    gpus = json.loads(invoke("prices", "--gpu", "H100", "--format", "json").output)["gpus"]
    rows = markdown_rows(md.output, "GPU | provider | tier")
    assert [(r[0], r[1], r[2]) for r in rows] == [(g["gpu"], g["provider"], g["tier"])
                                                  for g in gpus]
    assert "Hosted APIs" not in md.output   # only the GPU asked for
    html = invoke("prices", "--api", "llama-3.1-8b", "--format", "html")
    assert html.exit_code == 0, html.output
    page = PageTables(html.output)
    apis = json.loads(invoke("prices", "--api", "llama-3.1-8b", "--format", "json").output)
    assert page.headings == ["Hosted APIs ($ per million tokens)"]
    assert [row[1] for row in page.table("tier")[1:]] == [
        row["api"] + (" (tiered by prompt length)" if row["tiered_by_prompt_length"] else "")
        for row in apis["apis"]]


@pytest.mark.parametrize("width", [80, 120])
def test_no_number_of_the_detailed_answer_is_cut(width):
    import os
    import re
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "harness", "cost", str(QUICKSTART),
                             "--profile", str(EXAMPLE_PROFILE), "--detail"], capture_output=True,
                            text=True, env={**os.environ, "COLUMNS": str(width)})
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= width
    assert "$699.58" in result.stdout and "$0.003571/$0.018" in result.stdout
    assert not re.search(r"\d\n\s*[│|]?\s*\.?\d", result.stdout)  # no number folded in two
