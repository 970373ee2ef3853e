"""Fidelity: how far a variant's next-token distributions stray from the baseline's.

A pass (harness/run/fidelity_pass.py) gives, per prompt, the variant's own greedy continuation
and its top-k distributions at every position of the *baseline's* continuation (teacher
forcing, so positions after a divergence still compare the same contexts). This module
builds the fixed prompt set, scores a variant against the baseline and judges the score
against the config's limits. Definitions: docs/metrics.md, "Fidelity".
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.config.fidelity import FidelityConfig
from harness.contract.fidelity import FidelityRecord, FidelityScore

FLOOR = 1e-12  # the smallest probability a bucket is given (keeps the logarithms finite)

TokenLogprobs = dict[int, float]  # token id -> log-probability (the top k, maybe one more)


def prompt_set(fidelity: FidelityConfig, vocab: list[int], seed: int) -> list[list[int]]:
    """The fixed prompts: token ids drawn from `vocab` by a generator seeded with `seed`."""
    rng = np.random.default_rng([seed, 0xF1DE])
    ids = rng.choice(np.asarray(vocab), size=(fidelity.prompts, fidelity.prompt_tokens))
    return ids.tolist()


def prompts_sha(prompts: list[list[int]]) -> str:
    return hashlib.sha256(repr(prompts).encode()).hexdigest()[:16]


@dataclass
class Probe:
    """A variant's pass: per prompt its greedy tokens and the distributions at each position
    of the baseline's continuation."""

    tokens: list[list[int]]
    forced: list[list[TokenLogprobs]]

    def frame(self) -> pd.DataFrame:
        """One row per (prompt, position): what `<variant>.tokens.parquet` holds."""
        rows = []
        for p, (tokens, dists) in enumerate(zip(self.tokens, self.forced, strict=True)):
            for i, (token, dist) in enumerate(zip(tokens, dists, strict=True)):
                ranked = sorted(dist.items(), key=lambda item: -item[1])
                rows.append({"prompt": p, "position": i, "token": token,
                             "forced_ids": [t for t, _ in ranked],
                             "forced_logprobs": [lp for _, lp in ranked]})
        return pd.DataFrame(rows)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Probe:
        tokens: list[list[int]] = []
        forced: list[list[TokenLogprobs]] = []
        for _, group in frame.sort_values(["prompt", "position"]).groupby("prompt", sort=True):
            tokens.append([int(t) for t in group["token"]])
            forced.append([dict(zip(map(int, ids), map(float, lps), strict=True))
                           for ids, lps in zip(group["forced_ids"], group["forced_logprobs"],
                                               strict=True)])
        return cls(tokens, forced)


def token_kl(baseline: TokenLogprobs, variant: TokenLogprobs, k: int) -> float:
    """KL(baseline || variant) in nats over k+1 buckets: the baseline's top-k tokens and one
    bucket for the rest of the vocabulary. A baseline token missing from the variant's top-k
    gets the variant's k-th probability, the largest it can have. Identical inputs give 0."""
    top = sorted(baseline.items(), key=lambda item: -item[1])[:k]
    ranked = sorted(variant.values(), reverse=True)
    smallest = math.exp(ranked[min(k, len(ranked)) - 1]) if ranked else FLOOR
    p = [math.exp(lp) for _, lp in top]
    q = [math.exp(variant[t]) if t in variant else smallest for t, _ in top]
    p_rest, q_rest = 1.0 - sum(p), 1.0 - sum(q)
    kl = sum(pi * math.log(pi / max(qi, FLOOR)) for pi, qi in zip(p, q, strict=True) if pi > 0)
    if p_rest > FLOOR:
        kl += p_rest * math.log(p_rest / max(q_rest, FLOOR))
    return max(kl, 0.0)  # rounding can leave -1e-17 where the two are equal


def top1(dist: TokenLogprobs) -> int:
    return max(dist.items(), key=lambda item: item[1])[0]


def first_divergence(ours: list[int], theirs: list[int]) -> int | None:
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return i
    return None if len(ours) == len(theirs) else min(len(ours), len(theirs))


def score(baseline: Probe, variant: Probe, k: int) -> FidelityScore:
    """The variant against the baseline on the same prompts and positions."""
    kls, agree = [], []
    for base_dists, dists in zip(baseline.forced, variant.forced, strict=True):
        for base, ours in zip(base_dists, dists, strict=True):
            kls.append(token_kl(base, ours, k))
            agree.append(top1(base) == top1(ours))
    divergences = [first_divergence(ours, theirs)
                   for ours, theirs in zip(variant.tokens, baseline.tokens, strict=True)]
    diverged = [d for d in divergences if d is not None]
    values = np.asarray(kls)
    return FidelityScore(
        positions=len(kls), kl_mean=float(values.mean()),
        kl_p99=float(np.percentile(values, 99)), kl_max=float(values.max()),
        top1_agreement=float(np.mean(agree)), prompts=len(divergences),
        diverged_prompts=len(diverged), first_divergence_min=min(diverged, default=None),
        first_divergence_median=float(np.median(diverged)) if diverged else None)


def misses(record: FidelityRecord, fidelity: FidelityConfig | None) -> list[str]:
    """The limits a scored variant misses, one phrase each ('' when there is nothing to say)."""
    if fidelity is None or record.score is None:
        return []
    found, s = [], record.score
    if fidelity.max_kl is not None and s.kl_mean > fidelity.max_kl:
        found.append(f"mean KL {s.kl_mean:.3g} > max_kl {fidelity.max_kl:g}")
    if fidelity.min_top1 is not None and s.top1_agreement < fidelity.min_top1:
        found.append(f"top-1 agreement {s.top1_agreement:.1%} < min_top1 "
                     f"{fidelity.min_top1:.1%}")
    return found


def missed(record: FidelityRecord | None, fidelity: FidelityConfig | None) -> str | None:
    """The limits a variant misses in one phrase ('; '-joined), None when it misses none."""
    return "; ".join(misses(record, fidelity)) or None if record is not None else None
