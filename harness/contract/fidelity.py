"""The fidelity part of the results contract: one record per variant in
`<run>/fidelity/<variant>.json`, its token-level data beside it in `<variant>.tokens.parquet`
(harness/metrics/fidelity.py scores them, docs/metrics.md defines the figures)."""

from __future__ import annotations

from typing import Literal

from harness.contract.stored import SCHEMA_VERSION, Stored


class FidelityScore(Stored):
    """A variant against the baseline on the same prompts (harness/metrics/fidelity.py computes it;
    docs/metrics.md defines it)."""

    positions: int  # token positions scored: prompts x output tokens
    kl_mean: float  # nats per token, teacher-forced on the baseline's continuation
    kl_p99: float
    kl_max: float
    top1_agreement: float  # share of positions whose most likely token is the baseline's
    prompts: int
    diverged_prompts: int  # prompts whose own greedy continuation differs from the baseline's
    first_divergence_min: int | None  # 0-based position of the earliest divergence
    first_divergence_median: float | None  # over the diverged prompts


class FidelityRecord(Stored):
    """One variant's fidelity pass: the baseline's stored once, every other one scored."""

    schema_version: int = SCHEMA_VERSION
    run: str
    variant: str
    cell: str  # the server it was measured on (the variant's first cell)
    baseline: str
    status: Literal["baseline", "scored", "not measured"]
    reason: str | None = None  # why not measured
    prompts: int
    prompt_tokens: int
    output_tokens: int
    top_k: int
    prompts_sha: str  # the prompt token ids, hashed: scores compare only equal prompt sets
    teacher_forced: bool  # distributions read with prompt_logprobs on the baseline's tokens
    score: FidelityScore | None = None
    duration_s: float
    measured_at: str


def describe(record: FidelityRecord | None) -> str:
    """'KL 0.0012/0.01, top-1 98.4%' (mean/p99) / 'baseline' / 'not measured: why' / '-'."""
    if record is None:
        return "-"
    if record.status == "baseline":
        return "baseline"
    if record.score is None:
        return f"not measured: {record.reason}"
    s = record.score
    return f"KL {s.kl_mean:.2g}/{s.kl_p99:.2g}, top-1 {s.top1_agreement:.1%}"
