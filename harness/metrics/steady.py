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

import math

import numpy as np
import pandas as pd

from harness.contract.results import SteadyWindow
from harness.metrics.point_metrics import (
    Requests,
    e2e,
    final_ok,
    per_request,
    pooled_distribution,
    prompt_tokens,
    source_of,
    tpot,
    ttft,
)
from harness.store.requests_file import Selection

RULE = "first completion to last send"
MIN_COMPLETIONS = 2  # fewer completions in the window give no rate worth the name


def steady_bounds(requests: Requests, point_start: float = 0.0) -> tuple[float, float] | None:
    """(start, end) of the steady window in seconds from the point's start (records' times
    count from `point_start`), or None if there is none."""
    first_done, last_send = math.inf, -math.inf
    for rows in Selection(source_of(requests, point_start)).rows():
        done = rows.last_token_time[rows.ok & ~np.isnan(rows.last_token_time)]
        if done.size:
            first_done = min(first_done, float(done.min()))
        last_send = max(last_send, float(rows.send_time.max()))
    return (first_done, last_send) if last_send > first_done else None


def steady_window(requests: Requests, point_start: float,
                  energy_j: float | None = None, samples: pd.DataFrame | None = None,
                  window: tuple[float, float] | None = None) -> SteadyWindow:
    """The steady window's metrics; `energy_j` over `window` (the point's energy window on
    the clock of `point_start`) is apportioned by the GPU power `samples` (t_s,
    power_avg_w, on that clock too). Records' times are on that clock; a source's count from
    `point_start`."""
    source = source_of(requests, point_start)
    bounds = steady_bounds(source)
    if bounds is None:
        return SteadyWindow(rule=RULE, note="no steady window: the last request was sent "
                                            "before the first one completed")
    start, end = bounds

    def inside(times: np.ndarray) -> np.ndarray:
        return (times >= start) & (times <= end)

    finals = Selection(source, final_ok)
    in_window = finals.narrow(lambda rows: inside(rows.send_time))
    completions = prefilled = sent = 0
    for rows in finals.rows():
        completions += int(inside(rows.last_token_time).sum())
        prefilled += int(prompt_tokens(rows)[inside(rows.first_token_time)].sum())
        sent += int(inside(rows.send_time).sum())
    duration = end - start
    out = tokens_between(finals, start, end)
    note = None
    if completions < MIN_COMPLETIONS:
        note = f"only {completions} completion(s) in the steady window: a rough rate"
    steady_j = apportion(energy_j, samples, window, (start + point_start, end + point_start))
    return SteadyWindow(
        rule=RULE, start_s=start, end_s=end, duration_s=duration,
        requests=sent, completed=completions, output_tokens=out,
        request_throughput=completions / duration, output_throughput=out / duration,
        total_token_throughput=(prefilled + out) / duration,
        ttft_ms=per_request(in_window, ttft),
        tpot_ms=per_request(in_window, tpot),
        itl_ms=pooled_distribution(in_window),
        e2e_ms=per_request(in_window, e2e),
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
