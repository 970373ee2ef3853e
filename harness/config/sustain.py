"""The `sustain` section: when an open-loop rate counts as one the server sustains, so that a
point which only passes its SLO because its window ended before the queue showed is missed.
docs/metrics.md ("Sustained rates") says why each default is what it is."""

from __future__ import annotations

from pydantic import Field

from harness.config.base import Strict


class SustainConfig(Strict):
    min_share: float = Field(
        0.95, gt=0, le=1,
        description="completions over the steady window, as a share of the requests that "
                    "arrived in it")
    max_latency_growth: float = Field(
        2.0, ge=1,
        description="the median TTFT (from the intended send) of the window's last quarter of "
                    "arrivals, at most this many times that of its first quarter")
    latency_floor_ms: float = Field(
        20.0, ge=0, description="a climb smaller than this many ms is noise, not a queue")
    min_requests: int = Field(
        20, ge=1, description="arrivals the steady window must hold for a queue to show")
    min_e2e_spans: float = Field(
        4.0, gt=0,
        description="the steady window must last at least this many times the median E2E "
                    "of its first quarter of arrivals, so a queue has time to build")
