"""Did the server sustain an open-loop rate, or only pass its SLO because the window ended
before the queue showed? Rule (docs/metrics.md, "Sustained rates"), over the point's steady
window (harness/metrics/steady.py: first completion to last arrival):

    offered  = requests that arrived in the window (at their intended send) / its length
    achieved = requests that completed in the same span shifted by d (their last token) / its
               length, d the median E2E of the window's first quarter of arrivals: what a
               server that keeps its latency completes of those arrivals (the window's own
               span would miss the requests still in flight at its end, about d x rate)
    sustained when
      achieved >= min_share x offered, or falls short by at most MIN_SHORTFALL requests (the
      span's edges move a request or two in or out)      (what arrives is served: whatever
                                                          is not, is a backlog growing by it)
      the median TTFT from the intended send of the window's last quarter of arrivals is at
      most max_latency_growth x its first quarter's, or climbed less than latency_floor_ms
      the window holds min_requests arrivals and lasts min_e2e_spans x d (a shorter one
      cannot show a queue: it is not taken as sustained, unless it showed one already)
    waiting  = requests that arrived and had not ended when the window closed

Each request counts once: it arrives with its first attempt and ends with its last.
"""

from __future__ import annotations

import numpy as np

from harness.config.sustain import SustainConfig
from harness.contract.results import Sustained
from harness.metrics.samples import Sample
from harness.store.requests_file import Batch

COLUMNS = ("index", "attempt", "arrival", "end", "ok", "last_token", "ttft", "e2e")
MIN_SHORTFALL = 3  # requests a sustained window may come short by at its edges


class SustainTally:
    """The columns the rule needs, one value per attempt (no chunk is kept), read a batch at a
    time as every other figure of the point."""

    def __init__(self, rules: SustainConfig):
        self.rules = rules
        self._columns: dict[str, list[np.ndarray]] = {name: [] for name in COLUMNS}

    def take(self, batch: Batch) -> None:
        rows = batch.rows
        arrival = np.where(np.isnan(rows.intended_time), rows.send_time, rows.intended_time)
        found = {"index": rows.index, "attempt": rows.attempt, "arrival": arrival,
                 "end": rows.done_time, "ok": rows.ok, "last_token": rows.last_token_time,
                 "ttft": rows.first_token_time - arrival,
                 "e2e": rows.last_token_time - arrival}
        for name in COLUMNS:
            self._columns[name].append(found[name])

    def samples(self) -> list[Sample]:
        return []

    def judge(self) -> Sustained:
        return judge_requests(requests_of(
            {name: np.concatenate(parts) if parts else np.empty(0)
             for name, parts in self._columns.items()}), self.rules)


def requests_of(attempts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One row per request: its first attempt's arrival, its last attempt's end, and that
    attempt's outcome and latencies."""
    if not attempts["index"].size:
        return {name: np.empty(0) for name in ("arrival", "end", "ok", "done", "ttft", "e2e")}
    order = np.lexsort((attempts["attempt"], attempts["index"]))
    index = attempts["index"][order]
    first = np.r_[True, index[1:] != index[:-1]]
    last = np.r_[index[1:] != index[:-1], True]
    pick = lambda name, which: attempts[name][order][which]  # noqa: E731
    ok = pick("ok", last).astype(bool)
    return {"arrival": pick("arrival", first), "end": pick("end", last), "ok": ok,
            "done": np.where(ok, pick("last_token", last), np.nan),
            "ttft": np.where(ok, pick("ttft", last), np.nan),
            "e2e": np.where(ok, pick("e2e", last), np.nan)}


def judge_requests(requests: dict[str, np.ndarray], rules: SustainConfig) -> Sustained:
    arrival, done = requests["arrival"], requests["done"]
    if not np.isfinite(done).any():
        return Sustained(sustained=False, reason="no request completed")
    start, end = float(np.nanmin(done)), float(arrival.max())
    duration = end - start
    if duration <= 0:
        return Sustained(sustained=False, reason="no steady window: the last request arrived "
                                                 "before the first one completed")
    inside = (arrival >= start) & (arrival <= end)
    shift = _first_quarter_median(arrival[inside], requests["e2e"][inside])
    arrived = int(inside.sum())
    completed = int(((done >= start + shift) & (done <= end + shift)).sum())
    ended = np.where(np.isnan(requests["end"]), np.inf, requests["end"])
    waiting = int(((arrival <= end) & (ended > end)).sum())
    first, last = _quarter_medians(arrival[inside], requests["ttft"][inside])
    found = Sustained(
        sustained=True, window_s=duration, offered_rps=arrived / duration,
        achieved_rps=completed / duration, waiting=waiting, arrived=arrived,
        ttft_first_quarter_ms=first, ttft_last_quarter_ms=last,
        e2e_first_quarter_ms=shift * 1000)
    why = _why_not(found, rules)
    return found.model_copy(update={"sustained": why is None, "reason": why})


def _first_quarter_median(arrival: np.ndarray, e2e_s: np.ndarray) -> float:
    """Median E2E (s) of the first quarter of the arrivals (of all, with fewer than 4)."""
    order = np.argsort(arrival, kind="stable")
    first = e2e_s[order][:max(len(order) // 4, 1)]
    first = first[np.isfinite(first)]
    return float(np.median(first)) if first.size else 0.0


def _quarter_medians(arrival: np.ndarray, ttft_s: np.ndarray) -> tuple[float | None, ...]:
    """Median TTFT (ms) of the first and the last quarter of the arrivals, by arrival."""
    order = np.argsort(arrival, kind="stable")
    values = ttft_s[order] * 1000
    quarter = len(values) // 4
    if quarter == 0:
        return None, None

    def median(part: np.ndarray) -> float | None:
        part = part[np.isfinite(part)]
        return float(np.median(part)) if part.size else None

    return median(values[:quarter]), median(values[-quarter:])


def _why_not(found: Sustained, rules: SustainConfig) -> str | None:
    """Why the rate is not sustained (None: it is), in the words every view shows. A window
    too short to show a queue proves nothing either way, but one that shows it does."""
    shortfall = (found.offered_rps - found.achieved_rps) * found.window_s
    if found.achieved_rps < rules.min_share * found.offered_rps and \
            shortfall > MIN_SHORTFALL:
        return (f"achieved {found.achieved_rps:.3g} of {found.offered_rps:.3g} req/s, "
                f"{found.waiting} waiting")
    first, last = found.ttft_first_quarter_ms, found.ttft_last_quarter_ms
    if first is not None and last is not None and last > rules.max_latency_growth * first \
            and last - first > rules.latency_floor_ms:
        return (f"TTFT climbed {first:.0f} -> {last:.0f} ms from the first to the last "
                f"quarter of arrivals, {found.waiting} waiting")
    latency_s = found.e2e_first_quarter_ms / 1000
    if found.arrived < rules.min_requests or found.window_s < rules.min_e2e_spans * latency_s:
        return (f"too short to tell: {found.arrived} arrivals over {found.window_s:.1f} s "
                f"(at least {rules.min_requests}, over {rules.min_e2e_spans:g} x E2E "
                f"{latency_s:.2f} s)")
    return None
