"""Everything `harness run` stores of a point's requests, read from its requests file in one
pass: the point's metrics, each phase's metrics, the steady window, and the SLO verdicts with
their goodput. Every figure is a tally fed the same batches, one row group at a time
(harness/metrics/samples.py `read`), so memory stays bounded however long the point. The one
exception: a distribution of more than quantiles.IN_MEMORY_VALUES values (the pooled gaps of
a long point) has its exact percentiles found in a few more passes over the file, shared by
every such distribution (harness/metrics/quantiles.py). Reading a figure alone
(point_metrics, phase_metrics, steady_window, goodput) gives the same numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.config.slo import Slo
from harness.config.sustain import SustainConfig
from harness.contract.results import (
    PhaseResult,
    PointMetrics,
    SloVerdict,
    SteadyWindow,
    Sustained,
)
from harness.metrics.point_metrics import PhaseSpan, PointTally, in_phase, phase_duration
from harness.metrics.samples import Tally, read
from harness.metrics.slo import GoodTally, verdict
from harness.metrics.steady import SteadyTally
from harness.metrics.sustained import SustainTally
from harness.store.requests_file import StoredRequests


@dataclass
class PointReading:
    metrics: PointMetrics
    slo: SloVerdict | None
    phases: dict[str, PhaseResult]  # empty unless the point is a profile of phases
    steady: SteadyWindow  # without energy (harness.metrics.steady.with_energy)
    sustained: Sustained | None  # for a point judged by the `sustain` rules


def read_point(stored: StoredRequests, duration_s: float, phases: Sequence[PhaseSpan] = (),
               slo: Slo | None = None, sustain: SustainConfig | None = None) -> PointReading:
    """A point's figures over its window of `duration_s` seconds, each of `phases` over its
    own; verdicts against `slo` where there is one; with `sustain`, whether the point's
    open-loop rate was sustained (a point that was not misses its SLO)."""
    point, steady = PointTally(), SteadyTally()
    sustaining = SustainTally(sustain) if sustain is not None else None
    by_phase = {span.name: PointTally(in_phase(span.name)) for span in phases}
    good = {None: GoodTally(slo)} if slo else {}
    good |= {span.name: GoodTally(slo, in_phase(span.name)) for span in phases if slo}
    tallies: list[Tally] = [point, steady, *by_phase.values(), *good.values()]
    read(stored, tallies + ([sustaining] if sustaining else []))
    metrics = point.metrics(max(duration_s, 1e-9))
    sustained = sustaining.judge() if sustaining else None
    found = {}
    for span in phases:
        measured = by_phase[span.name].metrics(phase_duration(span, by_phase[span.name]))
        found[span.name] = PhaseResult(metrics=measured, slo=verdict(
            measured, slo, good[span.name]) if slo else None)
    return PointReading(
        metrics=metrics, slo=verdict(metrics, slo, good[None], sustained) if slo else None,
        phases=found, steady=steady.window(), sustained=sustained)
