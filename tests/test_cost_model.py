"""The cost formulas: hand-computed cases and properties (docs/cost-formulas.md)."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from harness.cost import formulas

prices = st.floats(min_value=0.01, max_value=100.0)
throughputs = st.floats(min_value=1.0, max_value=1e6)
peaks = st.floats(min_value=1.0, max_value=20.0)


# --- hand-computed ------------------------------------------------------------------------

def test_inferencex_usd_per_mtok():
    # $/Mtok = ($/GPU-h) / (tok/s/GPU x 3600 / 1e6): $2.99 / (2,500 x 3600 / 1e6) = 2.99 / 9
    assert formulas.usd_per_mtok(2.99, 2500) == pytest.approx(2.99 / 9)
    assert formulas.usd_per_mtok(2.99, 2500) == pytest.approx(0.3322, abs=1e-4)
    assert formulas.usd_per_mtok(None, 2500) is None
    assert formulas.usd_per_mtok(2.99, 0) is None


def test_gke_split_adds_up_to_the_hourly_cost():
    # $3.60/h = $0.001/s; 4,000 input + 1,000 output tok/s, R = 4: 4000/4 + 1000 = 2000
    # output = 0.001 / 2000 x 1e6 = $0.50/Mtok, input = 0.50 / 4 = $0.125/Mtok
    price_in, price_out = formulas.split_usd_per_mtok(3.6, 4000, 1000, 4)
    assert (price_in, price_out) == (pytest.approx(0.125), pytest.approx(0.5))
    per_second = (4000 * price_in + 1000 * price_out) / 1e6
    assert per_second == pytest.approx(3.6 / 3600)


def test_throughput_at_another_mix():
    # weighted = 4000 / 4 + 1000 = 2000; at 3:1 each token weighs (3/4 + 1) / 4 = 0.4375
    assert formulas.throughput_at_mix(4000, 1000, 3, 4) == pytest.approx(2000 / 0.4375)
    assert formulas.throughput_at_mix(4000, 1000, 4, 4) == pytest.approx(5000)  # the measured mix


def test_capital_recovery_factor():
    # r = 8 %, n = 4: 0.08 x 1.08^4 / (1.08^4 - 1) = 0.30192
    assert formulas.capital_recovery_factor(0.08, 4) == pytest.approx(0.301921, abs=1e-6)
    assert formulas.capital_recovery_factor(0.0, 4) == 0.25  # straight line


def test_owned_hour():
    # $35,000 over 4 years, no interest, always available: 35000 / 4 / 8760 = $0.99886/h
    capital = formulas.capital_usd_per_hour(35_000, 0.0, 4, 1.0)
    assert capital == pytest.approx(0.998858, abs=1e-6)
    assert formulas.capital_usd_per_hour(35_000, 0.0, 4, 0.5) == pytest.approx(2 * capital)
    energy = formulas.energy_usd_per_hour(700, 1.3, 0.10)  # 0.7 kW x 1.3 x $0.10
    assert energy == pytest.approx(0.091)
    assert formulas.owned_usd_per_hour(capital, energy, 0.10) == pytest.approx(
        (0.998858 + 0.091) * 1.1, abs=1e-6)


def test_rented_hour():
    assert formulas.rented_usd_per_hour(2.99, 8) == pytest.approx(23.92)


def test_provisioning_for_peak():
    assert formulas.replicas_for_peak(4000, 5000) == 1
    assert formulas.replicas_for_peak(10_000, 5000) == 2  # exactly full: no extra replica
    assert formulas.replicas_for_peak(10_001, 5000) == 3
    assert formulas.replicas_for_peak(0, 5000) == 1
    assert formulas.utilization(1000, 1, 5000) == pytest.approx(0.2)


def test_break_even_worked_case():
    # One replica at $2/h costs 2 x 730 = $1,460 a month; the API charges $0.50/Mtok, so the
    # bills meet at 1460 / 0.5 = 2,920 Mtok a month. Capacity 5,000 tok/s is
    # 5000 x 3600 x 730 / 1e6 = 13,140 Mtok a month; a peak of 4x the average needs
    # 4 x 2,920 = 11,680 <= 13,140: one replica carries it.
    assert formulas.mtok_per_month(5000) == pytest.approx(13_140)
    volume = formulas.break_even_monthly_mtok(2.0, 5000, 0.5, 4)
    assert volume == pytest.approx(2920)
    average = formulas.tokens_per_s_for(volume)  # 1,111 tok/s
    assert average == pytest.approx(2920e6 / (3600 * 730))
    assert formulas.self_hosted_monthly_usd(average, 4, 5000, 2.0) == pytest.approx(1460)
    assert formulas.api_monthly_usd(average, 0.5) == pytest.approx(1460)
    # Full load costs 2 / (5000 x 0.0036) = $0.111/Mtok: break-even utilization 0.111 / 0.5
    assert formulas.break_even_utilization(formulas.usd_per_mtok(2.0, 5000), 0.5) == pytest.approx(
        2920 / 13_140)
    # At 5x peak one replica cannot carry 14,600 Mtok of peak-rate traffic: never even.
    assert formulas.break_even_monthly_mtok(2.0, 5000, 0.5, 5) is None
    # An API cheaper than full-load self-hosting: no utilization evens it.
    assert formulas.break_even_utilization(0.2, 0.1) is None


def test_api_request_blends_cache_and_batch():
    # standard 1.0 uncached / 0.6 cached, batch half of that; 50 % cached, 50 % batch
    price = formulas.api_usd_per_request(1.0, 0.6, 0.5, 0.3, 0.5, 0.5)
    assert price == pytest.approx(0.5 * 0.8 + 0.5 * 0.4)


@pytest.mark.parametrize("call", [
    lambda: formulas.capital_recovery_factor(-0.1, 4),
    lambda: formulas.capital_recovery_factor(1.0, 4),
    lambda: formulas.capital_recovery_factor(0.05, 0),
    lambda: formulas.capital_recovery_factor(0.05, 100),
    lambda: formulas.capital_usd_per_hour(0, 0.05, 4, 1),
    lambda: formulas.capital_usd_per_hour(1000, 0.05, 4, 0),
    lambda: formulas.capital_usd_per_hour(1000, 0.05, 4, 1.5),
    lambda: formulas.energy_usd_per_hour(700, 0.9, 0.1),
    lambda: formulas.energy_usd_per_hour(700, 1.2, 0),
    lambda: formulas.energy_usd_per_hour(-1, 1.2, 0.1),
    lambda: formulas.rented_usd_per_hour(0, 1),
    lambda: formulas.rented_usd_per_hour(-2.0, 1),
    lambda: formulas.split_usd_per_mtok(1.0, 10, 10, 0),
    lambda: formulas.replicas_for_peak(10, 0),
    lambda: formulas.break_even_utilization(0.1, 0),
    lambda: formulas.break_even_monthly_mtok(1.0, 100, 0.5, 0.5),
])
def test_out_of_range_inputs_are_refused(call):
    with pytest.raises(ValueError):
        call()


# --- properties ---------------------------------------------------------------------------

@given(prices, throughputs, throughputs)
def test_more_throughput_never_costs_more_per_token(price, slower, faster):
    slower, faster = sorted((slower, faster))
    assert formulas.usd_per_mtok(price, faster) <= formulas.usd_per_mtok(price, slower)


@given(prices, throughputs, throughputs, st.floats(0.0, 10.0), st.floats(1.0, 1.5),
       st.floats(0.5, 10.0))
def test_more_throughput_never_costs_more_in_the_split(price, t_in, t_out, ratio, gain,
                                                       cost_ratio):
    base = formulas.split_usd_per_mtok(price, t_in, t_out, cost_ratio)
    faster = formulas.split_usd_per_mtok(price, t_in * gain, t_out * gain, cost_ratio)
    assert faster[0] <= base[0] * (1 + 1e-12) and faster[1] <= base[1] * (1 + 1e-12)
    mixed = formulas.throughput_at_mix(t_in, t_out, ratio, cost_ratio)
    assert formulas.throughput_at_mix(t_in * gain, t_out * gain, ratio, cost_ratio) >= mixed


@given(st.floats(0.0, 1e7), st.floats(0.0, 1e7), throughputs)
def test_a_higher_peak_never_needs_fewer_gpus(peak_a, peak_b, capacity):
    low, high = sorted((peak_a, peak_b))
    assert formulas.replicas_for_peak(high, capacity) >= formulas.replicas_for_peak(low, capacity)
    assert formulas.replicas_for_peak(high, capacity) * capacity >= high * (1 - 1e-9)


@given(prices, throughputs, st.floats(min_value=0.005, max_value=50.0), peaks)
def test_break_even_volume_is_where_the_bills_meet(price, capacity, api_price, peak):
    volume = formulas.break_even_monthly_mtok(price, capacity, api_price, peak)
    if volume is None:
        # The API is cheaper at every volume: try a spread of them.
        for share in (0.01, 0.1, 0.5, 1.0, 2.0, 10.0):
            average = capacity * share
            assert (formulas.self_hosted_monthly_usd(average, peak, capacity, price)
                    > formulas.api_monthly_usd(average, api_price) * (1 - 1e-9))
        return
    average = formulas.tokens_per_s_for(volume)
    self_bill = formulas.self_hosted_monthly_usd(average, peak, capacity, price)
    api_bill = formulas.api_monthly_usd(average, api_price)
    assert self_bill == pytest.approx(api_bill, rel=1e-6)
    below = average * 0.99
    assert (formulas.self_hosted_monthly_usd(below, peak, capacity, price)
            > formulas.api_monthly_usd(below, api_price))


@given(prices, throughputs, st.floats(min_value=0.005, max_value=50.0))
def test_break_even_utilization_matches_the_effective_price(price, capacity, api_price):
    full_load = formulas.usd_per_mtok(price, capacity)
    share = formulas.break_even_utilization(full_load, api_price)
    assume(share is not None and share > 1e-6)
    # At that utilization the effective price (full load / U) is the API's.
    assert full_load / share == pytest.approx(api_price)
    assert math.isclose(share, full_load / api_price)
