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
failed attempts are counted apart as retry cost.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.contract.records import RequestRecord
from harness.contract.results import Distribution, PointMetrics
from harness.metrics import quantiles
from harness.store.requests_file import (
    Rows,
    Selection,
    StoredRequests,
    Where,
    everything,
    in_memory,
)

PERCENTILES = (50, 90, 95, 99)
RELIABLE_P99_N = 100  # below this a p99 is little more than the maximum
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_LIMIT = 20_000  # beyond, order-statistic intervals (a bootstrap of 2 M values: 12 s)
BURST_GAP_S = 0.0005  # tokens closer than this did not arrive one by one
BURST_SHARE_FLAG = 0.25  # a point whose tokens arrive in bursts this often is flagged

# A point's requests: the stored rows of its requests file, or records still in memory.
Requests = StoredRequests | Sequence[RequestRecord]


def source_of(requests: Requests, start: float = 0.0) -> StoredRequests:
    """`requests` as a source: records (which must hold their chunks) with times from
    `start`; a source (whose times already count from the point's start) as it is."""
    return in_memory(requests, start) if isinstance(requests, Sequence) else requests


# Per request, over Rows (harness/store/requests_file.py): one value each, NaN where a request
# has none.

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


# Per chunk, over one record that still holds its chunks (the pooled forms read Selections).

def itls(record: RequestRecord) -> list[float]:
    return np.diff(record.chunk_times).tolist()


def itls_per_token(record: RequestRecord) -> list[float]:
    gaps = np.diff(record.chunk_times)
    counts = record.chunk_tokens[1:]
    return [gap / k for gap, k in zip(gaps, counts, strict=True) for _ in range(k)]


def pooled_gaps(selection: Selection, per_token: bool = False) -> Iterator[np.ndarray]:
    """Every selected row's gaps between chunks (itls), or each spread over its chunk's
    tokens (itls_per_token), a batch of rows at a time."""
    for chunks in selection.read():
        gaps, tokens = chunks.gaps()
        yield np.repeat(gaps / tokens, tokens) if per_token else gaps


def burst_share(selection: Selection) -> float | None:
    """Share of the tokens after each request's first that arrived in a burst: a chunk's extra
    tokens came at once, and a chunk that follows the previous one within BURST_GAP_S came in
    a burst (burst_tokens, pooled)."""
    burst = after_first = 0
    for chunks in selection.read():
        gaps, _ = chunks.gaps()
        burst += int(np.sum(chunks.tokens - 1)) + int(np.sum(gaps < BURST_GAP_S))
        starts = np.concatenate([[0], np.cumsum(chunks.lengths)[:-1]])
        per_row = np.add.reduceat(chunks.tokens, starts[chunks.lengths > 0]) \
            if chunks.tokens.size else np.empty(0, dtype=np.int64)
        after_first += int(np.sum(np.maximum(per_row - 1, 0)))
    return burst / after_first if after_first else None


def burst_tokens(record: RequestRecord) -> tuple[int, int]:
    """(tokens that arrived in a burst, tokens after the first) of one record that still
    holds its chunks."""
    burst = sum(k - 1 for k in record.chunk_tokens)
    burst += int(np.sum(np.diff(record.chunk_times) < BURST_GAP_S))
    return burst, max(sum(record.chunk_tokens) - 1, 0)


