"""Open-loop schedules: exact counts, rates that do not drift, ramps, burstiness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.contract.plan import PhaseSpec
from harness.load.schedule import arrival_offsets, phase_starts


def phase(rate, duration=None, requests=None, arrival="poisson", burstiness=1.0):
    rate = rate if isinstance(rate, tuple) else (rate, rate)
    return PhaseSpec("p", duration, requests, None, rate, arrival, burstiness)


def test_constant_rate_is_exact():
    offsets = arrival_offsets(phase(4.0, duration=10, arrival="constant"),
                              np.random.default_rng(0))
    assert len(offsets) == 40
    assert np.allclose(np.diff(offsets), 0.25)


def test_request_count_is_exact_and_starts_at_zero():
    offsets = arrival_offsets(phase(2.0, requests=7, arrival="constant"),
                              np.random.default_rng(0))
    assert offsets.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(1, 200), seed=st.integers(0, 2**32 - 1))
def test_poisson_rate_does_not_drift(rate, seed):
    """Over 400 expected arrivals the count stays within 5 sigma of rate x duration."""
    duration = 400 / rate
    offsets = arrival_offsets(phase(rate, duration=duration), np.random.default_rng(seed))
    assert abs(len(offsets) - 400) < 5 * np.sqrt(400)
    assert (np.diff(offsets) >= 0).all() and offsets[-1] < duration


def test_ramp_follows_the_integrated_rate():
    # 2 -> 20 req/s over 100 s: 1100 arrivals, 325 in the first half (2*50 + 0.09*50^2)
    offsets = arrival_offsets(phase((2.0, 20.0), duration=100, arrival="constant"),
                              np.random.default_rng(0))
    assert len(offsets) == 1100
    assert (offsets < 50).sum() == 325


@pytest.mark.parametrize("burstiness, low, high", [(1.0, 0.9, 1.1), (0.25, 1.8, 2.2)])
def test_gamma_burstiness_sets_the_spread(burstiness, low, high):
    """Coefficient of variation of the gaps is 1/sqrt(shape)."""
    offsets = arrival_offsets(phase(10.0, requests=20000, arrival="gamma",
                                    burstiness=burstiness), np.random.default_rng(1))
    gaps = np.diff(offsets)
    assert gaps.mean() == pytest.approx(0.1, rel=0.05)
    assert low < gaps.std() / gaps.mean() < high


def test_same_seed_same_schedule():
    a = arrival_offsets(phase(5.0, duration=20), np.random.default_rng([1, 2]))
    b = arrival_offsets(phase(5.0, duration=20), np.random.default_rng([1, 2]))
    assert np.array_equal(a, b)


def test_phases_run_back_to_back():
    phases = (phase(1.0, duration=10), phase(2.0, duration=5), phase(1.0, duration=3))
    assert phase_starts(phases) == [0.0, 10.0, 15.0]
