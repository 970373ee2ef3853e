"""Every metric of a load point, defined once. Names and formulas follow `vllm bench serve`.

Per request (seconds; docs/metrics.md has the same definitions):
    TTFT = first token-bearing chunk - send
    E2E  = last token-bearing chunk - send
    TPOT = (E2E - TTFT) / (output_tokens - 1)      only when output_tokens > 1
    ITL  = gaps between consecutive token-bearing chunks (per chunk, pooled over requests)
    ITL per token = each gap divided evenly over the tokens its chunk carried
    from intended: the same, measured from the scheduled send time (open loop)
    dispatch lag = actual send - intended send
Per point, over the window from just before the first send to the last reply:
    request throughput = completed / window, output throughput = sum(output) / window,
    total token throughput = (sum(prompt) + sum(output)) / window
A request is one logical request: its attempts are its retries. Latencies and throughput count
successful final attempts; a request whose last attempt failed is an error; the tokens of
failed attempts are counted apart as retry cost. A request is retried only after an attempt
failed (harness.load.generator), so a successful attempt is its request's last, and every
request has exactly one first attempt.

Every figure is read from the point's requests file (harness/store/requests_file.py), its
times in seconds from the start of the point's window; `PointTally` takes them a batch at a
time, in the one pass over the file of harness/metrics/samples.py `read`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.contract.results import PointMetrics
from harness.metrics.samples import Sample, read
from harness.store.requests_file import Batch, Chunks, Rows, StoredRequests

BURST_GAP_S = 0.0005  # tokens closer than this did not arrive one by one
BURST_SHARE_FLAG = 0.25  # a point whose tokens arrive in bursts this often is flagged

Where = Callable[[Rows], np.ndarray]  # which rows of a batch a figure counts


# Per request, over Rows: one value each, NaN where a request has none.

def ttft(rows: Rows) -> np.ndarray:
    return rows.first_token_time - rows.send_time


def e2e(rows: Rows) -> np.ndarray:
    return rows.last_token_time - rows.send_time


def ttft_from_intended(rows: Rows) -> np.ndarray:
    return rows.first_token_time - rows.intended_time  # (NaN: closed loop)


def e2e_from_intended(rows: Rows) -> np.ndarray:
    return rows.last_token_time - rows.intended_time


def dispatch_lag(rows: Rows) -> np.ndarray:
    """How late the client sent a request against its schedule: first attempts only (a
    retry keeps its first attempt's intended time, and its backoff is not client lag)."""
    return np.where(rows.attempt == 1, rows.send_time - rows.intended_time, np.nan)


def output_tokens(rows: Rows) -> np.ndarray:
    """Server usage when reported, else the streamed token count."""
    return np.where(np.isnan(rows.completion_tokens), rows.streamed_tokens,
                    rows.completion_tokens).astype(np.int64)


def prompt_tokens(rows: Rows) -> np.ndarray:
    return np.where(np.isnan(rows.prompt_tokens), rows.input_tokens,
                    rows.prompt_tokens).astype(np.int64)


def tpot(rows: Rows) -> np.ndarray:
    n = output_tokens(rows)
    return np.where(n > 1, (e2e(rows) - ttft(rows)) / np.maximum(n - 1, 1), np.nan)


LATENCIES = {"ttft_ms": ttft, "tpot_ms": tpot, "e2e_ms": e2e,
             "ttft_from_intended_ms": ttft_from_intended, "e2e_from_intended_ms": e2e_from_intended}


# Per chunk, over the chunks of the rows a mask keeps, pooled over those rows.

def itl(chunks: Chunks, rows: np.ndarray) -> np.ndarray:
    """Every gap between consecutive chunks of a request."""
    return chunks.gaps[chunks.gaps_of_rows(rows)]


def itl_per_token(chunks: Chunks, rows: np.ndarray) -> np.ndarray:
    """Each gap spread evenly over the tokens of its later chunk."""
    keep = chunks.gaps_of_rows(rows)
    tokens = chunks.gap_tokens[keep]
    return np.repeat(chunks.gaps[keep] / tokens, tokens)


def burst_tokens(rows: Rows, chunks: Chunks, keep: np.ndarray) -> tuple[int, int]:
    """(tokens that arrived in a burst, tokens after each request's first) of the rows `keep`
    selects: a chunk's extra tokens came at once, and a chunk that follows the previous one
    within BURST_GAP_S came in a burst."""
    extra = int(np.sum((rows.streamed_tokens - chunks.lengths)[keep]))
    close = int(np.sum(itl(chunks, keep) < BURST_GAP_S))
    return extra + close, int(np.sum(np.maximum(rows.streamed_tokens[keep] - 1, 0)))


@dataclass
class Counts:
    """The counts and token sums of a point, taken a batch of rows at a time."""

    requests: int = 0
    attempts: int = 0
    completed: int = 0
    failed_attempts: int = 0
    retried_requests: int = 0
    retry_prompt_tokens: int = 0
    retry_output_tokens: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    output_length_mismatches: int = 0
    input_length_mismatches: int = 0
    last_done: float = -math.inf
    # each failed request's latest failed attempt, index -> (attempt, row number, error kind):
    # one entry per request that failed at least once (what errors_by_kind needs of them)
    _failed: dict[int, tuple[int, int, str]] = field(default_factory=dict)
    _recovered: set[int] = field(default_factory=set)  # retried requests that succeeded
    _rows: int = 0

    def add(self, rows: Rows) -> None:
        ok, failed = rows.ok, ~rows.ok
        # a request has one first attempt, a retried request one second attempt, and a
        # successful attempt is its request's last
        self.requests += int((rows.attempt == 1).sum())
        self.attempts += len(rows)
        self.completed += int(ok.sum())
        self.failed_attempts += int(failed.sum())
        self.retried_requests += int((rows.attempt == 2).sum())
        self.retry_prompt_tokens += int(rows.input_tokens[failed].sum())
        self.retry_output_tokens += int(rows.streamed_tokens[failed].sum())
        done = ok.nonzero()[0]
        outputs, prompts = output_tokens(rows)[done], prompt_tokens(rows)[done]
        self.prompt_tokens += int(prompts.sum())
        self.output_tokens += int(outputs.sum())
        self.output_length_mismatches += int((outputs != rows.max_tokens[done]).sum())
        self.input_length_mismatches += int((prompts != rows.input_tokens[done]).sum())
        if len(rows):
            self.last_done = max(self.last_done, float(np.nanmax(
                np.append(rows.done_time, -math.inf))))
        self._recovered.update(rows.index[ok & (rows.attempt > 1)].tolist())
        for row in failed.nonzero()[0].tolist():
            index, attempt = int(rows.index[row]), int(rows.attempt[row])
            if attempt > self._failed.get(index, (0,))[0]:
                self._failed[index] = (attempt, self._rows + row, rows.error_kind[row] or "other")
        self._rows += len(rows)

    @property
    def errors_by_kind(self) -> dict[str, int]:
        """Failed requests by the error of their last attempt (in the order the file has
        them)."""
        lost = sorted(found[1:] for index, found in self._failed.items()
                      if index not in self._recovered)
        return dict(Counter(kind for _, kind in lost))


class PointTally:
    """Every figure of PointMetrics over the rows `where` keeps (all of them, or a phase's)."""

    def __init__(self, where: Where | None = None):
        self.where = where
        self.counts = Counts()
        self.burst = self.after_first = 0
        self._figures: dict[str, Callable[[Batch], np.ndarray]] = {
            **{name: _of_successes(value) for name, value in LATENCIES.items()},
            "itl_ms": lambda batch: itl(batch.chunks, batch.rows.ok),
            "itl_per_token_ms": lambda batch: itl_per_token(batch.chunks, batch.rows.ok),
            "dispatch_lag_ms": lambda batch: dispatch_lag(batch.rows)}
        self._samples = {name: Sample(lambda batch, figure=figure: figure(self.chosen(batch)))
                         for name, figure in self._figures.items()}

    def chosen(self, batch: Batch) -> Batch:
        return batch if self.where is None else batch.take(self.where(batch.rows))

    def take(self, batch: Batch) -> None:
        chosen = self.chosen(batch)
        self.counts.add(chosen.rows)
        for name, figure in self._figures.items():
            self._samples[name].add(figure(chosen))
        burst, after_first = burst_tokens(chosen.rows, chosen.chunks, chosen.rows.ok)
        self.burst += burst
        self.after_first += after_first

    def samples(self) -> list[Sample]:
        return list(self._samples.values())

    def metrics(self, duration: float) -> PointMetrics:
        """The metrics over a window of `duration` seconds, once the reading is over."""
        counts, share = self.counts, self.burst / self.after_first if self.after_first else None
        errors = counts.requests - counts.completed
        return PointMetrics(
            requests=counts.requests,
            attempts=counts.attempts,
            completed=counts.completed,
            errors=errors,
            error_rate=errors / counts.requests if counts.requests else 0.0,
            failed_attempts=counts.failed_attempts,
            errors_by_kind=counts.errors_by_kind,
            retried_requests=counts.retried_requests,
            retry_prompt_tokens=counts.retry_prompt_tokens,
            retry_output_tokens=counts.retry_output_tokens,
            duration_s=duration,
            prompt_tokens=counts.prompt_tokens,
            output_tokens=counts.output_tokens,
            request_throughput=counts.completed / duration,
            output_throughput=counts.output_tokens / duration,
            total_token_throughput=(counts.prompt_tokens + counts.output_tokens) / duration,
            output_length_mismatches=counts.output_length_mismatches,
            input_length_mismatches=counts.input_length_mismatches,
            burst_share=share,
            burst_delivery=share is not None and share >= BURST_SHARE_FLAG,
            **{name: sample.distribution for name, sample in self._samples.items()})


def _of_successes(value: Callable[[Rows], np.ndarray]) -> Callable[[Batch], np.ndarray]:
    """A per-request value of a batch's successful attempts (what latencies count)."""
    return lambda batch: value(batch.rows)[batch.rows.ok]


@dataclass(frozen=True)
class PhaseSpan:
    """A phase of a traffic profile: its scheduled stretch, in seconds from the point's start."""

    name: str
    start_s: float
    end_s: float


def in_phase(name: str) -> Where:
    return lambda rows: rows.phase == name


def phase_duration(span: PhaseSpan, tally: PointTally) -> float:
    """A phase's window: its scheduled stretch plus the drain of its replies."""
    return max(max(span.end_s, tally.counts.last_done) - span.start_s, 1e-9)


def point_metrics(stored: StoredRequests, duration_s: float) -> PointMetrics:
    """The metrics of a point's requests over its window of `duration_s` seconds."""
    tally = PointTally()
    read(stored, [tally])
    return tally.metrics(max(duration_s, 1e-9))


def phase_metrics(stored: StoredRequests, spans: Sequence[PhaseSpan]
                  ) -> dict[str, PointMetrics]:
    """Metrics of each phase of a profile: its requests over its own window (plus its drain)."""
    tallies = {span.name: PointTally(in_phase(span.name)) for span in spans}
    read(stored, list(tallies.values()))
    return {span.name: tallies[span.name].metrics(phase_duration(span, tallies[span.name]))
            for span in spans}
