"""Every metric of a load point, defined once. Names and formulas follow `vllm bench serve`.

Per request (seconds; docs/metrics.md has the same definitions):
    TTFT = first token-bearing chunk - send
    E2E  = last token-bearing chunk - send
    TPOT = (E2E - TTFT) / (output_tokens - 1)      only when output_tokens > 1
    ITL  = gaps between consecutive token-bearing chunks (per chunk, pooled over requests)
Per point, over the window from just before the first send to the last reply:
    request throughput = completed / window, output throughput = sum(output) / window,
    total token throughput = (sum(prompt) + sum(output)) / window
Only successful requests enter latencies and token sums; failed ones are counted as errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel

from harness.load.client import RequestRecord

PERCENTILES = (50, 90, 95, 99)


class Distribution(BaseModel):
    """Summary of a latency sample in milliseconds, always with its sample count."""

    n: int
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None


class PointMetrics(BaseModel):
    requests: int
    completed: int
    errors: int
    error_rate: float
    duration_s: float
    prompt_tokens: int
    output_tokens: int
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    ttft_ms: Distribution
    tpot_ms: Distribution
    itl_ms: Distribution
    e2e_ms: Distribution
    output_length_mismatches: int  # successful requests whose output != max_tokens
    input_length_mismatches: int  # successful requests whose server-counted prompt != intended


def ttft(record: RequestRecord) -> float:
    return record.first_token_time - record.send_time


def e2e(record: RequestRecord) -> float:
    return record.last_token_time - record.send_time


def output_tokens(record: RequestRecord) -> int:
    """Server usage when reported, else the streamed token count."""
    if record.completion_tokens is not None:
        return record.completion_tokens
    return sum(record.chunk_tokens)


def prompt_tokens(record: RequestRecord) -> int:
    return record.prompt_tokens if record.prompt_tokens is not None else record.input_tokens


def tpot(record: RequestRecord) -> float | None:
    n = output_tokens(record)
    return (e2e(record) - ttft(record)) / (n - 1) if n > 1 else None


def itls(record: RequestRecord) -> list[float]:
    return np.diff(record.chunk_times).tolist()


def distribution(values_s: Iterable[float]) -> Distribution:
    values = np.asarray([v for v in values_s if v is not None], dtype=float) * 1000.0
    if values.size == 0:
        return Distribution(n=0)
    pcts = np.percentile(values, PERCENTILES)  # linear interpolation, as vllm bench serve
    return Distribution(n=int(values.size), mean=float(values.mean()),
                        **{f"p{p}": float(v) for p, v in zip(PERCENTILES, pcts, strict=True)})


def point_metrics(records: Sequence[RequestRecord], start: float, end: float) -> PointMetrics:
    ok = [r for r in records if r.ok]
    duration = max(end - start, 1e-9)
    n_prompt = sum(prompt_tokens(r) for r in ok)
    n_output = sum(output_tokens(r) for r in ok)
    return PointMetrics(
        requests=len(records),
        completed=len(ok),
        errors=len(records) - len(ok),
        error_rate=(len(records) - len(ok)) / len(records) if records else 0.0,
        duration_s=duration,
        prompt_tokens=n_prompt,
        output_tokens=n_output,
        request_throughput=len(ok) / duration,
        output_throughput=n_output / duration,
        total_token_throughput=(n_prompt + n_output) / duration,
        ttft_ms=distribution(ttft(r) for r in ok),
        tpot_ms=distribution(tpot(r) for r in ok),
        itl_ms=distribution(gap for r in ok for gap in itls(r)),
        e2e_ms=distribution(e2e(r) for r in ok),
        output_length_mismatches=sum(output_tokens(r) != r.max_tokens for r in ok),
        input_length_mismatches=sum(prompt_tokens(r) != r.input_tokens for r in ok),
    )
