"""The traffic profile: how much traffic, its shape, the latency SLO and the hardware prices.

A profile is one YAML file (example: configs/profile-example.yaml); docs/cost-model.md says how
each key enters the formulas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from harness.config.base import Strict
from harness.config.slo import Slo
from harness.cost.inputs.files import load_model
from harness.cost.inputs.tiers import TierSpec, WhatIf, check_tiers, check_what_ifs


class Traffic(Strict):
    tokens_per_day: PositiveFloat | None = Field(
        None, description="average input + output tokens a day (or give requests_per_s)")
    requests_per_s: PositiveFloat | None = Field(None, description="average requests a second")
    input_output_ratio: PositiveFloat | None = Field(
        None, description="input tokens per output token (3 means 3:1); default: the run's")
    output_tokens_per_request: PositiveInt | None = Field(
        None, description="output tokens of one request; default: the run's workload")
    peak_to_average: float = Field(1.0, ge=1, le=1000)
    cached_input_share: float = Field(0.0, ge=0, le=1,
                                      description="share of input tokens an API bills as cached")
    retry_rate: float = Field(0.0, ge=0, le=1,
                              description="extra requests sent again, as a share of requests")
    batch_share: float = Field(0.0, ge=0, le=1,
                               description="share of requests that may go to a batch API")

    @model_validator(mode="after")
    def _one_volume(self) -> Traffic:
        if (self.tokens_per_day is None) == (self.requests_per_s is None):
            raise ValueError("set exactly one of `tokens_per_day` and `requests_per_s`")
        return self


class Rent(Strict):
    provider: str | None = Field(None, description="a provider from `harness prices`; "
                                 "default: the cheapest listed")
    tier: str = Field("on-demand", description="on-demand, spot, 3-yr contract, ...")


class Own(Strict):
    per: Literal["gpu", "machine"] = Field(
        "gpu", description="what the inputs below are per: a GPU, or a whole serving machine "
        "(needed to price owned hardware for results measured without a GPU)")
    capex_per_gpu_usd: PositiveFloat
    server_share_per_gpu_usd: NonNegativeFloat = Field(
        0.0, description="the GPU's share of server, network and installation")
    years: float = Field(gt=0, le=30, description="amortization (economic life)")
    cost_of_capital: float = Field(0.0, ge=0, lt=1, description="yearly rate; 0 = straight line")
    availability: float = Field(1.0, gt=0, le=1, description="share of hours a GPU can serve")
    power_w_per_gpu: float = Field(gt=0, le=5000, description="used when the results have no "
                                   "measured power; marked assumed")
    pue: float = Field(ge=1, le=3)
    usd_per_kwh: PositiveFloat
    overhead_share: float = Field(0.0, ge=0, le=10,
                                  description="staff, space, support, as a share of the rest")


class Profile(Strict):
    traffic: Traffic | None = None
    slo: Slo = Field(default_factory=Slo, description="the same limits as a config's `slo`")
    gpu: str | None = Field(None, description="price the hardware as this GPU (see `harness "
                            "prices`); default: the run's cost.usd_per_hour per machine")
    rent: Rent = Field(default_factory=Rent)
    own: Own | None = None
    apis: list[str] | None = Field(None, min_length=1, description="API tiers or provider:model "
                                   "names to compare with; default: the tier of the run's model")
    input_output_cost_ratio: PositiveFloat = Field(
        4.0, description="R: an output token costs R input tokens of GPU time (GKE default 4)")
    max_price_age_days: PositiveInt = Field(
        90, description="a price whose data is older than this on its price date is flagged")
    tiers: list[TierSpec] | None = Field(
        None, min_length=1, description="kinds of request, each on the cheapest option good "
        "enough for it (docs/tiers.md)")
    what_if: list[WhatIf] | None = Field(
        None, min_length=1, description="changes to the tiers' traffic to price (docs/tiers.md)")

    @model_validator(mode="after")
    def _tiers(self) -> Profile:
        if self.tiers:
            check_tiers(self.tiers, self.traffic is not None)
        check_what_ifs(self.what_if or [], self.tiers)
        return self


def load_profile(path: Path) -> Profile:
    """Read and validate a profile; every problem is a CostInputError naming file and field."""
    return load_model(path, Profile, "profile")
