"""The one SLO evaluator: does a point meet its SLO, by how much does it miss, and how many
requests per second met it (goodput, as DistServe and `vllm bench serve` define it). Used by
`harness run`, the capacity search and `harness cost` alike.

On open-loop points TTFT and E2E are taken from the intended send time, so a client or server
that falls behind its schedule cannot hide the queueing (docs/metrics.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.config.slo import Limit, Slo
from harness.contract.results import Distribution, PointMetrics, SloVerdict
from harness.metrics.point_metrics import (
    Requests,
    e2e,
    e2e_from_intended,
    source_of,
    tpot,
    ttft,
    ttft_from_intended,
)
from harness.store.requests_file import Batch, Chunks, Selection, Where, everything


@dataclass(frozen=True)
class Judgement:
    meets: bool
    violations: list[str]  # 'ttft_p95_ms 812.0 > 500', one per missed limit
    shortfall: float  # the worst value / limit over every limit: <= 1 meets, inf: unmeasured


def judged_distribution(metrics: PointMetrics, metric: str) -> Distribution:
    """The distribution a limit on `metric` is judged on (from the intended send time where
    the point has one)."""
    if metric in ("ttft", "e2e"):
        from_intended = getattr(metrics, f"{metric}_from_intended_ms")
        if from_intended.n:
            return from_intended
    return getattr(metrics, f"{metric}_ms")


def judge(metrics: PointMetrics, slo: Slo) -> Judgement:
    missed, worst = [], 0.0
    for limit in slo.limits():
        value = judged_distribution(metrics, limit.metric).stat(limit.stat)
        if value is None:
            missed.append(f"{limit.key}: no samples")
            worst = math.inf
            continue
        if value > limit.ms:
            missed.append(f"{limit.key} {value:.1f} > {limit.ms:g}")
        worst = max(worst, value / limit.ms)
    if metrics.error_rate > slo.max_error_rate:
        missed.append(f"error rate {metrics.error_rate:.3g} > {slo.max_error_rate:g}")
        ratio = (metrics.error_rate / slo.max_error_rate if slo.max_error_rate
                 else 1 + metrics.error_rate)
        worst = max(worst, ratio)
    return Judgement(not missed, missed, worst)


def violations(metrics: PointMetrics, slo: Slo) -> list[str]:
    """Each limit the point misses (empty: it meets them all)."""
    return judge(metrics, slo).violations


def _request_values(batch: Batch, limit: Limit) -> np.ndarray:
    """Each request's own value of a limit's metric, in ms (NaN: it has none, e.g. the TPOT
    of a one-token answer). A request has one TTFT, TPOT and E2E, which every limit on that
    metric bounds; its ITL is a sample of gaps, of which the limit's statistic is taken."""
    rows = batch.rows
    closed = np.isnan(rows.intended_time)
    if limit.metric == "ttft":
        seconds = np.where(closed, ttft(rows), ttft_from_intended(rows))
    elif limit.metric == "e2e":
        seconds = np.where(closed, e2e(rows), e2e_from_intended(rows))
    elif limit.metric == "tpot":
        seconds = tpot(rows)
    else:
        seconds = _itl_stat(batch.chunks, limit.stat)
    return seconds * 1000


def _itl_stat(chunks: Chunks, stat: str) -> np.ndarray:
    """`stat` ('mean' or 'pNN') of each row's own gaps between chunks (NaN: fewer than two)."""
    gaps, _ = chunks.gaps()
    per_row = np.maximum(chunks.lengths - 1, 0)
    found = np.full(per_row.size, np.nan)
    for row, own in enumerate(np.split(gaps, np.cumsum(per_row)[:-1])):
        if own.size:
            found[row] = own.mean() if stat == "mean" else np.percentile(own, float(stat[1:]))
    return found


def good(batch: Batch, slo: Slo) -> np.ndarray:
    """A request is good when it succeeded and its own metrics meet every latency limit."""
    meets = batch.rows.ok.copy()
    for limit in slo.limits():
        values = _request_values(batch, limit)
        meets &= ~(values > limit.ms)  # (NaN: no value, no miss)
    return meets


def goodput(requests: Requests, duration_s: float, slo: Slo, where: Where = everything,
            start: float = 0.0) -> float:
    """Good requests per second over the window; failed requests count as misses. (Records'
    times count from `start`, as point_metrics.)"""
    finals = Selection(source_of(requests, start), where).narrow(lambda rows: rows.final)
    chunks = any(limit.metric == "itl" for limit in slo.limits())
    total = sum(int(good(batch, slo).sum()) for batch in finals.batches(chunks))
    return total / max(duration_s, 1e-9)


def verdict(requests: Requests, metrics: PointMetrics, slo: Slo | None,
            where: Where = everything, start: float = 0.0) -> SloVerdict | None:
    """The stored verdict of a point or phase (None without an SLO)."""
    if slo is None:
        return None
    judged = judge(metrics, slo)
    return SloVerdict(limits=slo, meets=judged.meets, violations=judged.violations,
                      goodput_rps=goodput(requests, metrics.duration_s, slo, where, start))
