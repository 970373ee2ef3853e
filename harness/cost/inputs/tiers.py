"""The profile's tiers and what-ifs: each kind of request (its share of the traffic or its own
volume, its lengths, its SLO, what may serve it) and the changes to price against the same
measurements (docs/tiers.md)."""

from __future__ import annotations

import math

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from harness.config.base import Strict
from harness.config.slo import Slo

SHARE_SLACK = 1e-6


class FidelityFloor(Strict):
    """The least fidelity (against the run's baseline) a variant needs to serve the tier."""
    max_kl: NonNegativeFloat | None = Field(None, description="mean KL divergence, nats/token")
    min_top1: float | None = Field(None, ge=0, le=1, description="top-1 agreement, 0-1")


class TierSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    share: float | None = Field(None, gt=0, le=1, description="share of the profile's requests")
    requests_per_s: PositiveFloat | None = Field(None, description="the tier's own volume")
    tokens_per_day: PositiveFloat | None = Field(None, description="the tier's own volume")
    workload: str | None = Field(None, description="a named workload of the runs: its lengths "
                                 "and its measurements")
    input_tokens: PositiveInt | None = Field(None, description="input tokens of a request")
    output_tokens: PositiveInt | None = Field(None, description="output tokens of a request")
    slo: Slo | None = Field(None, description="default: the profile's `slo`")
    served_by: list[str] = Field(min_length=1, description="variants, models, API tiers or "
                                 "provider:model names good enough for these requests")
    fidelity: FidelityFloor | None = None
    peak_to_average: float | None = Field(None, ge=1, le=1000)
    cached_input_share: float | None = Field(None, ge=0, le=1)
    retry_rate: float | None = Field(None, ge=0, le=1)
    batch_share: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_volume(self) -> TierSpec:
        given = [key for key in ("share", "requests_per_s", "tokens_per_day")
                 if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"tier {self.name}: set exactly one of share, requests_per_s and "
                             "tokens_per_day")
        if (self.input_tokens is None) != (self.output_tokens is None) and self.workload is None:
            raise ValueError(f"tier {self.name}: give both input_tokens and output_tokens (or "
                             "a workload)")
        return self


class WhatIf(Strict):
    """One change to the traffic, priced on the same measurements."""
    name: str
    tier: str | None = Field(None, description="the tier it changes; default: every tier")
    input_scale: PositiveFloat | None = Field(
        None, le=10, description="input tokens of a request times this (0.7: prompts 30% shorter)")
    cached_input_share: float | None = Field(None, ge=0, le=1)
    retry_rate: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _changes_something(self) -> WhatIf:
        if self.input_scale is None and self.cached_input_share is None \
                and self.retry_rate is None:
            raise ValueError(f"what_if {self.name}: set input_scale, cached_input_share or "
                             "retry_rate")
        return self


def check_tiers(tiers: list[TierSpec], has_volume: bool) -> None:
    """Tier names once each; shares for every tier or for none; shares that sum to 1 and a
    `traffic` volume for them to share."""
    names = [t.name for t in tiers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"tiers: {', '.join(twice)} named twice")
    shares = [t.share for t in tiers if t.share is not None]
    if shares and len(shares) != len(tiers):
        raise ValueError("tiers: give every tier a share, or every tier its own volume "
                         "(requests_per_s or tokens_per_day)")
    if shares and not math.isclose(sum(shares), 1.0, abs_tol=SHARE_SLACK):
        raise ValueError(f"tiers: the shares sum to {sum(shares):g}, not 1")
    if shares and not has_volume:
        raise ValueError("tiers: shares need the total volume in `traffic` (tokens_per_day or "
                         "requests_per_s)")


def check_what_ifs(what_ifs: list[WhatIf], tiers: list[TierSpec] | None) -> None:
    if what_ifs and not tiers:
        raise ValueError("what_if: needs `tiers` (a what-if changes a tier's traffic)")
    names = {t.name for t in tiers or []}
    for what_if in what_ifs:
        if what_if.tier is not None and what_if.tier not in names:
            raise ValueError(f"what_if {what_if.name}: no tier {what_if.tier!r}; the tiers are "
                             f"{', '.join(sorted(names))}")
