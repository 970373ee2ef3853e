"""The `tune:` section: which engine settings `harness tune` searches, for what, within what.

    tune:
      space:                              # engine option -> values to try
        max_num_seqs: [4, 8, 16]          # a list: these values (any option, any type)
        max_num_batched_tokens: {low: 256, high: 2048, log: true}   # an integer range
        gpu_memory_utilization: {low: 0.80, high: 0.95}             # a float range
      objective: cost                     # or capacity, or pareto
      trials: 12                          # the budget (and/or minutes)

`max_num_seqs` and `tensor_parallel_size` choose the cell as the matrix does; the matrix's
variants, when there are several, are one more categorical parameter (`variant`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from harness.config.base import Strict
from harness.config.engines import RESERVED_OPTIONS, OptionValue

VARIANT = "variant"  # the categorical parameter over the matrix's variants
CELL_PARAMETERS = ("max_num_seqs", "tensor_parallel_size")  # set the cell, not an option
# options that change the numbers the model computes (its weights, its KV cache), so a space
# over them needs the fidelity floor against a baseline
QUANTIZATION_OPTIONS = ("quantization", "kv_cache_dtype", "dtype", "model",
                        "calculate_kv_scales", "load_format")


class IntRange(Strict):
    low: int
    high: int
    step: PositiveInt = 1
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("a log-scale range takes no step")
        return self

    def grid(self) -> list[int]:
        if self.log:  # powers of two between the bounds, and the bounds
            values = {self.low, self.high}
            value = 1 << max(0, math.ceil(math.log2(self.low)))
            while value < self.high:
                values.add(value)
                value *= 2
            return sorted(v for v in values if self.low <= v <= self.high)
        return list(range(self.low, self.high + 1, self.step))


class FloatRange(Strict):
    low: float
    high: float
    step: PositiveFloat | None = None
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("a log-scale range takes no step")
        return self

    def grid(self) -> list[float] | None:
        if self.step is None:
            return None  # continuous: no grid
        count = int(math.floor((self.high - self.low) / self.step + 1e-9))
        return [round(self.low + k * self.step, 10) for k in range(count + 1)]


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"low {low:g} is above high {high:g}")
    if low == high:
        raise ValueError(f"low and high are both {low:g}: give a list of one value instead")
    if log and low <= 0:
        raise ValueError("a log-scale range needs low > 0")


Parameter = list[OptionValue] | IntRange | FloatRange


def _parameter(name: str, value: Any) -> Parameter:
    """A list of values, or a {low, high[, step][, log]} range (integer when both ends are)."""
    if isinstance(value, dict):
        bounds = (value.get("low"), value.get("high"), value.get("step"))
        whole = all(isinstance(b, int) and not isinstance(b, bool) for b in bounds
                    if b is not None)
        return (IntRange if whole else FloatRange).model_validate(value)
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{name}: an empty list of values")
        if len({repr(v) for v in value}) != len(value):
            raise ValueError(f"{name}: a value is listed twice")
        return value
    raise ValueError(f"{name}: give a list of values or a range {{low: .., high: ..}}, "
                     f"not {value!r}")


class TuneConfig(Strict):
    space: dict[str, Any] = Field(
        default_factory=dict, description="engine option -> a list of values or a "
        "{low, high, step, log} range; also max_num_seqs, tensor_parallel_size, variant")
    objective: Literal["cost", "capacity", "pareto"] = Field(
        "cost", description="cost: the lowest $/Mtok at the SLO (capacity per dollar-hour); "
        "capacity: the highest sustained capacity; pareto: output tok/s per GPU against "
        "tok/s per user")
    sampler: Literal["tpe", "random", "grid"] = Field(
        "tpe", description="Optuna's sampler: tpe, or random and grid for reference")
    trials: PositiveInt | None = Field(
        None, description="the budget in trials (server launches at most); default 20 "
        "unless `minutes` is set")
    minutes: PositiveFloat | None = Field(
        None, description="the budget in minutes: no trial starts after it")
    prune_below: float = Field(
        0.8, gt=0, le=1, description="a trial first probes this share of the best capacity "
        "found so far, and stops there if it misses (and once it cannot beat the best)")
    max_gpu_memory_gib: PositiveFloat | None = Field(
        None, description="a trial whose GPUs' peak memory exceeds this is infeasible")
    seed: int | None = Field(None, description="the sampler's seed; default: the config's seed")

    @field_validator("trials", "minutes", mode="before")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, bool) and \
                isinstance(value, int | float) and value <= 0:
            raise ValueError(f"a budget of {value} runs nothing: give at least 1")
        return value

    @field_validator("space")
    @classmethod
    def _space(cls, value: dict[str, Any]) -> dict[str, Parameter]:
        space = {}
        for key, values in value.items():
            name = str(key).replace("-", "_")
            if name in RESERVED_OPTIONS and name not in CELL_PARAMETERS:
                raise ValueError(f"space.{key}: set by the harness; it cannot be tuned")
            space[name] = _parameter(f"space.{key}", values)
        return space

    @property
    def budget_trials(self) -> int | None:
        """The trial budget: as set; 20 when neither trials nor minutes are set."""
        if self.trials is None and self.minutes is None:
            return 20
        return self.trials

    def quantization_parameters(self) -> list[str]:
        return [name for name in self.space if name in QUANTIZATION_OPTIONS]


def tuned_parameters(tune: TuneConfig, matrix: Any) -> list[str]:
    """The parameters `harness tune` searches: the space's, plus the matrix's axes that list
    several values (the variants, batch sizes, parallel sizes) the space leaves out."""
    names = list(tune.space)
    axes = {VARIANT: list(matrix.variants), "max_num_seqs": matrix.max_num_seqs or [],
            "tensor_parallel_size": matrix.tensor_parallel_size}
    return names + [name for name, values in axes.items()
                    if len(values) > 1 and name not in names]


def tuned_quantization(tune: TuneConfig, matrix: Any) -> str | None:
    """The tuned parameter that changes quantization, if any (a space option, or the variants
    when they differ in one)."""
    names = tuned_parameters(tune, matrix)
    for name in names:
        if name in QUANTIZATION_OPTIONS:
            return name
    if VARIANT in names:
        variants = tune.space.get(VARIANT, list(matrix.variants))
        for option in QUANTIZATION_OPTIONS:
            if len({repr(matrix.variants[v].get(option)) for v in variants}) > 1:
                return f"variant ({option})"
    return None


def tune_problem(tune: TuneConfig, matrix: Any, engine: Any, fidelity: Any,
                 searches: bool) -> str | None:
    """What keeps this `tune` section from running with the rest of the config, in one line
    (None: nothing). `searches`: the config has an SLO and the capacity search on."""
    if not engine.local or not engine.variants:
        return (f"tune: the {engine.kind} engine is not launched with options by the harness; "
                "there is nothing to tune")
    if not searches:
        return ("tune: trials are compared by their capacity at the SLO: set `slo` (and leave "
                "the capacity search on)")
    if getattr(matrix, "workloads", None):
        return ("tune: trials are measured at the run's one workload; remove matrix.workloads "
                "(tune one config per workload)")
    chosen = tune.space.get(VARIANT)
    if chosen is not None:
        if not isinstance(chosen, list):
            return "tune.space.variant: give a list of the matrix's variants"
        unknown = [v for v in chosen if v not in matrix.variants]
        if unknown:
            return (f"tune.space.variant: {unknown[0]!r} is not a variant; the variants are "
                    f"{', '.join(matrix.variants)}")
    if not tuned_parameters(tune, matrix):
        return ("tune.space: empty: name at least one engine option with the values to try "
                "(or give the matrix several values)")
    changes = tuned_quantization(tune, matrix)
    if changes and fidelity is None:
        return (f"tune.space: {changes} changes the model's numbers (its quantization); add a "
                "`fidelity` section with the baseline and its floor (max_kl / min_top1) so "
                "trials are held to it")
    return None
