"""The traffic to serve: a profile's volume, mix and peak as tokens per second (retries
included), or the run's own mix where the profile gives no traffic."""

from __future__ import annotations

from dataclasses import dataclass

from harness.cost import formulas
from harness.cost.inputs.profile import Profile
from harness.cost.measured import MeasuredRun


@dataclass(frozen=True)
class Demand:
    input_per_output: float
    input_tokens: int                  # one request
    output_tokens: int
    average_tps: float | None          # served (retries included), input + output
    peak_tps: float | None
    retry_rate: float = 0.0
    cached_input_share: float = 0.0
    batch_share: float = 0.0
    peak_to_average: float | None = None

    @property
    def served_mtok_month(self) -> float | None:
        return None if self.average_tps is None else formulas.mtok_per_month(self.average_tps)

    @property
    def traffic_mtok_month(self) -> float | None:
        served = self.served_mtok_month
        return None if served is None else served / (1 + self.retry_rate)

    @property
    def traffic_tokens_per_day(self) -> float | None:
        """The traffic asked for (input + output tokens a day), retries not included."""
        if self.average_tps is None:
            return None
        return self.average_tps / (1 + self.retry_rate) * formulas.SECONDS_PER_DAY


def demand_of(profile: Profile, run: MeasuredRun) -> Demand:
    run_in, run_out = run.workload
    traffic = profile.traffic
    if traffic is None:
        return Demand(run_in / run_out, run_in, run_out, None, None)
    ratio = traffic.input_output_ratio or run_in / run_out
    output_tokens = traffic.output_tokens_per_request or run_out
    input_tokens = max(1, round(ratio * output_tokens))
    if traffic.tokens_per_day is not None:
        average = traffic.tokens_per_day / formulas.SECONDS_PER_DAY
    else:
        average = traffic.requests_per_s * (input_tokens + output_tokens)
    served = average * (1 + traffic.retry_rate)
    return Demand(ratio, input_tokens, output_tokens, served, served * traffic.peak_to_average,
                  traffic.retry_rate, traffic.cached_input_share, traffic.batch_share,
                  traffic.peak_to_average)
