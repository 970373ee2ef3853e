"""Open-loop arrival schedules, computed up front as absolute offsets so rates never drift.

Arrivals are a renewal process of unit rate (constant gaps, Poisson, or gamma with shape =
burstiness: 1 is Poisson, below 1 burstier) mapped onto the phase's rate by time rescaling:
for a linear ramp from r0 to r1 over D seconds the cumulative intensity is
Lambda(t) = r0 t + (r1 - r0) t^2 / (2 D), and the k-th arrival is at Lambda^-1(u_k).
"""

from __future__ import annotations

import math

import numpy as np

from harness.contract.plan import PhaseSpec


def unit_gaps(arrival: str, burstiness: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n gaps of a renewal process with mean 1."""
    if arrival == "constant":
        return np.ones(n)
    if arrival == "poisson":
        return rng.exponential(1.0, n)
    if arrival == "gamma":
        return rng.gamma(burstiness, 1.0 / burstiness, n)
    raise ValueError(f"unknown arrival process {arrival!r}")


def unit_events(arrival: str, burstiness: float, rng: np.random.Generator, *,
                count: int | None = None, until: float | None = None) -> np.ndarray:
    """Event times of the unit-rate process: the first at 0, then `count` in all or all < until."""
    if count is not None:
        gaps = unit_gaps(arrival, burstiness, max(count - 1, 0), rng)
        return np.concatenate([[0.0], np.cumsum(gaps)])
    events, total = [np.zeros(1)], 0.0
    while True:
        gaps = np.cumsum(unit_gaps(arrival, burstiness, 1024, rng)) + total
        events.append(gaps[gaps < until])
        if gaps[-1] >= until:
            return np.concatenate(events)
        total = gaps[-1]


def warp(u: np.ndarray, r0: float, r1: float, duration: float | None) -> np.ndarray:
    """Map unit-rate event times onto a rate ramping linearly from r0 to r1 over `duration`."""
    if r0 == r1 or not duration:
        return u / r0
    slope = (r1 - r0) / duration
    return (np.sqrt(r0 * r0 + 2.0 * slope * u) - r0) / slope


def arrival_offsets(phase: PhaseSpec, rng: np.random.Generator) -> np.ndarray:
    """Intended send times of an open-loop phase, in seconds from the phase's start."""
    if phase.offsets is not None:
        return np.sort(np.asarray(phase.offsets, dtype=float))
    r0, r1 = phase.rate
    if phase.duration_s is None:
        return warp(unit_events(phase.arrival, phase.burstiness, rng, count=phase.requests),
                    r0, r1, None)
    expected = phase.duration_s * (r0 + r1) / 2.0  # Lambda(D)
    u = unit_events(phase.arrival, phase.burstiness, rng, until=expected)
    offsets = warp(u, r0, r1, phase.duration_s)
    return offsets[offsets < phase.duration_s]


def phase_starts(phases: tuple[PhaseSpec, ...]) -> list[float]:
    """Offset of each phase from the point's start (phases run back to back)."""
    starts, at = [], 0.0
    for phase in phases:
        starts.append(at)
        at += phase.duration_s if phase.duration_s is not None else math.inf
    return starts
