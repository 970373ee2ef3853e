"""Does a stored point still say what its requests say? Its counts, throughputs and percentiles
recomputed from its requests file (one pass, harness/metrics/reading.py) against its JSON: a
number edited by hand, with the checksum rewritten to match, still shows (`harness validate`).
The percentiles' intervals are not compared: a bootstrap depends on the order of its draws."""

from __future__ import annotations

import math

from harness.contract.results import PointMetrics, PointResult
from harness.metrics.reading import read_point
from harness.store.requests_file import StoredRequests

COUNTS = ("requests", "attempts", "completed", "errors", "failed_attempts", "retried_requests",
          "prompt_tokens", "output_tokens")
RATES = ("request_throughput", "output_throughput", "total_token_throughput")
DISTRIBUTIONS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "ttft_from_intended_ms",
                 "e2e_from_intended_ms")
STATS = ("n", "mean", "p50", "p90", "p95", "p99")
TOLERANCE = 1e-6  # relative: sums of floats in another order differ in their last bits


def _differs(stored: float | None, found: float | None) -> bool:
    if stored is None or found is None:
        return stored is not found
    return not math.isclose(stored, found, rel_tol=TOLERANCE, abs_tol=1e-9)


def _shown(value: float | None) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def figures(metrics: PointMetrics) -> dict[str, float | None]:
    """The figures compared, by the names the message gives them."""
    found: dict[str, float | None] = {name: getattr(metrics, name) for name in COUNTS + RATES}
    for dist in DISTRIBUTIONS:
        for stat in STATS:
            found[f"{dist} {stat}"] = getattr(getattr(metrics, dist), stat)
    return found


def recheck(result: PointResult, stored: StoredRequests) -> list[str]:
    """Each figure of the point that its requests do not give, one line each."""
    again = figures(read_point(stored, result.metrics.duration_s).metrics)
    return [f"{result.cell}/{result.point}: {name} is {_shown(value)} in its JSON but "
            f"{_shown(again[name])} from its requests"
            for name, value in figures(result.metrics).items() if _differs(value, again[name])]
