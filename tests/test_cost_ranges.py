"""Break-even as ranges of monthly traffic, and the sensitivity table, computed by hand."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from harness.contract.results import CapacityRecord
from harness.cost import formulas
from harness.cost.answer import build_answer
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import Profile
from harness.cost.measured import load_results

from .factories import manifest, metrics, point_result, write_run
from .test_cost_answer import PRICES


def ranges(*args: float) -> list[tuple[float, float | None]]:
    """Rounded to the cent, to compare exactly."""
    return [(round(low, 2), None if high is None else round(high, 2))
            for low, high in formulas.break_even_ranges(*args)]


def test_break_even_ranges_follow_the_replica_steps():
    # A replica bill of $1,000 a month against an API at $1/Mtok: one replica wins from
    # 1,000 Mtok up to what it carries, K. With K = 1,500: [1000, 1500], then two replicas
    # win from 2,000 and every further step joins the last (3 x 1000 <= 2 x 1500).
    hourly = 1000 / formulas.HOURS_PER_MONTH
    assert ranges(hourly, formulas.tokens_per_s_for(1500), 1.0, 1.0) == [(1000, 1500), (2000, None)]
    # K = 900: one replica cannot carry the volume whose API bill pays for it: never.
    assert ranges(hourly, formulas.tokens_per_s_for(900), 1.0, 1.0) == []
    # K = 2,000: one range from 1,000 on.
    assert ranges(hourly, formulas.tokens_per_s_for(2000), 1.0, 1.0) == [(1000, None)]
    # peak-to-average 2 halves what a replica carries: K = 3,000 / 2 = 1,500 again.
    assert ranges(hourly, formulas.tokens_per_s_for(3000), 1.0, 2.0) == [(1000, 1500), (2000, None)]
    # K = 1,000 exactly: the bills meet only at full replicas; the list stops at 20 ranges.
    assert len(ranges(hourly, formulas.tokens_per_s_for(1000), 1.0, 1.0)) == 20


@pytest.fixture()
def answer(tmp_path):
    # One GPU at $2/h ($1,460 a month) serving 5,000 tok/s at 3:1; the API at $0.50/Mtok.
    # Peak-to-average 2.9: a replica carries 5000 x 3600 x 730 / 1e6 / 2.9 = 4,531.03 Mtok a
    # month. The bills meet at 1460 / 0.5 = 2,920 Mtok: self-hosting wins on
    # [2,920, 4,531.03]; two replicas ($2,920) win from 2,920 / 0.5 = 5,840 on, and three
    # join on (3 x 2920 = 8,760 <= 2 x 4,531 = 9,062): two ranges, [2920, 4531], [5840, inf).
    # The traffic: 172.8 M tokens a day = 2,000 tok/s = 5,256 Mtok a month, in the gap:
    # peak 5,800 tok/s needs 2 replicas, $2,920, against the API's 5256 x 0.5 = $2,628.
    point = point_result("gpu-b64", "bf16", 64, 64, metrics(5000, 1250, ttft_p95=100))
    return gap_answer(tmp_path, [point])


def test_a_step_function_break_even_has_two_ranges(answer):
    ranges = [r for r in answer.break_even if r.side == "rented"]
    assert [r.from_mtok_month for r in ranges] == pytest.approx([2920, 5840])
    assert ranges[0].to_mtok_month == pytest.approx(13_140 / 2.9)
    assert ranges[1].to_mtok_month is None
    assert not any(r.contains_this_traffic for r in ranges)      # 5,256 sits in the gap
    (verdict,) = answer.verdicts
    rented = verdict.rented.comparison
    assert rented.cheaper == "API" and verdict.variant.rented.usd_per_month == pytest.approx(2920)
    assert rented.minus_api_usd_per_month == pytest.approx(292)
    assert rented.break_even_traffic_mtok_month is None  # two ranges: no one number
    assert rented.ranges_text == "2,920-4,531; 5,840+ Mtok/mo"


def test_sensitivity_gives_the_flip_points(answer):
    table = {row.input: row for row in answer.sensitivity}
    hourly = table["rented $/h per replica"]
    # 2 replicas x h x 730 = 2,628 -> h = $1.80 (-10%); at -25% ($1.50): 2 x 1.5 x 730 - 2628
    # = -438; at +25% ($2.50): 3650 - 2628 = +1,022.
    assert hourly.flips_at == pytest.approx(1.8, rel=1e-6)
    assert hourly.flips_at_change == pytest.approx(-0.1, rel=1e-5)
    assert hourly.minus_api_usd_month_at_low == pytest.approx(-438)
    assert hourly.minus_api_usd_month_at_base == pytest.approx(292)
    assert hourly.minus_api_usd_month_at_high == pytest.approx(1022)
    # One replica suffices once the peak fits 5,000 tok/s: peak-to-average 2.5; then
    # $1,460 < $2,628.
    assert table["peak-to-average"].flips_at == pytest.approx(2.5, rel=1e-6)
    # The API's price at which 5,256 x a = 2,920: a = 0.5556 (+11.1%).
    assert table["test-api $/Mtok"].flips_at == pytest.approx(2920 / 5256, rel=1e-6)
    assert all(row.cheaper_at_base == "API" for row in answer.sensitivity)


def test_a_verdict_that_flips_inside_the_capacity_interval_is_flagged(tmp_path):
    # The search met 2 req/s (4,000 tok/s) and missed 4 req/s (8,000): the capacity lies in
    # [4,000, 8,000). At 2,000 tok/s, peak 2.9x = 5,800 tok/s: two replicas at 4,000 ($2,920,
    # the API $2,628 is cheaper), one from 5,800 on ($1,460): the verdict flips at 5,800,
    # inside the interval.
    points = [point_result("gpu-b64", "bf16", 64, None, metrics(total, total / 4, ttft_p95=ttft),
                           point=f"search-r{rate}", kind="search", rate=rate)
              for rate, total, ttft in ((2, 4000, 100), (4, 8000, 900))]
    record = CapacityRecord.model_validate({
        "slo": {"ttft_p95_ms": 500}, "meets_slo": True, "rate_rps": 2, "point": "search-r2",
        "steps": [{"rate_rps": r, "point": f"search-r{r}", "meets_slo": r == 2, "violations": []}
                  for r in (2, 4)]})
    answer = gap_answer(tmp_path, points, {"gpu-b64": record})
    (capacity,) = [row for row in answer.sensitivity if row.input == "measured capacity"]
    assert capacity.flips_at == pytest.approx(5800, rel=1e-6)
    assert capacity.interval.flips_within
    assert capacity.interval.low == 4000 and capacity.interval.high == 8000
    (flag,) = [c for c in answer.caveats if c.code == "flip_within_capacity_interval"]
    assert flag.severity == "warning" and "5,800 tok/s" in flag.text
    assert "flip_within_capacity_interval" in answer.verdicts[0].rented.caveat_codes


def gap_answer(tmp_path, points, capacities=None):
    """The answer for the traffic in the replica gap (5,256 Mtok a month at peak-to-average
    2.9) on the test GPU and API."""
    root = write_run(tmp_path / "run", points, manifest(gpus=["Test GPU"]),
                     capacities=capacities or {})
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(PRICES))
    profile = Profile.model_validate({
        "traffic": {"tokens_per_day": 172_800_000, "input_output_ratio": 3,
                    "peak_to_average": 2.9},
        "slo": {"ttft_p95_ms": 500}, "gpu": "TestGPU", "apis": ["test-api"]})
    return build_answer(load_results(root), profile, load_price_book(path, date(2026, 11, 26)))
