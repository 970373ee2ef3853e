"""The service-level objective: one model for the experiment config (`slo:`) and the cost
profile (`slo:`), judged by one evaluator (harness/metrics/slo.py).

A limit is `<metric>_<stat>_ms` (metric ttft, tpot, itl or e2e; stat mean, p50, p90, p95 or
p99), e.g. `ttft_p95_ms: 500`, or `max_error_rate` (default 0: a point with any failed request
misses the SLO). Limits are written flat, as in YAML: `{ttft_p95_ms: 500, tpot_p99_ms: 50}`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_serializer, model_validator

from harness.config.base import Strict

METRICS = ("ttft", "tpot", "itl", "e2e")
STATS = ("mean", "p50", "p90", "p95", "p99")
LIMIT_KEY = re.compile(r"(ttft|tpot|itl|e2e)_(mean|p50|p90|p95|p99)_ms")


@dataclass(frozen=True)
class Limit:
    """One latency limit: `metric`'s `stat` must not exceed `ms`."""

    metric: str
    stat: str
    ms: float

    @property
    def key(self) -> str:
        return f"{self.metric}_{self.stat}_ms"


class Slo(Strict):
    latency_ms: dict[str, float] = Field(
        default_factory=dict, description="<metric>_<stat>_ms -> limit in milliseconds")
    max_error_rate: float = Field(0.0, description="share of requests that may fail")

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, value: Any) -> Any:
        """`{ttft_p95_ms: 500, max_error_rate: 0.01}`, as written in YAML and stored."""
        if not isinstance(value, dict):
            return value
        latency = {}
        for key, limit in value.items():
            if key == "max_error_rate":
                continue
            if not LIMIT_KEY.fullmatch(str(key)):
                raise ValueError(f"unknown SLO {key!r}: use <ttft|tpot|itl|e2e>_<mean|p50|p90|"
                                 "p95|p99>_ms or max_error_rate")
            latency[key] = limit
        flat = {"latency_ms": latency}
        if "max_error_rate" in value:
            flat["max_error_rate"] = value["max_error_rate"]
        return flat

    @model_validator(mode="after")
    def _ranges(self) -> Slo:
        for key, limit in self.latency_ms.items():
            if not math.isfinite(limit) or limit <= 0:
                raise ValueError(f"{key} must be positive")
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError("max_error_rate must be between 0 and 1")
        return self

    @model_serializer
    def _serialize(self) -> dict[str, float]:
        return self.flat()

    def limits(self) -> list[Limit]:
        """The latency limits, in the order written."""
        found = []
        for key, ms in self.latency_ms.items():
            metric, stat = LIMIT_KEY.fullmatch(key).groups()
            found.append(Limit(metric, stat, ms))
        return found

    def flat(self) -> dict[str, float]:
        """The limits as written: {ttft_p95_ms: 500, ..., max_error_rate: 0.0}."""
        return {**self.latency_ms, "max_error_rate": self.max_error_rate}

    def describe(self) -> str:
        parts = [f"{limit.key} <= {limit.ms:g}" for limit in self.limits()]
        parts.append(f"error rate <= {self.max_error_rate:g}")
        return ", ".join(parts)

    def at_least_as_strict_as(self, other: Slo) -> bool:
        """True when every limit of `other` is here, no looser: a point that meets this SLO
        meets `other` too."""
        mine = self.latency_ms
        return (self.max_error_rate <= other.max_error_rate and
                all(key in mine and mine[key] <= ms for key, ms in other.latency_ms.items()))