def bootstrap_ci(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """95% percentile-bootstrap intervals of PERCENTILES, shape (len(PERCENTILES), 2)."""
    rng = np.random.default_rng(seed)
    n = values.size
    per_chunk = max(1, 2_000_000 // n)
    estimates = []
    for done in range(0, BOOTSTRAP_RESAMPLES, per_chunk):
        size = min(per_chunk, BOOTSTRAP_RESAMPLES - done)
        picks = values[rng.integers(0, n, size=(size, n))]
        estimates.append(np.percentile(picks, PERCENTILES, axis=1).T)
    return np.percentile(np.concatenate(estimates), [2.5, 97.5], axis=0).T


def distribution(values_s: Iterable[float | None] | np.ndarray) -> Distribution:
    """Percentiles and their intervals, in ms, of values in seconds (None and NaN skipped)."""
    if isinstance(values_s, np.ndarray):
        values = values_s.astype(float) * 1000.0
    else:
        values = np.asarray([v for v in values_s if v is not None], dtype=float) * 1000.0
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Distribution(n=0)
    values = np.sort(values)  # the intervals then do not depend on the order values came in
    pcts = np.percentile(values, PERCENTILES)  # linear interpolation, as vllm bench serve
    cis = bootstrap_ci(values) if values.size <= BOOTSTRAP_LIMIT else [
        [values[rank] for rank in quantiles.interval_ranks(values.size, p)] for p in PERCENTILES]
    fields = {f"p{p}": float(v) for p, v in zip(PERCENTILES, pcts, strict=True)}
    fields |= {f"p{p}_ci": [float(lo), float(hi)]
               for p, (lo, hi) in zip(PERCENTILES, cis, strict=True)}
    return Distribution(n=int(values.size), mean=float(values.mean()),
                        p99_low_n=values.size < RELIABLE_P99_N, **fields)


def streamed_distribution(read: Callable[[], Iterator[np.ndarray]]) -> Distribution:
    """distribution() of the values `read()` yields (seconds, NaN skipped), exact however
    many: held in memory up to quantiles.IN_MEMORY_VALUES, read in passes beyond (intervals
    then from order statistics, harness/metrics/quantiles.py)."""
    def present() -> Iterator[np.ndarray]:
        for values in read():
            yield values[~np.isnan(values)]

    held, size = [np.empty(0)], 0
    for values in present():
        held.append(values)
        size += values.size
        if size > quantiles.IN_MEMORY_VALUES:
            break
    else:
        return distribution(np.concatenate(held))
    del held

    def in_ms() -> Iterator[np.ndarray]:
        return (values * 1000.0 for values in present())

    summary = quantiles.summarize(in_ms)
    pcts, cis = quantiles.streamed_percentiles(in_ms, PERCENTILES, summary)
    fields = {f"p{p}": pcts[p] for p in PERCENTILES}
    fields |= {f"p{p}_ci": list(cis[p]) for p in PERCENTILES}
    return Distribution(n=summary.n, mean=summary.total / summary.n, p99_low_n=False, **fields)


def pooled_distribution(selection: Selection, per_token: bool = False) -> Distribution:
    """The distribution of the selected rows' pooled gaps (pooled_gaps)."""
    return streamed_distribution(lambda: pooled_gaps(selection, per_token))


def per_request(selection: Selection, value: Callable[[Rows], np.ndarray]) -> Distribution:
    """The distribution of one value of each selected row (ttft, tpot, ...)."""
    return streamed_distribution(lambda: (value(rows) for rows in selection.rows()))


def final_ok(rows: Rows) -> np.ndarray:
    """A request's successful last attempt: what latencies and throughput count."""
    return rows.final & rows.ok


@dataclass
class Counts:
    """The counts and token sums of a point, taken in one pass over its rows."""

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
    errors_by_kind: Counter = field(default_factory=Counter)

    def add(self, rows: Rows) -> None:
        final, ok = rows.final, final_ok(rows)
        failed = ~rows.ok
        self.requests += int(final.sum())
        self.attempts += len(rows)
        self.completed += int(ok.sum())
        self.failed_attempts += int(failed.sum())
        self.retried_requests += int((final & (rows.attempt > 1)).sum())
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
        lost = final & ~rows.ok
        self.errors_by_kind.update(kind or "other" for kind in rows.error_kind[lost])


def count(selection: Selection) -> Counts:
    counts = Counts()
    for rows in selection.rows():
        counts.add(rows)
    return counts


def point_metrics(requests: Requests, start: float, end: float,
                  where: Where = everything) -> PointMetrics:
    """The metrics of a point's requests (those `where` is true of) over the window
    [start, end]; records' times are on the window's clock, a source's count from `start`."""
    selection = Selection(source_of(requests, start), where)
    return metrics_of(selection, max(end - start, 1e-9))


def metrics_of(selection: Selection, duration: float, counts: Counts | None = None
               ) -> PointMetrics:
    """The metrics of the selected rows over a window of `duration` (`counts`: their counts,
    when already taken)."""
    counts = counts or count(selection)
    ok = selection.narrow(final_ok)
    share = burst_share(ok)
    errors = counts.requests - counts.completed
    return PointMetrics(
        requests=counts.requests,
        attempts=counts.attempts,
        completed=counts.completed,
        errors=errors,
        error_rate=errors / counts.requests if counts.requests else 0.0,
        failed_attempts=counts.failed_attempts,
        errors_by_kind=dict(counts.errors_by_kind),
        retried_requests=counts.retried_requests,
        retry_prompt_tokens=counts.retry_prompt_tokens,
        retry_output_tokens=counts.retry_output_tokens,
        duration_s=duration,
        prompt_tokens=counts.prompt_tokens,
        output_tokens=counts.output_tokens,
        request_throughput=counts.completed / duration,
        output_throughput=counts.output_tokens / duration,
        total_token_throughput=(counts.prompt_tokens + counts.output_tokens) / duration,
        ttft_ms=per_request(ok, ttft),
        tpot_ms=per_request(ok, tpot),
        itl_ms=pooled_distribution(ok),
        itl_per_token_ms=pooled_distribution(ok, per_token=True),
        e2e_ms=per_request(ok, e2e),
        ttft_from_intended_ms=per_request(ok, ttft_from_intended),
        e2e_from_intended_ms=per_request(ok, e2e_from_intended),
        dispatch_lag_ms=per_request(selection, dispatch_lag),
        output_length_mismatches=counts.output_length_mismatches,
        input_length_mismatches=counts.input_length_mismatches,
        burst_share=share,
        burst_delivery=share is not None and share >= BURST_SHARE_FLAG,
    )


def in_phase(name: str) -> Where:
    return lambda rows: rows.phase == name


def phase_metrics(requests: Requests, windows: Sequence, start: float = 0.0
                  ) -> dict[str, PointMetrics]:
    """Metrics of each phase of a profile: its requests over its own window (plus its drain).
    The windows are on the clock of `start`, the point's start (as point_metrics)."""
    source = source_of(requests, start)
    result = {}
    for window in windows:
        selection = Selection(source, in_phase(window.name))
        counts = count(selection)
        end = max(window.end - start, counts.last_done)
        result[window.name] = metrics_of(selection, max(end - (window.start - start), 1e-9),
                                         counts)
    return result
