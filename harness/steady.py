"""The steady window of a point: its load without the start-up ramp and the final drain.

Rule (docs/metrics.md states it too), from the point's own request records:
    start = the first completion of a request (by then the first requests are through
            prefill and the batch the load keeps has filled: the ramp is over)
    end   = the last send (after it no new work arrives: the engine only drains)
Over [start, end]:
    output throughput  = output tokens of the chunks that arrived in it / its length
    request throughput = requests that completed in it / its length
    total throughput   = (prompt tokens of requests whose first token came in it + those
                          output tokens) / its length
    latencies          = TTFT, TPOT, ITL, E2E of the successful requests sent in it
    energy             = the point's GPU counter energy times the share of the sampled GPU
                         power that falls in it (samples place the counter's joules in time)
A point whose last send comes before its first completion (it never left its ramp: fewer
requests than fill two batches, or a short open-loop point) has no steady window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.chunks import ChunkSource, Selection, select
from harness.metrics import (
    distribution,
    e2e,
    final_attempts,
    pooled_distribution,
    prompt_tokens,
    tpot,
    ttft,
)
from harness.records import RequestRecord
from harness.results import SteadyWindow

RULE = "first completion to last send"
MIN_COMPLETIONS = 2  # fewer completions in the window give no rate worth the name


def steady_bounds(records: Sequence[RequestRecord]) -> tuple[float, float] | None:
    """(start, end) of the steady window on the records' clock, or None if there is none."""
    done = [r.last_token_time for r in records if r.ok and r.last_token_time is not None]
    if not done or not records:
        return None
    start, end = min(done), max(r.send_time for r in records)
    return (start, end) if end > start else None


def steady_window(records: Sequence[RequestRecord], point_start: float,
                  energy_j: float | None = None, samples: pd.DataFrame | None = None,
                  window: tuple[float, float] | None = None,
                  chunks: ChunkSource | None = None) -> SteadyWindow:
    """The steady window's metrics; `energy_j` over `window` (the point's energy window on
    the records' clock) is apportioned by the GPU power `samples` (t_s, power_avg_w). The
    per-chunk figures read `chunks` (times from `point_start`), or the records' own."""
    bounds = steady_bounds(records)
    if bounds is None:
        return SteadyWindow(rule=RULE, note="no steady window: the last request was sent "
                                            "before the first one completed")
    start, end = bounds
    finals = [r for r in final_attempts(records) if r.ok]
    in_window = [r for r in finals if start <= r.send_time <= end]
    completions = sum(start <= r.last_token_time <= end for r in finals)
    duration = end - start
    out = tokens_between(select(finals, chunks, point_start), start - point_start,
                         end - point_start)
    prefilled = sum(prompt_tokens(r) for r in finals if start <= r.first_token_time <= end)
    note = None
    if completions < MIN_COMPLETIONS:
        note = f"only {completions} completion(s) in the steady window: a rough rate"
    steady_j = apportion(energy_j, samples, window, bounds)
    return SteadyWindow(
        rule=RULE, start_s=start - point_start, end_s=end - point_start, duration_s=duration,
        requests=len(in_window), completed=completions, output_tokens=out,
        request_throughput=completions / duration, output_throughput=out / duration,
        total_token_throughput=(prefilled + out) / duration,
        ttft_ms=distribution(ttft(r) for r in in_window),
        tpot_ms=distribution(tpot(r) for r in in_window),
        itl_ms=pooled_distribution(select(in_window, chunks, point_start)),
        e2e_ms=distribution(e2e(r) for r in in_window),
        energy_j=steady_j, j_per_output_token=steady_j / out if steady_j and out else None,
        note=note)


def tokens_between(selection: Selection, start_s: float, end_s: float) -> int:
    """Tokens of the chunks that arrived in [start_s, end_s] (seconds from the point's start)."""
    total = 0
    for batch in selection.read():
        inside = (batch.times >= start_s) & (batch.times <= end_s)
        total += int(batch.tokens[inside].sum())
    return total


def apportion(energy_j: float | None, samples: pd.DataFrame | None,
              window: tuple[float, float] | None, bounds: tuple[float, float]) -> float | None:
    """The part of `energy_j` (over `window`) that falls in `bounds`, weighted by the sampled
    power summed over GPUs; None without energy or without samples to place it."""
    if energy_j is None or samples is None or window is None or samples.empty:
        return None
    power = samples.groupby("t_s")["power_avg_w"].sum().sort_index()
    grid = np.linspace(window[0], window[1], 512)
    watts = np.interp(grid, power.index.to_numpy(), power.to_numpy())
    inside = (grid >= bounds[0]) & (grid <= bounds[1])
    total = float(watts.sum())
    return energy_j * float(watts[inside].sum()) / total if total > 0 else None
