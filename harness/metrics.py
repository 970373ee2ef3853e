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

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from harness import quantiles
from harness.chunks import ChunkSource, Selection, select
from harness.records import RequestRecord
from harness.results import Distribution, PointMetrics

PERCENTILES = (50, 90, 95, 99)
RELIABLE_P99_N = 100  # below this a p99 is little more than the maximum
BOOTSTRAP_RESAMPLES = 200
BURST_GAP_S = 0.0005  # tokens closer than this did not arrive one by one
BURST_SHARE_FLAG = 0.25  # a point whose tokens arrive in bursts this often is flagged


def ttft(record: RequestRecord) -> float:
    return record.first_token_time - record.send_time


def e2e(record: RequestRecord) -> float:
    return record.last_token_time - record.send_time


def ttft_from_intended(record: RequestRecord) -> float | None:
    if record.intended_time is None:
        return None
    return record.first_token_time - record.intended_time


def e2e_from_intended(record: RequestRecord) -> float | None:
    if record.intended_time is None:
        return None
    return record.last_token_time - record.intended_time


def dispatch_lag(record: RequestRecord) -> float | None:
    """How late the client sent a request against its schedule: first attempts only (a
    retry keeps its first attempt's intended time, and its backoff is not client lag)."""
    if record.intended_time is None or record.attempt > 1:
        return None
    return record.send_time - record.intended_time


def output_tokens(record: RequestRecord) -> int:
    """Server usage when reported, else the streamed token count."""
    if record.completion_tokens is not None:
        return record.completion_tokens
    return record.streamed_tokens


def prompt_tokens(record: RequestRecord) -> int:
    return record.prompt_tokens if record.prompt_tokens is not None else record.input_tokens


def tpot(record: RequestRecord) -> float | None:
    n = output_tokens(record)
    return (e2e(record) - ttft(record)) / (n - 1) if n > 1 else None


def itls(record: RequestRecord) -> list[float]:
    return np.diff(record.chunk_times).tolist()


def itls_per_token(record: RequestRecord) -> list[float]:
    gaps = np.diff(record.chunk_times)
    counts = record.chunk_tokens[1:]
    return [gap / k for gap, k in zip(gaps, counts, strict=True) for _ in range(k)]


def pooled_gaps(selection: Selection, per_token: bool = False) -> Iterator[np.ndarray]:
    """Every selected record's gaps between chunks (itls), or each spread over its chunk's
    tokens (itls_per_token), a batch of records at a time."""
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
    """Percentiles and their intervals, in ms, of values in seconds (None skipped). A numpy
    array is taken as it is: the per-token gaps of a long point are never Python floats."""
    if isinstance(values_s, np.ndarray):
        values = values_s.astype(float) * 1000.0
    else:
        values = np.asarray([v for v in values_s if v is not None], dtype=float) * 1000.0
    if values.size == 0:
        return Distribution(n=0)
    values = np.sort(values)  # the intervals then do not depend on the order values came in
    pcts = np.percentile(values, PERCENTILES)  # linear interpolation, as vllm bench serve
    cis = bootstrap_ci(values)
    fields = {f"p{p}": float(v) for p, v in zip(PERCENTILES, pcts, strict=True)}
    fields |= {f"p{p}_ci": [float(lo), float(hi)]
               for p, (lo, hi) in zip(PERCENTILES, cis, strict=True)}
    return Distribution(n=int(values.size), mean=float(values.mean()),
                        p99_low_n=values.size < RELIABLE_P99_N, **fields)


def pooled_distribution(selection: Selection, per_token: bool = False) -> Distribution:
    """distribution() of the pooled gaps, exact however many: held in memory up to
    quantiles.IN_MEMORY_VALUES, read in passes beyond (intervals then from order statistics,
    harness/quantiles.py)."""
    held, size = [np.empty(0)], 0
    for gaps in pooled_gaps(selection, per_token):
        held.append(gaps)
        size += gaps.size
        if size > quantiles.IN_MEMORY_VALUES:
            break
    else:
        return distribution(np.concatenate(held))
    del held

    def read() -> Iterator[np.ndarray]:
        return (gaps * 1000.0 for gaps in pooled_gaps(selection, per_token))

    summary = quantiles.summarize(read)
    pcts, cis = quantiles.streamed_percentiles(read, PERCENTILES, summary)
    fields = {f"p{p}": pcts[p] for p in PERCENTILES}
    fields |= {f"p{p}_ci": list(cis[p]) for p in PERCENTILES}
    return Distribution(n=summary.n, mean=summary.total / summary.n, p99_low_n=False, **fields)


def final_attempts(records: Sequence[RequestRecord]) -> list[RequestRecord]:
    last: dict[int, RequestRecord] = {}
    for record in records:
        if record.index not in last or record.attempt > last[record.index].attempt:
            last[record.index] = record
    return list(last.values())


def point_metrics(records: Sequence[RequestRecord], start: float, end: float,
                  chunks: ChunkSource | None = None) -> PointMetrics:
    """The point's metrics; the per-chunk ones read `chunks` (the point's requests file) at
    the records' rows, or the records' own chunks without it."""
    finals = final_attempts(records)
    ok = [r for r in finals if r.ok]
    failed = [r for r in records if not r.ok]
    duration = max(end - start, 1e-9)
    n_prompt = sum(prompt_tokens(r) for r in ok)
    n_output = sum(output_tokens(r) for r in ok)
    ok_chunks = select(ok, chunks, start)
    share = burst_share(ok_chunks)
    return PointMetrics(
        requests=len(finals),
        attempts=len(records),
        completed=len(ok),
        errors=len(finals) - len(ok),
        error_rate=(len(finals) - len(ok)) / len(finals) if finals else 0.0,
        failed_attempts=len(failed),
        errors_by_kind=dict(Counter(r.error_kind or "other" for r in finals if not r.ok)),
        retried_requests=len({r.index for r in records if r.attempt > 1}),
        retry_prompt_tokens=sum(r.input_tokens for r in failed),
        retry_output_tokens=sum(r.streamed_tokens for r in failed),
        duration_s=duration,
        prompt_tokens=n_prompt,
        output_tokens=n_output,
        request_throughput=len(ok) / duration,
        output_throughput=n_output / duration,
        total_token_throughput=(n_prompt + n_output) / duration,
        ttft_ms=distribution(ttft(r) for r in ok),
        tpot_ms=distribution(tpot(r) for r in ok),
        itl_ms=pooled_distribution(ok_chunks),
        itl_per_token_ms=pooled_distribution(ok_chunks, per_token=True),
        e2e_ms=distribution(e2e(r) for r in ok),
        ttft_from_intended_ms=distribution(ttft_from_intended(r) for r in ok),
        e2e_from_intended_ms=distribution(e2e_from_intended(r) for r in ok),
        dispatch_lag_ms=distribution(dispatch_lag(r) for r in records),
        output_length_mismatches=sum(output_tokens(r) != r.max_tokens for r in ok),
        input_length_mismatches=sum(prompt_tokens(r) != r.input_tokens for r in ok),
        burst_share=share,
        burst_delivery=share is not None and share >= BURST_SHARE_FLAG,
    )


def phase_metrics(records: Sequence[RequestRecord], windows: Sequence,
                  chunks: ChunkSource | None = None) -> dict[str, PointMetrics]:
    """Metrics of each phase of a profile: its requests over its own window (plus its drain)."""
    result = {}
    for window in windows:
        mine = [r for r in records if r.phase == window.name]
        end = max([window.end, *(r.done_time for r in mine)])
        result[window.name] = point_metrics(mine, window.start, end, chunks)
    return result
