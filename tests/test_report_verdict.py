"""The report's build-or-buy section shows the Answer `harness cost` gives: the decision per
variant, the capacity with its source and n, the caveats by severity, the Answer's break-even
ranges on the bill chart, the sensitivity table, and price dates that are the data's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml

from harness.config.experiment import CostConfig
from harness.cost.answer import build_answer
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import load_profile
from harness.cost.parts import Sensitivity
from harness.report.answer.tables import capacity_label
from harness.report.answer.view import cost_view
from harness.report.charts import break_even_lanes
from harness.report.page import escape
from harness.report.run_report.html import build_report
from harness.store.run_store import RunStore
from tests import factories
from tests.test_cost_answer import search_record, searched
from tests.test_report_html import QUICKSTART, REPO, quickstart_copy

EXAMPLE_PROFILE = REPO / "configs" / "profile-example.yaml"


def quickstart_answer():
    profile = load_profile(EXAMPLE_PROFILE)
    book = load_price_book(max_age_days=profile.max_price_age_days)
    return build_answer(RunStore(QUICKSTART).load(), profile, book)


def spec_rows(report, key: str) -> list[dict]:
    spec = next(f.spec for f in report.figures if f.key == key)
    return [row for rows in spec["datasets"].values() for row in rows]


def decision_rows(html: str) -> list[str]:
    table = re.search(r"<table class='facts decision'>(.*?)</table>", html).group(1)
    return re.findall(r"<tr>(<td>.*?)</tr>", table)


def money(value: float) -> str:
    return f"${value:,.2f}"


def test_the_headline_leads_with_the_decision_per_variant(tmp_path):
    answer = quickstart_answer()
    html = build_report([RunStore(quickstart_copy(tmp_path)).load()]).html
    rows = decision_rows(html)
    assert len(rows) == len(answer.decision) == 2
    for row, decision in zip(rows, answer.decision, strict=True):
        assert f"<b>{decision.variant}</b>" in row
        assert "indicative only: the run served dummy:tiny" in row  # a critical caveat
        assert f"as measured: {decision.cheapest}" in row
        assert money(decision.usd_per_month) in row
        assert decision.runner_up in row
        assert (f"+{money(decision.margin_usd_per_month)} "
                f"({decision.runner_up_over_cheapest:.2f}x)") in row
        # the capacity with its source and n ("unverified: closed loop" styled as a warning)
        capacity = answer.variant(decision.variant).capacity
        style = "info" if capacity.verified else "warning"
        assert f"<span class='badge sev-{style}'>{capacity_label(capacity)}</span>" in row
        assert f"n={decision.capacity.n}" in capacity_label(capacity)
        # every caveat code the decision rests on, the dummy model's as critical
        for code in decision.caveat_codes.split("; "):
            assert f": {code}</span>" in row
        assert "<span class='badge sev-critical' title='the run served dummy:tiny" in row
        assert ">critical: dummy_model</span>" in row
        # a caveat about one variant is explained in that variant's own words
        own = [c for c in answer.caveats if c.variant == decision.variant
               and c.code in decision.caveat_codes]
        # (the committed run's searched capacities leave none for some variants)
        assert all(f"title='{escape(c.text)}'" in row for c in own[:1])
    # every caveat listed, worst first, with its severity
    listed = re.findall(r"<li class=sev-(\w+)><span", html)
    assert listed[0] == "critical" and set(listed) == {"critical", "warning", "info"}
    assert listed == sorted(listed, key=["critical", "warning", "info"].index)


def test_the_whole_answer_on_the_page_is_tables_of_the_answer(tmp_path):
    answer = quickstart_answer()
    html = build_report([RunStore(quickstart_copy(tmp_path)).load()]).html
    whole = html[html.index("<details>"):html.index("</details>")]
    assert "<pre" not in whole   # no recording of the terminal view
    for title in ("Self-hosted", "Hosted APIs ($/Mtok listed: input / cached input / output)",
                  "Build or buy (a month of this traffic)", "All caveats"):
        assert f"<p><b>{escape(title)}</b></p><table class=facts>" in whole
    caveats = whole[whole.index("<p><b>All caveats</b></p>"):]
    caveats = caveats[:caveats.index("</table>")]
    assert re.findall(r"<tr><td>\w+</td><td>(\w+)</td>", caveats) == [
        c.code for c in answer.caveats]
    for decision in answer.decision:
        assert f"<li><b>{decision.variant}: {decision.indicative}</b>" in whole
        assert f"<li>cheapest as measured: {decision.cheapest}, " in whole


def test_the_bill_chart_marks_the_answers_break_even_ranges(tmp_path):
    answer = quickstart_answer()
    report = build_report([RunStore(quickstart_copy(tmp_path)).load()])
    cheapest = min(answer.apis, key=lambda api: api.usd_per_month).name
    expected = [r for r in answer.break_even if r.api == cheapest]
    lanes = [row for row in spec_rows(report, "monthly-bill") if "from_mtok_month" in row]
    assert sorted((r["variant"], r["side"], r["from_mtok_month"]) for r in lanes) == sorted(
        (r.variant, r.side, r.from_mtok_month) for r in expected)
    span = [r["mtok_month"] for r in spec_rows(report, "monthly-bill") if "mtok_month" in r]
    for lane in lanes:   # clipped to the chart; an open-ended range runs to its right edge
        assert min(span) <= lane["start"] < lane["end"] <= max(span)
        if lane["to_mtok_month"] is None:
            assert lane["end"] == max(span)


def test_break_even_lanes_keep_separate_ranges_separate():
    ranges = pd.DataFrame({
        "variant": ["fp8-kv"] * 3, "side": ["rented"] * 3, "api": ["some-api"] * 3,
        "range": [1, 2, 3], "from_mtok_month": [50.0, 2655.0, 5309.0],
        "to_mtok_month": [80.0, 4536.0, None], "contains_this_traffic": [False, False, True],
        "who": ["fp8-kv rented"] * 3})
    chart = break_even_lanes(ranges, 100.0, 1_000_000.0, 12_167.0).to_dict()
    rows = [row for rows in chart["datasets"].values() for row in rows if "start" in row
            and "who" in row]
    # the first range lies below the chart's span: not drawn; the others as they are
    assert [(r["start"], r["end"], r["span"]) for r in rows] == [
        (2655.0, 4536.0, "2,655-4,536"), (5309.0, 1_000_000.0, "5,309+")]
    assert "some-api" in str(chart["title"])


def test_the_sensitivity_table_shows_each_flip_value(tmp_path):
    answer = quickstart_answer()
    html = build_report([RunStore(quickstart_copy(tmp_path)).load()]).html
    table = re.search(r"<table class='facts sensitivity'>(.*?)</table>", html).group(1)
    rows = re.findall(r"<tr>(<td>.*?)</tr>", table)
    assert len(rows) == len(answer.sensitivity) > 0
    for row, knob in zip(rows, answer.sensitivity, strict=True):
        assert f"<td>{knob.input}</td>" in row
        flip = knob.flips_at
        if flip is None:
            assert "no flip in" in row
        elif knob.unit != "share":   # 4 significant digits below 100, else whole numbers
            shown = format(flip, ",.4g" if abs(flip) < 100 else ",.0f")
            assert f"<td class=num>{shown}</td>" in row
        low = knob.minus_api_usd_month_at_low
        assert (f"-${-low:,.2f}" if low < 0 else money(low)) in row


def test_api_prices_are_labelled_with_the_date_of_their_data(tmp_path):
    answer = quickstart_answer()
    report = build_report([RunStore(quickstart_copy(tmp_path)).load()])
    labels = {r["label"] for r in spec_rows(report, "cost-per-point") if "label" in r
              and "api_usd_per_mtok" in r}
    data_dates = {api.price_data_date.isoformat() for api in answer.apis}
    assert labels and all(any(f"data of {d}" in label for d in data_dates) for label in labels)
    table = re.search(r"<table class='facts prices'>(.*?)</table>", report.html).group(1)
    for price in answer.prices:
        assert f"<b>{price.data_date.isoformat()}</b>" in table


def test_a_stale_price_is_marked_in_the_headline(tmp_path):
    run = quickstart_copy(tmp_path)
    profile = yaml.safe_load(EXAMPLE_PROFILE.read_text()) | {"max_price_age_days": 1}
    (tmp_path / "strict-age.yaml").write_text(yaml.safe_dump(profile))
    data = json.loads((run / "run.json").read_text())
    data["config"]["cost"]["profile"] = str(tmp_path / "strict-age.yaml")
    (run / "run.json").write_text(json.dumps(data))
    view = cost_view(RunStore(run).load())
    apis = [price for price in view.prices if price.kind == "api"]
    assert view.reason is None and all(p.stale for p in apis)  # genai-prices data: > 1 day old
    html = build_report([RunStore(run).load()]).html
    assert html.count("<span class='badge sev-warning'>stale: ") == sum(
        p.stale for p in view.prices)
    assert "<li class=sev-warning><span class='badge sev-warning'>warning</span> " \
           "<code>price_stale</code>" in html
    assert "warning: price_stale</span>" in decision_rows(html)[0]


def search_run(root: Path, profile: dict, steps: list[tuple[float, bool]]) -> Path:
    """A run of one cell whose capacity search met the SLO at `steps`, priced by `profile`."""
    (root.parent / "profile.yaml").write_text(yaml.safe_dump(profile))
    manifest = factories.manifest()
    manifest.config = manifest.config.model_copy(update={"cost": CostConfig(
        usd_per_hour=3.0, profile=str(root.parent / "profile.yaml"))})
    points = [searched(2, 4000, 50), searched(3, 6000, 250), searched(4, 7000, 900)]
    record = search_record({"ttft_p95_ms": 300}, steps)
    return factories.write_run(root, points, manifest, capacities={
        "bf16-b64": factories.CapacityRecord.model_validate(record)})


PROFILE = {"traffic": {"tokens_per_day": 86_400_000, "input_output_ratio": 3,
                       "peak_to_average": 4},
           "slo": {"ttft_p95_ms": 300}, "apis": ["llama-3.1-8b"]}


def test_a_searched_capacity_says_capacity_search_and_at_least(tmp_path):
    found = search_run(tmp_path / "found", PROFILE, [(2, True), (4, False), (3, True)])
    row = decision_rows(build_report([RunStore(found).load()]).html)[0]
    # the bracket: what was delivered at 3 req/s and at 4 req/s, the rate above that missed
    assert ("<span class='badge sev-info'>batch 64 @ 3 req/s, capacity search, search bracket "
            "6,000-7,000 tok/s, n=200</span>") in row
    top = search_run(tmp_path / "top", PROFILE, [(2, True), (3, True)])
    row = decision_rows(build_report([RunStore(top).load()]).html)[0]
    assert "capacity search, at least, n=200</span>" in row


def test_no_capacity_at_the_profiles_slo_is_critical_not_a_figure(tmp_path):
    strict = PROFILE | {"slo": {"ttft_p95_ms": 20}}
    run = search_run(tmp_path / "strict", strict, [(2, True), (4, False), (3, True)])
    row = decision_rows(build_report([RunStore(run).load()]).html)[0]
    assert "<b>no capacity at this SLO</b>" in row
    assert "<span class='badge sev-critical'>" in row and "re-run the search" in row


def test_an_input_whose_25_percent_move_flips_the_verdict_is_marked():
    from harness.report.answer.html import sensitivity_html

    base = {"variant": "bf16", "side": "rented", "api": "some-api", "unit": "$/h",
            "base": 2.0, "low": 1.5, "high": 2.5, "minus_api_usd_month_at_base": -100.0,
            "flips_at": 2.4, "flips_at_change": 0.2}
    rows = re.findall(r"<tr>(<td>.*?)</tr>", sensitivity_html([
        Sensitivity(**base, input="rented $/h per replica", minus_api_usd_month_at_low=-300.0,
                    minus_api_usd_month_at_high=150.0),         # +25% makes the API win
        Sensitivity(**{**base, "flips_at": None, "flips_at_change": None},
                    input="peak-to-average", minus_api_usd_month_at_low=-150.0,
                    minus_api_usd_month_at_high=-50.0)]))
    assert "<span class='badge sev-warning'>flips</span>" in rows[0] and "+20%" in rows[0]
    assert rows[1].endswith("<td>holds</td>") and "no flip in 0.1x-10x" in rows[1]
    assert "-$300.00" in rows[0] and "$150.00" in rows[0]


def test_the_configs_own_price_is_marked_as_an_input_not_a_fact():
    from harness.report.answer.html import prices_html

    run = RunStore(QUICKSTART).load()
    answer = cost_view(run).answer
    (rented,) = [p for p in answer.prices if p.kind == "rented"]
    assert rented.user_input and "cost.usd_per_hour" in rented.data
    assert "your input, unverified" in prices_html([rented])
    assert all(not p.user_input for p in answer.prices if p.kind == "api")
    assert any("your input, unverified" in line for line in answer.prices_used)
