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
    energy             = per GPU, its energy counter (sampled with the power, ~10 Hz)
                         interpolated at the end minus at the start, summed over the GPUs
A point whose last send comes before its first completion (it never left its ramp: fewer
requests than fill two batches, or a short open-loop point) has no steady window.

The window is found in the same pass over the requests file as every other figure of the
point (harness/metrics/samples.py), while it is still moving: the earliest completion read so
far only comes earlier and the latest send only later, so the window read so far only widens
and what falls in it stays in it. What falls outside waits (`Pending`) until the window
reaches it or the file ends: the chunks and requests of the ramp before the first completion
read so far, and the tokens that came after the latest send read so far, about what the load
keeps in flight.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from harness.contract.results import SteadyWindow
from harness.metrics.point_metrics import LATENCIES, itl, prompt_tokens
from harness.metrics.samples import Sample, read
from harness.store.requests_file import Batch, StoredRequests

RULE = "first completion to last send"
MIN_COMPLETIONS = 2  # fewer completions in the window give no rate worth the name
SUMS = ("completed", "prefilled", "sent", "output_tokens")
DISTRIBUTIONS = ("ttft_ms", "tpot_ms", "e2e_ms", "itl_ms")


def placed(ok: Batch) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What the steady window counts of a batch's successful attempts, figure by figure: each
    value with the time that places it in the window or out of it. A completion counts at its
    last token, a prompt's tokens at its first token, a request and its latencies and gaps at
    its send, an output token at its chunk's arrival."""
    rows, chunks = ok.rows, ok.chunks
    one = np.ones(len(rows), dtype=np.int64)
    return {"completed": (rows.last_token_time, one),
            "prefilled": (rows.first_token_time, prompt_tokens(rows)),
            "sent": (rows.send_time, one),
            "output_tokens": (chunks.times, chunks.tokens),
            **{name: (rows.send_time, LATENCIES[name](rows)) for name in DISTRIBUTIONS[:3]},
            "itl_ms": (np.repeat(rows.send_time, chunks.gaps_per_row),
                       itl(chunks, np.ones(len(rows), dtype=bool)))}


class Pending:
    """Values, each at a time, that count once the steady window holds their time."""

    def __init__(self, counted: Callable[[np.ndarray], None]):
        self.counted = counted
        self.times: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def add(self, times: np.ndarray, values: np.ndarray) -> None:
        self.times.append(times)
        self.values.append(values)

    def settle(self, start: float, end: float) -> None:
        """Count the values whose time is in [start, end]; keep the others waiting."""
        times, values = np.concatenate(self.times), np.concatenate(self.values)
        inside = (times >= start) & (times <= end)
        self.counted(values[inside])
        waiting = ~inside & ~np.isnan(times)  # (a time that is NaN never counts)
        self.times, self.values = [times[waiting]], [values[waiting]]


class SteadyTally:
    """The steady window and its figures, read a batch at a time."""

    def __init__(self) -> None:
        self.start, self.end = math.inf, -math.inf  # as far as the batches read so far say
        self.sums = dict.fromkeys(SUMS, 0)
        self._samples = {name: Sample(lambda batch, name=name: self._in_window(
            *placed(_ok(batch))[name])) for name in DISTRIBUTIONS}
        self._waiting = {name: Pending(lambda values, name=name: self._add(name, values))
                         for name in SUMS}
        self._waiting |= {name: Pending(sample.add) for name, sample in self._samples.items()}

    def _add(self, name: str, values: np.ndarray) -> None:
        self.sums[name] += int(values.sum())

    def _in_window(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        return values[(times >= self.start) & (times <= self.end)]

    def take(self, batch: Batch) -> None:
        rows = batch.rows
        if not len(rows):
            return
        done = rows.last_token_time[rows.ok & ~np.isnan(rows.last_token_time)]
        if done.size:
            self.start = min(self.start, float(done.min()))
        self.end = max(self.end, float(rows.send_time.max()))
        for name, (times, values) in placed(_ok(batch)).items():
            self._waiting[name].add(times, values)
            self._waiting[name].settle(self.start, self.end)  # (after the last batch: all)

    def samples(self) -> list[Sample]:
        return list(self._samples.values())

    def window(self) -> SteadyWindow:
        """The steady window's figures (without energy: with_energy), once the reading is
        over."""
        if not self.end > self.start:
            return SteadyWindow(rule=RULE, note="no steady window: the last request was sent "
                                                "before the first one completed")
        duration, sums = self.end - self.start, self.sums
        completions, out = sums["completed"], sums["output_tokens"]
        note = None
        if completions < MIN_COMPLETIONS:
            note = f"only {completions} completion(s) in the steady window: a rough rate"
        return SteadyWindow(
            rule=RULE, start_s=self.start, end_s=self.end, duration_s=duration,
            requests=sums["sent"], completed=completions, output_tokens=out,
            request_throughput=completions / duration, output_throughput=out / duration,
            total_token_throughput=(sums["prefilled"] + out) / duration,
            **{name: sample.distribution for name, sample in self._samples.items()}, note=note)


def _ok(batch: Batch) -> Batch:
    """A batch's successful attempts: what the steady window counts."""
    return batch.take(batch.rows.ok)


def steady_window(stored: StoredRequests) -> SteadyWindow:
    """The steady window of a point's requests, without energy."""
    tally = SteadyTally()
    read(stored, [tally])
    return tally.window()


def with_energy(steady: SteadyWindow, samples: pd.DataFrame | None, point_start: float,
                unmeasured: str | None = None) -> SteadyWindow:
    """The steady window with its GPU energy from the counter readings in `samples` (t_s on the
    monitor's clock, uuid, energy_mj), the point having started at `point_start` on that
    clock; `unmeasured`: why the point's own GPU energy was not measured, if it was not."""
    if steady.start_s is None:
        return steady
    bounds = (steady.start_s + point_start, steady.end_s + point_start)
    joules, why = (None, unmeasured) if unmeasured else counter_energy_j(samples, bounds)
    out = steady.output_tokens
    return steady.model_copy(update={
        "energy_j": joules, "j_per_output_token": joules / out if joules and out else None,
        "energy_note": f"not measured: {why}" if joules is None else None})


def counter_energy_j(samples: pd.DataFrame | None,
                     bounds: tuple[float, float]) -> tuple[float | None, str | None]:
    """(J, None): per GPU, its energy counter interpolated at the end of `bounds` minus at the
    start, summed over the GPUs; or (None, why not). Each GPU's rows have their own times (a
    sample reads the GPUs one after another), so each GPU is interpolated on its own."""
    if samples is None or samples.empty:
        return None, "no GPU samples"
    if "energy_mj" not in samples.columns:  # samples stored before they held the counter
        return None, "the GPU samples hold no energy counter (energy_mj)"
    total_mj = 0.0
    for uuid, rows in samples.groupby("uuid", sort=True):
        rows = rows.dropna(subset=["energy_mj"]).sort_values("t_s")
        times, counter = rows["t_s"].to_numpy(), rows["energy_mj"].to_numpy(dtype=float)
        if not len(rows) or times[0] > bounds[0] or times[-1] < bounds[1]:
            return None, f"the energy counter samples of {uuid} do not cover the steady window"
        if (np.diff(counter) < 0).any():
            return None, f"the energy counter of {uuid} went backwards (driver reloaded?)"
        start, end = np.interp(bounds, times, counter)
        total_mj += end - start
    return total_mj / 1000.0, None
