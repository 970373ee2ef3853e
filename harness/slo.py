"""Service-level objectives: does a point meet them, and how many requests per second did
(goodput, as DistServe and `vllm bench serve` define it).

A limit is `<metric>_<stat>_ms` (metric ttft, tpot, itl or e2e; stat mean, p50, p90, p95 or
p99) or `max_error_rate`. On open-loop points TTFT and E2E are taken from the intended send
time, so a client or server that falls behind its schedule cannot hide the queueing.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.metrics import (
    PointMetrics,
    e2e,
    e2e_from_intended,
    final_attempts,
    tpot,
    ttft,
    ttft_from_intended,
)
from harness.records import RequestRecord


def _distribution_name(metric: str, metrics: PointMetrics) -> str:
    if metric in ("ttft", "e2e") and getattr(metrics, f"{metric}_from_intended_ms").n:
        return f"{metric}_from_intended_ms"
    return f"{metric}_ms"


def violations(metrics: PointMetrics, slo: dict[str, float]) -> list[str]:
    """Each limit the point misses, as 'ttft_p95_ms 812.0 > 500' (empty: it meets them all)."""
    missed = []
    for key, limit in slo.items():
        if key == "max_error_rate":
            if metrics.error_rate > limit:
                missed.append(f"error rate {metrics.error_rate:.3g} > {limit:g}")
            continue
        metric, stat, _ = key.split("_")
        value = getattr(getattr(metrics, _distribution_name(metric, metrics)), stat)
        if value is None:
            missed.append(f"{key}: no samples")
        elif value > limit:
            missed.append(f"{key} {value:.1f} > {limit:g}")
    return missed


def _request_values(record: RequestRecord) -> dict[str, float | None]:
    """A request's own TTFT, TPOT and E2E in ms (from the intended send time where known)."""
    first = ttft_from_intended(record) if record.intended_time is not None else ttft(record)
    last = e2e_from_intended(record) if record.intended_time is not None else e2e(record)
    per_token = tpot(record)
    return {"ttft": first * 1000, "e2e": last * 1000,
            "tpot": 0.0 if per_token is None else per_token * 1000}


def good(record: RequestRecord, slo: dict[str, float]) -> bool:
    """A request is good when it succeeded and its own TTFT/TPOT/E2E meet every such limit."""
    if not record.ok:
        return False
    values = _request_values(record)
    for key, limit in slo.items():
        metric = key.split("_")[0]
        if metric in values and values[metric] > limit:
            return False
    return True


def goodput(records: Sequence[RequestRecord], duration_s: float, slo: dict[str, float]) -> float:
    """Good requests per second over the window; failed requests count as misses."""
    finals = final_attempts(records)
    return sum(good(r, slo) for r in finals) / max(duration_s, 1e-9)


def slo_summary(records: Sequence[RequestRecord], metrics: PointMetrics,
                slo: dict[str, float] | None) -> dict | None:
    if not slo:
        return None
    missed = violations(metrics, slo)
    return {"limits": dict(slo), "meets": not missed, "violations": missed,
            "goodput_rps": goodput(records, metrics.duration_s, slo)}
