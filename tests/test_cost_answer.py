"""Build or buy on stored results: capacity at the SLO, provisioning, bills, break-even."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.contract.results import CapacityRecord, SteadyWindow
from harness.cost.answer import build_answer
from harness.cost.flat import frame
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import Profile
from harness.cost.measured import load_results
from harness.cost.points import point_costs

from .factories import dist, manifest, metrics, point_result, write_run

DAY = date(2026, 11, 26)

# A GPU at $2/h and an API at $0.25 in / $1.25 out per Mtok: at 3:1 that is $0.50 per Mtok.
PRICES = {
    "gpus": [{"gpu": "TestGPU", "provider": "lab", "tier": "on-demand",
              "usd_per_gpu_hour": 2.0, "source": "test quote", "checked": "2026-11-01"}],
    "apis": [{"name": "test-api", "input_mtok": 0.25, "output_mtok": 1.25,
              "source": "test price list", "checked": "2026-11-02"}],
}


def point(cell: str, variant: str, batch: int, conc: int, total: float, output: float,
          ttft_p95: float, tp: int = 1, errors: int = 0, power: float | None = None):
    return point_result(cell, variant, batch, conc,
                        metrics(total, output, errors=errors, ttft_p95=ttft_p95), tp=tp,
                        mean_power_w=power, gpus=tp if power is not None else 0)


def write(root: Path, points: list, gpus: list[str] | None = None,
          usd_per_hour: float | None = 3.0, capacity: dict | None = None) -> Path:
    return write_run(root, points, manifest(gpus=gpus, usd_per_hour=usd_per_hour),
                     capacities={cell: CapacityRecord.model_validate(record)
                                 for cell, record in (capacity or {}).items()})


def profile(**changes) -> Profile:
    base = {"traffic": {"tokens_per_day": 86_400_000, "input_output_ratio": 3,
                        "peak_to_average": 4},
            "slo": {"ttft_p95_ms": 500}, "gpu": "TestGPU", "apis": ["test-api"]}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Profile.model_validate(base)


@pytest.fixture()
def book(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(PRICES))
    return load_price_book(path, DAY)


def test_hand_computed_answer(tmp_path, book):
    # One cell at 5,000 tok/s (3:1, as the profile), $2/h. Traffic 86.4 M tokens/day =
    # 1,000 tok/s on average, 4,000 at peak: 1 GPU, utilization 1000 / 5000 = 20 %.
    # Rented: 2 x 730 = $1,460 a month; full load 2 / (5000 x 0.0036) = $0.111/Mtok,
    # effective 0.111 / 0.2 = $0.556/Mtok. API: 1000 x 3600 x 730 / 1e6 = 2,628 Mtok a month
    # at $0.50 = $1,314. The API is cheaper by $146; the bills meet at 1460 / 0.5 =
    # 2,920 Mtok a month, at utilization 0.111 / 0.5 = 22.2 %.
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 200)],
                     gpus=["Test GPU"])
    answer = build_answer(load_results(root), profile(), book)
    (v,) = answer.variants
    assert v.capacity.tps == pytest.approx(5000) and v.provisioning.units == 1
    assert v.provisioning.utilization == pytest.approx(0.2)
    assert v.rented.usd_per_month == pytest.approx(1460)
    assert v.rented.usd_per_mtok_full_load == pytest.approx(2 / 18)
    assert v.rented.usd_per_mtok_effective == pytest.approx(2 / 18 / 0.2)
    # GKE split of the point: 3750 / 4 + 1250 = 2187.5 weighted tok/s
    assert v.rented.split.output_usd_per_mtok == pytest.approx(2 / 3600 / 2187.5 * 1e6)
    (api,) = answer.apis
    assert api.usd_per_mtok == pytest.approx(0.5)
    assert api.usd_per_month == pytest.approx(1314)
    (verdict,) = answer.verdicts
    rented = verdict.rented.comparison
    assert rented.cheaper == "API"
    assert rented.minus_api_usd_per_month == pytest.approx(146)
    # The bills meet at 2,920 Mtok, but one replica carries 13,140 / 4 = 3,285 Mtok at this
    # peak: n replicas win on [2920 n, 3285 n] until 2920 n <= 3285 (n - 1), i.e. n = 9.
    assert rented.break_even_traffic_mtok_month is None  # not one number: 8 ranges
    assert len(rented.ranges) == 8
    assert rented.ranges_text.startswith("2,920-3,285; 5,840-6,570; ")
    assert rented.ranges_text.endswith("; 23,360+ Mtok/mo")
    assert verdict.rented.break_even_utilization == pytest.approx(2920 / 13_140)
    assert api.prices_as_of == date(2026, 11, 2)
    assert answer.rented_price.dated == "checked 2026-11-01"
    # the same figures under the columns scripts read
    row = frame(answer, "verdicts").iloc[0]
    assert row["rented_cheaper"] == "API" and row["rented_break_even_range_count"] == 8
    assert row["rented_usd_per_month"] == pytest.approx(1460) and row["units"] == 1
    assert pd.isna(row["rented_break_even_traffic_mtok_month"])
    assert row["api_prices_as_of"] == "2026-11-02" and row["rented_price_dated"] == \
        "checked 2026-11-01"


def test_capacity_is_the_best_point_that_meets_the_slo(tmp_path, book):
    root = write(tmp_path / "run", [
        point("bf16-b16", "bf16", 16, 16, 4000, 1000, 300),
        point("bf16-b64", "bf16", 64, 64, 9000, 2250, 900),     # faster, misses the SLO
        point("bf16-b64", "bf16", 64, 32, 6000, 1500, 450, errors=1),  # an error: a miss
        point("fp8-b64", "fp8", 64, 64, 7000, 1750, 480)])
    answer = build_answer(load_results(root), profile(), book)
    bf16 = answer.variant("bf16").capacity
    assert bf16.tps == pytest.approx(4000)
    assert bf16.source == "closed loop"
    assert not bf16.verified
    unverified = [c for c in answer.caveats if c.code == "capacity_unverified"]
    assert {c.variant for c in unverified} == {"bf16", "fp8"}
    assert all(c.severity == "warning" and "unverified: closed loop" in c.text
               for c in unverified)
    assert "capacity_unverified" in answer.verdicts[0].rented.caveat_codes
    assert answer.variant("fp8").capacity.tps == pytest.approx(7000)


def test_a_closed_loop_capacity_is_its_steady_window_without_ramp_up_and_drain(tmp_path, book):
    # c16 averaged 4,000 tok/s over its whole window, ramp-up and drain included; from its
    # first completion to its last send it held 5,000 (1,250 out). The open-loop point's
    # steady window is not used: an open-loop rate is what was offered.
    steady = SteadyWindow(rule="first completion to last send", output_throughput=1250.0,
                          total_token_throughput=5000.0)
    closed = point("bf16-b16", "bf16", 16, 16, 4000, 1000, 300).model_copy(
        update={"steady": steady})
    rooted = write(tmp_path / "run", [closed])
    capacity = build_answer(load_results(rooted), profile(), book).variants[0].capacity
    assert capacity.tps == pytest.approx(5000) and capacity.output_tps == 1250
    assert capacity.window == "steady"
    whole = write(tmp_path / "whole", [point("bf16-b16", "bf16", 16, 16, 4000, 1000, 300)])
    capacity = build_answer(load_results(whole), profile(), book).variants[0].capacity
    assert capacity.tps == pytest.approx(4000) and capacity.window == "whole"


def searched(rate: float, total: float, ttft_p95: float, n: int = 200):
    """An open-loop point of a capacity search in cell bf16-b64."""
    return point_result("bf16-b64", "bf16", 64, None,
                        metrics(total, total / 4, requests=n, ttft_p95=ttft_p95),
                        point=f"search-r{rate:g}", kind="search", rate=rate)


def search_record(slo: dict, steps: list[tuple[float, bool]]) -> dict:
    met = [rate for rate, meets in steps if meets]
    best = max(met) if met else None
    return {"slo": slo, "meets_slo": bool(met), "rate_rps": best,
            "point": None if best is None else f"search-r{best:g}",
            "at_upper_bound": bool(met) and best == max(r for r, _ in steps),
            "steps": [{"rate_rps": r, "point": f"search-r{r:g}", "meets_slo": m,
                       "violations": []} for r, m in steps]}


# A cell whose closed-loop point "meets" the SLO at 9,000 tok/s, and its capacity search at
# ttft_p95 <= 300: 2 req/s (TTFT p95 50 ms) and 3 req/s (250 ms) meet it, 4 req/s (900 ms)
# misses. The search found 3 req/s = 6,000 tok/s.
SEARCH_POINTS = [point("bf16-b64", "bf16", 64, 64, 9000, 2250, 100),
                 searched(2, 4000, 50), searched(3, 6000, 250), searched(4, 7000, 900)]
SEARCH = search_record({"ttft_p95_ms": 300}, [(2, True), (4, False), (3, True)])


def test_capacity_search_wins_over_the_closed_loop(tmp_path, book):
    root = write(tmp_path / "run", SEARCH_POINTS, capacity={"bf16-b64": SEARCH})
    answer = build_answer(load_results(root), profile(slo={"ttft_p95_ms": 300}), book)
    v = answer.variants[0].capacity
    assert v.tps == pytest.approx(6000)        # not the closed loop's 9,000
    assert v.source == "capacity search" and v.rate_rps == 3
    assert v.verified and not v.at_least
    # the capacity lies below the next rate tried, 4 req/s, where the server delivered
    # 7,000 tok/s: the bracket is [6,000, 7,000], measured (the rate ratio would say 8,000)
    assert v.high_tps == pytest.approx(7000)
    assert not [c for c in answer.caveats if c.code.startswith("search_slo")]
    assert "capacity_unverified" not in answer.verdicts[0].rented.caveat_codes


def repeat_of(rate: float, total: float, ttft_p95: float, k: int):
    again = searched(rate, total, ttft_p95)
    return again.model_copy(update={"point": f"search-r{rate:g}-rep{k}", "repeat": k})


def test_repeats_of_the_capacity_give_its_median_and_their_spread(tmp_path, book):
    # 3 req/s measured three times: 6,000, 5,000 and 6,600 tok/s; the median is 6,000
    points = [*SEARCH_POINTS, repeat_of(3, 5000, 260, 2), repeat_of(3, 6600, 240, 3)]
    root = write(tmp_path / "run", points, capacity={"bf16-b64": SEARCH})
    answer = build_answer(load_results(root), profile(slo={"ttft_p95_ms": 300}), book)
    v = answer.variants[0].capacity
    assert v.tps == pytest.approx(6000) and v.low_tps == pytest.approx(5000)
    assert v.repeats == 3 and v.repeats_met == 3
    (caveat,) = [c for c in answer.caveats if c.code.startswith("capacity_repeats")]
    assert caveat.code == "capacity_repeats" and "median of 3 measurements" in caveat.text
    # a repeat that misses the profile's SLO says the rate is at the edge
    edgy = [*SEARCH_POINTS, repeat_of(3, 5000, 400, 2), repeat_of(3, 6600, 240, 3)]
    root = write(tmp_path / "edgy", edgy, capacity={"bf16-b64": SEARCH})
    answer = build_answer(load_results(root), profile(slo={"ttft_p95_ms": 300}), book)
    assert answer.variants[0].capacity.repeats_met == 2
    assert any(c.code == "capacity_repeats_missed" and c.severity == "warning"
               for c in answer.caveats)


def test_a_search_at_a_looser_slo_is_re_judged_at_the_profiles(tmp_path, book):
    # The profile asks ttft_p95 <= 100: the search's 3 req/s (250 ms) misses it, 2 req/s meets.
    root = write(tmp_path / "run", SEARCH_POINTS, capacity={"bf16-b64": SEARCH})
    answer = build_answer(load_results(root), profile(slo={"ttft_p95_ms": 100}), book)
    v = answer.variants[0].capacity
    assert v.rate_rps == 2 and v.tps == pytest.approx(4000)
    assert v.high_tps == pytest.approx(6000)  # 3 req/s missed the profile's SLO
    looser = [c for c in answer.caveats if c.code == "search_slo_looser"]
    assert len(looser) == 1 and "re-run the search at the profile's SLO" in looser[0].text
    assert "search_slo_looser" in answer.verdicts[0].rented.caveat_codes
    # stricter than every searched rate: no capacity, and no closed-loop figure either
    strict = build_answer(load_results(root), profile(slo={"ttft_p95_ms": 20}), book)
    v = strict.variants[0]
    assert v.capacity is None and "re-run the search" in v.slo_note
    assert strict.decision[0].cheapest == "no capacity at this SLO"


def test_a_search_that_met_the_slo_at_its_top_rate_is_a_lower_bound(tmp_path, book):
    record = search_record({"ttft_p95_ms": 500}, [(2, True), (3, True)])
    root = write(tmp_path / "run", SEARCH_POINTS[1:3], capacity={"bf16-b64": record})
    answer = build_answer(load_results(root), profile(), book)
    v = answer.variants[0].capacity
    assert v.at_least and v.high_tps is None
    assert any(c.code == "capacity_at_least" and "at least" in c.text for c in answer.caveats)


def test_few_samples_and_a_confidence_interval_over_the_limit_are_flagged(tmp_path, book):
    m = metrics(4000, 1000, requests=48, ttft_ms=dist(48, 10.0, p95=400, p95_ci=[300, 620]))
    root = write(tmp_path / "run", [point_result("bf16-b16", "bf16", 16, 16, m)])
    answer = build_answer(load_results(root), profile(), book)
    codes = {c.code for c in answer.caveats}
    assert {"few_samples", "slo_within_ci", "capacity_unverified"} <= codes
    assert answer.variants[0].capacity.n == 48


def test_a_capacity_search_that_found_nothing_gives_no_capacity(tmp_path, book):
    record = search_record({"ttft_p95_ms": 500}, [(4, False)])
    root = write(tmp_path / "run", [SEARCH_POINTS[0], SEARCH_POINTS[3]],
                 capacity={"bf16-b64": record})
    v = build_answer(load_results(root), profile(), book).variants[0]
    assert v.capacity is None  # no capacity invented from the closed loop
    assert "capacity search" in v.slo_note


def test_no_point_meets_the_slo_shows_the_closest(tmp_path, book):
    root = write(tmp_path / "run", [
        point("bf16-b16", "bf16", 16, 16, 4000, 1000, 650),
        point("bf16-b64", "bf16", 64, 64, 9000, 2250, 1900)])
    answer = build_answer(load_results(root), profile(), book)
    v = answer.variants[0]
    assert v.capacity is None
    assert "no point meets the SLO; closest: batch 16 conc 16: ttft_p95_ms 650.0 > 500" in \
        v.slo_note
    assert all(not verdict.rented.priced and verdict.variant.rented is None
               for verdict in answer.verdicts)
    assert "rented_usd_per_month" not in frame(answer, "verdicts")
    assert any("no measured point meets the SLO" in note for note in answer.notes)


def test_tensor_parallel_cells_rent_every_gpu(tmp_path, book):
    # tp 2 at 8,000 tok/s: a replica is 2 GPUs at $2/h; peak 4,000 tok/s -> 1 replica, 2 GPUs
    root = write(tmp_path / "run", [point("bf16-b64-tp2", "bf16", 64, 64, 8000, 2000,
                                              100, tp=2)], gpus=["Test GPU", "Test GPU"])
    v = build_answer(load_results(root), profile(), book).variants[0]
    assert v.provisioning.units == 2 and v.capacity.tps_per_unit == pytest.approx(4000)
    assert v.rented.usd_per_month == pytest.approx(2 * 2 * 730)


def test_owned_uses_measured_power_when_there_is_some(tmp_path, book):
    own = {"capex_per_gpu_usd": 35_000, "years": 4, "power_w_per_gpu": 700, "pue": 1.3,
           "usd_per_kwh": 0.10}
    measured = point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100)
    root = write(tmp_path / "a", [measured])
    owned = build_answer(load_results(root), profile(own=own), book).variants[0].owned
    assert owned.power.basis == "assumed" and owned.power.w_per_unit == 700
    # 35000 / 4 / 8760 + 0.7 x 1.3 x 0.10 per hour, 730 hours
    assert owned.usd_per_month == pytest.approx((35_000 / 4 / 8760 + 0.091) * 730)

    powered = write(tmp_path / "b", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100,
                                           power=400.0)])
    owned = build_answer(load_results(powered), profile(own=own), book).variants[0].owned
    assert owned.power.basis == "measured" and owned.power.w_per_unit == 400
    assert owned.usd_per_month == pytest.approx((35_000 / 4 / 8760 + 0.052) * 730)


def test_the_runs_own_price_is_per_machine(tmp_path, book):
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100)],
                     usd_per_hour=0.5)
    answer = build_answer(load_results(root), profile(gpu=None), book)
    assert answer.unit == "machine"
    assert answer.variants[0].rented.usd_per_month == pytest.approx(0.5 * 730)
    assert any("cost.usd_per_hour in configs/test.yaml" in line and "2026-11-20" in line
               for line in answer.prices_used)


def test_no_price_at_all_is_a_user_error(tmp_path, book):
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100)],
                     usd_per_hour=None)
    with pytest.raises(CostInputError, match="no hourly price"):
        build_answer(load_results(root), profile(gpu=None), book)


def test_retries_enter_both_sides(tmp_path, book):
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100)])
    plain = build_answer(load_results(root), profile(), book)
    retried = build_answer(load_results(root), profile(traffic={"retry_rate": 0.2}), book)
    assert retried.demand.average_tps == pytest.approx(1.2 * plain.demand.average_tps)
    assert retried.apis[0].usd_per_month == pytest.approx(1.2 * plain.apis[0].usd_per_month)
    assert retried.variants[0].provisioning.utilization == pytest.approx(0.24)
    # 50 % more: a peak of 6,000 tok/s needs a second GPU, half as busy
    more = build_answer(load_results(root), profile(traffic={"retry_rate": 0.5}), book)
    assert more.variants[0].provisioning.units == 2
    assert more.variants[0].provisioning.utilization == pytest.approx(1500 / 10_000)


def test_mixes_are_converted_and_said(tmp_path, book):
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100)])
    answer = build_answer(load_results(root), profile(traffic={"input_output_ratio": 1}), book)
    # weighted 3750 / 4 + 1250 = 2187.5; at 1:1 a token weighs (1/4 + 1) / 2 = 0.625
    assert answer.variants[0].capacity.tps == pytest.approx(2187.5 / 0.625)
    assert any("measured mix 3:1 to the profile's 1:1" in note for note in answer.notes)


def test_without_traffic_only_full_load_and_break_even_utilization(tmp_path, book):
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100)])
    answer = build_answer(load_results(root), Profile(gpu="TestGPU", apis=["test-api"]), book)
    (verdict,) = answer.verdicts
    assert verdict.rented.break_even_utilization == pytest.approx((2 / 18) / 0.5)
    assert verdict.rented.comparison is None and verdict.variant.rented.usd_per_month is None
    assert verdict.variant.provisioning is None and not answer.break_even
    assert "rented_usd_per_month" not in frame(answer, "verdicts")


def test_point_costs_price_every_point(tmp_path, book):
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100),
                                        point("bf16-b64", "bf16", 64, 8, 1000, 250, 900)])
    by_concurrency = {p.concurrency: p for p in point_costs(load_results(root), profile(), book)}
    fast = by_concurrency[64]
    assert fast.prices.usd_per_mtok_output == pytest.approx(2 / (1250 * 0.0036))
    assert fast.prices.usd_per_mtok_total == pytest.approx(2 / (5000 * 0.0036))
    assert fast.meets_slo and not by_concurrency[8].meets_slo


def test_results_without_run_json(tmp_path):
    with pytest.raises(CostInputError, match="no run.json"):
        load_results(tmp_path)


def test_owned_hardware_with_cost_of_capital_availability_and_overhead(tmp_path, book):
    # $30,000 a GPU + $10,000 of server over 4 years at 8 %: CRF = 0.08 x 1.08^4 /
    # (1.08^4 - 1) = 0.301921; a year's capital 40,000 x 0.301921 = $12,076.83, charged to
    # the 90 % of hours it serves: 12,076.83 / (8760 x 0.9) = $1.53181/h. Energy: the 400 W
    # measured x PUE 1.5 x $0.20/kWh = $0.12/h. Overhead 25 %: (1.53181 + 0.12) x 1.25 =
    # $2.06476/h, x 730 h = $1,507.28 a month for the one GPU the peak needs.
    own = {"capex_per_gpu_usd": 30_000, "server_share_per_gpu_usd": 10_000, "years": 4,
           "cost_of_capital": 0.08, "availability": 0.9, "power_w_per_gpu": 700, "pue": 1.5,
           "usd_per_kwh": 0.20, "overhead_share": 0.25}
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100,
                                          power=400.0)], gpus=["Test GPU"])
    answer = build_answer(load_results(root), profile(own=own), book)
    v = answer.variants[0]
    assert v.owned.power.basis == "measured" and v.provisioning.units == 1
    assert v.owned.usd_per_replica_hour == pytest.approx(2.06476, rel=1e-5)
    assert v.owned.usd_per_month == pytest.approx(1507.28, rel=1e-5)
    # the API's $1,314 is less: owned loses by $193.28 a month
    owned = answer.verdicts[0].owned.comparison
    assert owned.cheaper == "API"
    assert owned.minus_api_usd_per_month == pytest.approx(1507.28 - 1314, rel=1e-4)


def test_cached_input_and_batch_prices_go_through_the_whole_answer(tmp_path):
    # The API: $0.40 in, $0.10 cached in, $1.60 out, batch at half price. A request of the
    # profile is 750 in + 250 out tokens; half its input cached, a quarter of requests batch:
    # standard = (375 x 0.40 + 375 x 0.10 + 250 x 1.60) / 1e6 = $0.0005875,
    # batch = half of it; (0.75 + 0.25 x 0.5) x 0.0005875 = $0.000514 for 1,000 tokens:
    # $0.514/Mtok; 2,628 Mtok a month (1,000 tok/s) = $1,350.80.
    prices = {**PRICES, "apis": [{"name": "cached-api", "input_mtok": 0.40,
                                  "cached_input_mtok": 0.10, "output_mtok": 1.60,
                                  "batch_discount": 0.5, "source": "test price list",
                                  "checked": "2026-11-02"}]}
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(prices))
    book = load_price_book(path, DAY)
    root = write(tmp_path / "run", [point("bf16-b64", "bf16", 64, 64, 5000, 1250, 100)])
    answer = build_answer(load_results(root), profile(
        apis=["cached-api"], traffic={"cached_input_share": 0.5, "batch_share": 0.25,
                                      "output_tokens_per_request": 250}), book)
    (api,) = answer.apis
    assert api.has_batch_price
    assert api.usd_per_mtok == pytest.approx(0.5140625)
    assert api.usd_per_month == pytest.approx(2628 * 0.5140625)
    (verdict,) = answer.verdicts
    # self-hosted is unchanged ($1,460): the API's discounts make it the cheaper side
    assert verdict.variant.rented.usd_per_month == pytest.approx(1460)
    assert verdict.rented.comparison.minus_api_usd_per_month == pytest.approx(
        1460 - 2628 * 0.5140625)


def test_an_external_servers_results_say_so_rather_than_no_gpu(tmp_path, book):
    run = manifest(config={"engine": {"kind": "external", "url": "http://10.0.0.7:8000"}})
    root = write_run(tmp_path / "run", [point("default", "default", 64, 64, 5000, 1250, 200)],
                     run)
    answer = build_answer(load_results(root), profile(), book)
    codes = {caveat.code: caveat for caveat in answer.caveats}
    assert "no_gpu" not in codes
    assert "http://10.0.0.7:8000" in codes["external_server"].text
    assert "TestGPU hours" in codes["external_server"].text
