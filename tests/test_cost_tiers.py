"""Tiers and model choice: hand-computed tier assignment, shared replicas, blended bills,
what-ifs inside and outside what was measured, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import Profile
from harness.cost.measured import load_results
from harness.cost.tier_flat import tier_frame
from harness.cost.tiers import build_tier_answer

from .factories import manifest, metrics, point_result, write_run

DAY = date(2026, 11, 26)
REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "results" / "quickstart-cpu-2vcpu"

# At 3:1 the cheap API costs (3 x 0.4 + 1.6) / 4 = $0.70 per Mtok, the big one $3.50.
PRICES = {"apis": [
    {"name": "cheap-api", "input_mtok": 0.4, "output_mtok": 1.6, "source": "test",
     "checked": "2026-11-01"},
    {"name": "big-api", "input_mtok": 2.0, "output_mtok": 8.0, "source": "test",
     "checked": "2026-11-01"}]}
MODELS = {"small": "org/small-8b", "large": "org/large-70b"}


@pytest.fixture()
def prices_file(tmp_path) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(PRICES))
    return path


@pytest.fixture()
def book(prices_file):
    return load_price_book(prices_file, DAY)


def chat_point(variant: str, total: float, workload: str | None = None, **more):
    """Requests of 300 in / 100 out: `total` tok/s is total / 400 requests a second."""
    output = total / 4
    cell = f"{variant}-{workload}-b8" if workload else f"{variant}-b8"
    return point_result(cell, variant, 8, 8, metrics(total, output, ttft_p95=100),
                        workload=workload, **more)


def rag_point(variant: str):
    """Requests of 3,000 in / 100 out at 2 a second: 6,200 tok/s."""
    return point_result(f"{variant}-rag-b8", variant, 8, 8,
                        metrics(6200, 200, duration_s=50, ttft_p95=100), workload="rag")


def run(root: Path, points: list, variants=("small", "large"), models=MODELS,
        workloads: dict | None = None) -> Path:
    matrix = {"variants": {v: {"model": models[v]} for v in variants}}
    if workloads:
        matrix["workloads"] = workloads
    return write_run(root, points, manifest(usd_per_hour=2.0, config={"matrix": matrix}))


def profile(**changes) -> Profile:
    """10 requests a second at 2x peak: easy 8 (3,200 tok/s), hard 2 (800 tok/s)."""
    base = {"traffic": {"requests_per_s": 10, "peak_to_average": 2},
            "slo": {"ttft_p95_ms": 500},
            "tiers": [{"name": "easy", "share": 0.8, "input_tokens": 300, "output_tokens": 100,
                       "served_by": ["small", "large", "cheap-api", "big-api"]},
                      {"name": "hard", "share": 0.2, "input_tokens": 300, "output_tokens": 100,
                       "served_by": ["large", "big-api"]}]}
    base.update(changes)
    return Profile.model_validate(base)


def test_mixing_tiers_beats_every_single_option(tmp_path, book):
    # small: 4,000 tok/s a replica, large: 2,000; $2/h a machine = $1,460 a month.
    # easy on small: ceil(6,400 / 4,000) = 2 replicas, $2,920; hard on large: ceil(1,600 /
    # 2,000) = 1, $1,460: the mix is $4,380. Everything on large shares one pool:
    # ceil(6,400 / 2,000 + 1,600 / 2,000) = ceil(4.0) = 4 replicas (not 4 + 1), $5,840.
    # cheap-api on easy: 8,409.6 Mtok x $0.70 = $5,886.72; big-api for all: 10,512 Mtok x
    # $3.50 = $36,792.
    root = run(tmp_path / "run", [chat_point("small", 4000), chat_point("large", 2000)])
    answer = build_tier_answer([load_results(root)], profile(), book)
    mixed = answer.mixed
    assert mixed.who("easy") == "small" and mixed.who("hard") == "large"
    assert mixed.usd_per_month == pytest.approx(4380)
    easy_api = next(o for o in answer.options_of("easy") if o.name == "cheap-api")
    assert easy_api.alone_usd_per_month == pytest.approx(5886.72)
    plans = {p.name: p for p in answer.singles}
    large = plans["all on large"]
    (pool,) = large.pools
    assert pool.replicas == 4 and pool.usd_per_month == pytest.approx(5840)
    assert pool.utilization == pytest.approx(4000 / 2000 / 4)
    # the pool's bill split by each tier's peak in replicas: 3.2 and 0.8 of 4
    assert [s.usd_per_month for s in large.served] == pytest.approx([4672, 1168])
    assert plans["all on big-api"].usd_per_month == pytest.approx(36792)
    assert not plans["all on small"].good_for_all and plans["all on small"].not_for == ("hard",)
    c = answer.comparison
    assert c.mixing_wins and c.best_single.name == "all on large"
    assert c.saves_usd_per_month == pytest.approx(1460)
    assert c.cheapest_api.name == "all on big-api"
    rows = tier_frame(answer, "tiers").set_index("tier")
    assert rows.loc["easy", "bill_share"] == pytest.approx(2920 / 4380)
    assert rows.loc["hard", "served_on"] == "large"


def test_mixing_does_not_pay_when_the_best_model_serves_all_for_less(tmp_path, book):
    # small at 2,000 tok/s: easy alone on it needs 4 replicas ($5,840) and hard 1 more on
    # large: $7,300; both tiers on large share 4 replicas: $5,840, the cheapest of all.
    root = run(tmp_path / "run", [chat_point("small", 2000), chat_point("large", 2000)])
    answer = build_tier_answer([load_results(root)], profile(), book)
    assert answer.mixed.assignment() == ("large", "large")
    assert answer.mixed.usd_per_month == pytest.approx(5840)
    (pool,) = answer.mixed.pools
    assert pool.tiers == ("easy", "hard") and pool.replicas == 4
    assert not answer.comparison.mixing_wins
    assert answer.comparison.saves_usd_per_month == pytest.approx(0)
    assert any(c.code == "shared_replicas" for c in answer.caveats)


def test_shares_of_a_token_volume_give_the_same_requests(tmp_path, book):
    # 10 requests/s of 400 tokens = 345.6 M tokens a day
    root = run(tmp_path / "run", [chat_point("small", 4000), chat_point("large", 2000)])
    answer = build_tier_answer([load_results(root)], profile(
        traffic={"tokens_per_day": 345_600_000, "peak_to_average": 2}), book)
    assert [t.requests_per_s for t in answer.tiers] == pytest.approx([8, 2])
    assert answer.mixed.usd_per_month == pytest.approx(4380)


def test_the_mix_changes_when_a_tier_share_moves(tmp_path, book):
    root = run(tmp_path / "run", [chat_point("small", 4000), chat_point("large", 2000)])
    answer = build_tier_answer([load_results(root)], profile(), book)
    easy = next(row for row in answer.sensitivity if row.input == "share of easy")
    assert easy.base == pytest.approx(0.8) and easy.changes_at is not None
    # the cheapest mix is found again at the new value: it is no dearer than the base's
    # assignment priced there
    assert easy.changes_to != "easy: small; hard: large"
    volume = next(row for row in answer.sensitivity if row.input == "traffic volume")
    assert volume.mixed_usd_month_at_base == pytest.approx(4380)


def two_workloads(tmp_path: Path) -> Path:
    workloads = {"chat": {"input_tokens": 300, "output_tokens": 100},
                 "rag": {"input_tokens": 3000, "output_tokens": 100}}
    return run(tmp_path / "run", [chat_point("large", 4000, "chat"), rag_point("large")],
               variants=("large",), workloads=workloads)


def docs_profile(*what_if: dict) -> Profile:
    return Profile.model_validate({
        "traffic": {"requests_per_s": 1}, "slo": {"ttft_p95_ms": 500},
        "tiers": [{"name": "docs", "share": 1.0, "workload": "rag", "served_by": ["large"]}],
        "what_if": list(what_if)})


def test_a_what_if_inside_the_measured_range_interpolates(tmp_path, book):
    # chat: 10 req/s at 300 in / 100 out; rag: 2 req/s at 3,000 in / 100 out. Prompts half as
    # long (1,500 in): 10 + (2 - 10) x (1,500 - 300) / 2,700 = 6.444 req/s, x 1,600 tokens =
    # 10,311 tok/s.
    answer = build_tier_answer([load_results(two_workloads(tmp_path))],
                               docs_profile({"name": "half", "input_scale": 0.5}), book)
    (docs,) = answer.tiers
    assert (docs.input_tokens, docs.output_tokens) == (3000, 100)
    fit = answer.options_of("docs")[0].best_fit
    assert fit.how == "measured" and fit.tps == pytest.approx(6200)
    (half,) = answer.what_ifs
    assert not half.outside_measured
    assert "interpolated between chat (300 in / 100 out) and rag (3,000 in / 100 out)" \
        in half.basis[0]
    model_fit = _fit_at(answer, tmp_path, book, 1500)
    assert model_fit.tps == pytest.approx((10 + (2 - 10) * 1200 / 2700) * 1600)


def _fit_at(answer, tmp_path, book, inputs: int):
    profile = Profile.model_validate({
        "traffic": {"requests_per_s": 1}, "slo": {"ttft_p95_ms": 500},
        "tiers": [{"name": "docs", "share": 1.0, "input_tokens": inputs, "output_tokens": 100,
                   "served_by": ["large"]}]})
    found = build_tier_answer([load_results(tmp_path / "run")], profile, book)
    return found.options_of("docs")[0].best_fit


def test_a_what_if_outside_the_measured_range_says_so(tmp_path, book):
    # 6,000 in / 100 out is past rag: rag's 6,000 + 200 tok/s converted to 60:1 with R = 4:
    # (6,000 / 4 + 200) x 61 / (60 / 4 + 1) = 6,481.25 tok/s.
    answer = build_tier_answer([load_results(two_workloads(tmp_path))],
                               docs_profile({"name": "double", "input_scale": 2.0}), book)
    (double,) = answer.what_ifs
    assert double.outside_measured
    assert "outside what was measured (input 300-3,000 tokens)" in double.basis[0]
    assert any(c.code == "what_if_outside_measured" for c in answer.caveats)
    assert _fit_at(answer, tmp_path, book, 6000).tps == pytest.approx(6481.25)


def test_several_runs_one_per_model(tmp_path, book):
    small = run(tmp_path / "a", [chat_point("small", 4000)], variants=("small",))
    large = run(tmp_path / "b", [chat_point("large", 2000)], variants=("large",))
    answer = build_tier_answer([load_results(small), load_results(large)], profile(), book)
    assert answer.mixed.assignment() == ("small", "large")
    assert answer.mixed.usd_per_month == pytest.approx(4380)


# --- the command line --------------------------------------------------------------------

runner = CliRunner()


def cost(*args) -> tuple[int, str]:
    result = runner.invoke(app, ["cost", *[str(a) for a in args]])
    return result.exit_code, result.output


def write_profile(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def raw_profile(**changes) -> dict:
    return json.loads(profile(**changes).model_dump_json(exclude_none=True))


def test_the_command_prints_json_csv_and_a_page(tmp_path, prices_file):
    root = run(tmp_path / "run", [chat_point("small", 4000), chat_point("large", 2000)])
    path = write_profile(tmp_path, raw_profile())
    code, out = cost(root, "--profile", path, "--prices", prices_file, "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert data["comparison"]["mixed_usd_per_month"] == pytest.approx(4380)
    assert data["comparison"]["assignment"] == {"easy": "small", "hard": "large"}
    assert {row["plan"] for row in data["plans"]} >= {"cheapest mix", "all on large"}
    code, out = cost(root, "--profile", path, "--prices", prices_file, "--format", "csv",
                     "--table", "plans")
    assert code == 0 and out.startswith("plan,plan_kind,plan_usd_per_month")
    code, out = cost(root, "--profile", path, "--prices", prices_file, "--format", "html")
    assert code == 0 and "<svg class=tier-bars" in out and "all on large" in out
    code, out = cost(root, "--profile", path, "--prices", prices_file)
    assert code == 0 and "Cheapest mix: $4,380 a month" in out
    assert "Bills a month, stacked by tier" in out


def one_line_error(code: int, out: str, expected: str) -> None:
    assert code == 2, out
    assert len([line for line in out.splitlines() if line.strip()]) == 1, out
    assert out.startswith("error:") and expected in out.replace("\n", ""), out


@pytest.mark.parametrize("change, expected", [
    (lambda p: p["tiers"][0].update(share=0.7), "the shares sum to 0.9, not 1"),
    (lambda p: p["tiers"][0].update(workload="nope"), "workload 'nope' is not in the runs"),
    (lambda p: p["tiers"][1].update(served_by=["huge"]),
     "served_by 'huge' is no variant or model of the runs (large, small)"),
    (lambda p: p["tiers"][1].update(served_by=["llama-9b"]), "unknown API 'llama-9b'"),
    (lambda p: p["tiers"][0].pop("share"), "exactly one of share, requests_per_s"),
])
def test_bad_tiers_are_one_line_and_exit_2(tmp_path, prices_file, change, expected):
    root = run(tmp_path / "run", [chat_point("small", 4000), chat_point("large", 2000)])
    raw = raw_profile()
    change(raw)
    code, out = cost(root, "--profile", write_profile(tmp_path, raw), "--prices", prices_file)
    one_line_error(code, out, expected)


def test_one_variant_name_for_two_models_is_refused(tmp_path, prices_file):
    a = run(tmp_path / "a", [chat_point("large", 2000)], variants=("large",))
    b = run(tmp_path / "b", [chat_point("large", 2000)], variants=("large",),
            models={"large": "org/other-70b"})
    code, out = cost(a, b, "--profile", write_profile(tmp_path, raw_profile()), "--prices",
                     prices_file)
    one_line_error(code, out, "variant 'large' serves org/large-70b in")


def test_several_runs_need_tiers(tmp_path):
    copy = tmp_path / "qs"
    shutil.copytree(QUICKSTART, copy)
    code, out = cost(copy, copy, "--profile", REPO / "configs" / "profile-example.yaml")
    one_line_error(code, out, "only for a profile with `tiers`")


def test_the_example_run_with_the_example_tier_profile(tmp_path):
    copy = tmp_path / "qs"
    shutil.copytree(QUICKSTART, copy)
    raw = {"traffic": {"requests_per_s": 20, "peak_to_average": 2},
           "slo": {"ttft_p95_ms": 500},
           "tiers": [{"name": "lookup", "share": 0.7, "served_by": ["fp8-kv", "llama-3.1-8b"]},
                     {"name": "reasoning", "share": 0.3, "input_tokens": 512,
                      "output_tokens": 64, "served_by": ["bf16", "frontier-small"]}]}
    code, out = cost(copy, "--profile", write_profile(tmp_path, raw), "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert {row["tier"] for row in data["tiers"]} == {"lookup", "reasoning"}
    assert any(c["code"] == "outside_measured" for c in data["caveats"])


def test_the_run_page_shows_the_tiers_of_its_profile(tmp_path):
    copy = tmp_path / "qs"
    shutil.copytree(QUICKSTART, copy)
    raw = {"traffic": {"requests_per_s": 20, "peak_to_average": 2}, "slo": {"ttft_p95_ms": 500},
           "tiers": [{"name": "lookup", "share": 0.6, "served_by": ["fp8-kv", "llama-3.1-8b"]},
                     {"name": "long", "share": 0.4, "input_tokens": 400, "output_tokens": 32,
                      "served_by": ["bf16"]}]}
    profile_path = write_profile(tmp_path, raw)
    manifest_path = copy / "run.json"
    stored = json.loads(manifest_path.read_text())
    stored["config"]["cost"]["profile"] = str(profile_path)
    manifest_path.write_text(json.dumps(stored, indent=2))
    page = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(copy), "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "Tiers and model choice" in html and "<svg class=tier-bars" in html
    assert "all on bf16" in html and "lookup" in html
