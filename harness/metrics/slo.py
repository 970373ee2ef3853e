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
from harness.contract.results import Distribution, PointMetrics, SloVerdict, Sustained
from harness.metrics.point_metrics import (
    Where,
    e2e,
    e2e_from_intended,
    tpot,
    ttft,
    ttft_from_intended,
)
from harness.metrics.samples import Sample, read
from harness.store.requests_file import Batch, Chunks, StoredRequests


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


def judge(metrics: PointMetrics, slo: Slo, sustained: Sustained | None = None) -> Judgement:
    """Every limit of `slo` against the point's metrics; an open-loop point whose rate was not
    sustained (harness/metrics/sustained.py) misses whatever its percentiles say."""
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
    if sustained is not None and not sustained.sustained:
        missed.append(f"not sustained ({sustained.reason})")
        offered, achieved = sustained.offered_rps, sustained.achieved_rps
        ratio = offered / achieved if offered and achieved else math.inf
        worst = max(worst, ratio, 1.0 + 1e-9)  # a miss, however close its figures
    return Judgement(not missed, missed, worst)


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
    """`stat` ('mean' or 'pNN') of each row's own gaps between chunks (NaN: fewer than two).
    Rows with as many gaps are taken together, as the rows of one array: numpy reduces each
    row of it as it would that row alone."""
    per_row = chunks.gaps_per_row
    found = np.full(per_row.size, np.nan)
    starts = np.cumsum(per_row) - per_row
    for count in np.unique(per_row[per_row > 0]).tolist():
        rows = np.flatnonzero(per_row == count)
        own = chunks.gaps[starts[rows, None] + np.arange(count)]
        found[rows] = (own.mean(axis=1) if stat == "mean"
                       else np.percentile(own, float(stat[1:]), axis=1))
    return found


def good(batch: Batch, slo: Slo) -> np.ndarray:
    """A request is good when it succeeded and its own metrics meet every latency limit."""
    meets = batch.rows.ok.copy()
    for limit in slo.limits():
        values = _request_values(batch, limit)
        meets &= ~(values > limit.ms)  # (NaN: no value, no miss)
    return meets


class GoodTally:
    """The good requests among the rows `where` keeps (all of them, or a phase's). A failed
    request is never good, and only a request's last attempt can succeed: the successful
    attempts are all that is judged."""

    def __init__(self, slo: Slo, where: Where | None = None):
        self.slo, self.where = slo, where
        self.good = 0
        self._gaps = any(limit.metric == "itl" for limit in slo.limits())  # chunks needed

    def take(self, batch: Batch) -> None:
        keep = batch.rows.ok if self.where is None else batch.rows.ok & self.where(batch.rows)
        judged = Batch(batch.rows.take(keep), batch.chunks.take(keep) if self._gaps else None)
        self.good += int(good(judged, self.slo).sum())

    def samples(self) -> list[Sample]:
        return []

    def goodput(self, duration_s: float) -> float:
        """Good requests per second over the window."""
        return self.good / max(duration_s, 1e-9)


def goodput(stored: StoredRequests, duration_s: float, slo: Slo, where: Where | None = None
            ) -> float:
    """Good requests per second over the window; failed requests count as misses."""
    tally = GoodTally(slo, where)
    read(stored, [tally])
    return tally.goodput(duration_s)


def verdict(metrics: PointMetrics, slo: Slo, good: GoodTally,
            sustained: Sustained | None = None) -> SloVerdict:
    """The stored verdict of a point or phase, its goodput over its metrics' window."""
    judged = judge(metrics, slo, sustained)
    return SloVerdict(limits=slo, meets=judged.meets, violations=judged.violations,
                      goodput_rps=good.goodput(metrics.duration_s))
