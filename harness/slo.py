"""The one SLO evaluator: does a point meet its SLO, by how much does it miss, and how many
requests per second met it (goodput, as DistServe and `vllm bench serve` define it). Used by
`harness run`, the capacity search and `harness cost` alike.

On open-loop points TTFT and E2E are taken from the intended send time, so a client or server
that falls behind its schedule cannot hide the queueing (docs/metrics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.config.slo import Limit, Slo
from harness.metrics import (
    e2e,
    e2e_from_intended,
    final_attempts,
    itls,
    tpot,
    ttft,
    ttft_from_intended,
)
from harness.records import RequestRecord
from harness.results import Distribution, PointMetrics, SloVerdict


@dataclass(frozen=True)
class Judgement:
    meets: bool
    violations: list[str]  # 'ttft_p95_ms 812.0 > 500', one per missed limit
    shortfall: float  # the worst value / limit over every limit: <= 1 meets, inf: unmeasured


def distribution(metrics: PointMetrics, metric: str) -> Distribution:
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
        value = distribution(metrics, limit.metric).stat(limit.stat)
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


def _request_value(record: RequestRecord, limit: Limit) -> float | None:
    """The request's own value of a limit's metric, in ms (None: it has none, e.g. the TPOT
    of a one-token answer). A request has one TTFT, TPOT and E2E, which every limit on that
    metric bounds; its ITL is a sample of gaps, of which the limit's statistic is taken."""
    if limit.metric == "ttft":
        seconds = ttft_from_intended(record) if record.intended_time is not None else ttft(record)
    elif limit.metric == "e2e":
        seconds = e2e_from_intended(record) if record.intended_time is not None else e2e(record)
    elif limit.metric == "tpot":
        seconds = tpot(record)
    else:
        gaps = itls(record)
        if not gaps:
            return None
        seconds = float(np.mean(gaps) if limit.stat == "mean"
                        else np.percentile(gaps, float(limit.stat[1:])))
    return None if seconds is None else seconds * 1000


def good(record: RequestRecord, slo: Slo) -> bool:
    """A request is good when it succeeded and its own metrics meet every latency limit."""
    if not record.ok:
        return False
    for limit in slo.limits():
        value = _request_value(record, limit)
        if value is not None and value > limit.ms:
            return False
    return True


def goodput(records: Sequence[RequestRecord], duration_s: float, slo: Slo) -> float:
    """Good requests per second over the window; failed requests count as misses."""
    finals = final_attempts(records)
    return sum(good(r, slo) for r in finals) / max(duration_s, 1e-9)


def verdict(records: Sequence[RequestRecord], metrics: PointMetrics,
            slo: Slo | None) -> SloVerdict | None:
    """The stored verdict of a point or phase (None without an SLO)."""
    if slo is None:
        return None
    judged = judge(metrics, slo)
    return SloVerdict(limits=slo, meets=judged.meets, violations=judged.violations,
                      goodput_rps=goodput(records, metrics.duration_s, slo))
