"""What is sent and how: the workload (lengths, shared prefixes, conversations), the load points
(closed loop, open loop, scenarios of phases run back to back), retries and the capacity
search. (`load.scenarios` was called `load.profiles`; that key still reads, with a warning:
"profile" is the cost side's traffic profile.)"""

from __future__ import annotations

import re
import warnings
from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from harness.config.base import ConfigDeprecation, Strict, as_list, is_stored
from harness.config.lengths import LengthDist, fixed_if_number
from harness.config.prompt_file import PromptFileConfig
from harness.config.trace import TraceConfig

Arrival = Literal["constant", "poisson", "gamma"]


class SharedPrefix(Strict):
    share: float = Field(gt=0, lt=1, description="share of every prompt that is a common prefix")
    prefixes: PositiveInt = Field(1, description="how many distinct prefixes requests share")


class Conversation(Strict):
    turns: int = Field(ge=2, description="requests per conversation; each adds to the context")
    think_time_s: NonNegativeFloat = 0.0


class WorkloadConfig(Strict):
    input_tokens: LengthDist | None = Field(
        None, description="new prompt tokens per request, exact (unless `prompts` is set)")
    output_tokens: LengthDist = Field(description="output tokens per request, exact")
    prompt: Literal["text", "token_ids"] = Field(
        "text", description="send prompts as text (the server tokenizes them, as real clients "
                            "make it) or as token-id lists (skips the server's tokenizer)")
    prompts: PromptFileConfig | None = Field(
        None, description="real prompts from a file (ShareGPT JSON or JSONL) instead of "
                          "generated ones")
    shared_prefix: SharedPrefix | None = None
    conversation: Conversation | None = None
    prefix_cache: Literal["reset", "keep"] | None = Field(
        None, description="reset the server's prefix cache before each point; default: reset "
                          "unless the workload studies caching (shared prefixes, conversations)")

    _lengths = field_validator("input_tokens", "output_tokens", mode="before")(
        classmethod(lambda cls, v: fixed_if_number(v)))

    @model_validator(mode="after")
    def _prompt_source(self) -> WorkloadConfig:
        if (self.input_tokens is None) == (self.prompts is None):
            raise ValueError("set exactly one of `input_tokens` and `prompts`")
        if self.prompts is not None and (self.shared_prefix or self.conversation):
            raise ValueError("`prompts` from a file take no shared_prefix or conversation")
        return self

    @property
    def studies_caching(self) -> bool:
        if self.prefix_cache is not None:
            return self.prefix_cache == "keep"
        return self.shared_prefix is not None or self.conversation is not None

    def longest_request(self) -> int | None:
        """Most tokens one request can hold (prompt + output), None if unbounded."""
        if self.input_tokens is None:
            return None
        prompt, output = self.input_tokens.bound(), self.output_tokens.bound()
        if prompt is None or output is None:
            return None
        turns = self.conversation.turns if self.conversation else 1
        return turns * (prompt + output)


class Phase(Strict):
    """A stretch of one scenario: a rate (or a ramp between two), a concurrency, or
    the replay of `load.trace`."""

    name: str | None = None
    duration_s: PositiveFloat | None = None
    rate: PositiveFloat | list[PositiveFloat] | None = Field(
        None, description="requests/s, or [from, to] for a linear ramp")
    concurrency: PositiveInt | None = None
    arrival: Arrival | None = None
    burstiness: PositiveFloat | None = None
    trace: bool = Field(
        False, description="replay load.trace in this phase: its arrival times and lengths "
                           "(the phase lasts the trace's span; no duration_s, rate or "
                           "concurrency)")

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> dict:
        """Without `trace` unless set: a scenario written before trace phases existed keeps
        its config hash (and so its results directory)."""
        found = handler(self)
        if not self.trace:
            found.pop("trace", None)
        return found

    @model_validator(mode="after")
    def _one_load(self) -> Phase:
        if self.trace:
            given = [key for key in ("duration_s", "rate", "concurrency", "arrival",
                                     "burstiness") if getattr(self, key) is not None]
            if given:
                raise ValueError(f"a trace phase takes its times from load.trace: drop "
                                 f"{', '.join(given)}")
            return self
        if self.duration_s is None:
            raise ValueError("a phase needs `duration_s` (or `trace: true`)")
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("a phase needs exactly one of `rate` and `concurrency`")
        if isinstance(self.rate, list) and len(self.rate) != 2:
            raise ValueError("a ramp is `rate: [from, to]`")
        return self


SCENARIOS_RENAMED = ("load.profiles is now load.scenarios (same meaning, same config hash): "
                     "rename the key; `profile` is the traffic profile of `harness cost`")


class RetryConfig(Strict):
    max_tries: PositiveInt = Field(1, description="1 = no retries")
    backoff_s: NonNegativeFloat = Field(0.5, description="wait before retry k: backoff_s * 2^(k-1)")
    on_error: bool = True
    on_timeout: bool = True


class LoadConfig(Strict):
    concurrency: list[PositiveInt] | None = Field(None, min_length=1)
    rates: list[PositiveFloat] | None = Field(None, min_length=1)
    scenarios: dict[str, list[Phase]] | None = Field(
        None, description="points made of phases run back to back, e.g. an average then a "
                          "peak (formerly `profiles`)")
    requests: PositiveInt | None = None
    duration_s: PositiveFloat | None = None
    arrival: Arrival = "poisson"
    burstiness: PositiveFloat = Field(1.0, description="gamma shape: 1 = Poisson, < 1 burstier")
    warmup_requests: NonNegativeInt = 4
    request_timeout_s: PositiveFloat = 600.0
    retry: RetryConfig = Field(default_factory=RetryConfig)
    trace: TraceConfig | None = Field(
        None, description="one more open-loop point, `trace`, that replays a production "
                          "trace; scenario phases with `trace: true` replay it too")

    _as_lists = field_validator("concurrency", "rates", mode="before")(
        classmethod(lambda cls, v: as_list(v)))

    @model_validator(mode="before")
    @classmethod
    def _old_name(cls, data: Any, info: ValidationInfo) -> Any:
        """`profiles`, the old name of `scenarios`, still reads: a config written with it
        means the same and hashes the same (one warning line; never for a stored config)."""
        if not isinstance(data, dict) or "profiles" not in data:
            return data
        if "scenarios" in data:
            raise ValueError("set `scenarios` only (`profiles` is its old name)")
        if not is_stored(info):
            warnings.warn(SCENARIOS_RENAMED, ConfigDeprecation, stacklevel=2)
        renamed = {key: value for key, value in data.items() if key != "profiles"}
        renamed["scenarios"] = data["profiles"]
        return renamed

    @field_validator("scenarios")
    @classmethod
    def _scenarios(cls, value: dict[str, list[Phase]] | None) -> dict[str, list[Phase]] | None:
        for name, phases in (value or {}).items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", name) or re.fullmatch(
                    r"(c|r|search-r)[0-9.]+", name):
                raise ValueError(f"scenario name {name!r} must start with a letter, be letters, "
                                 "digits, '-', '_' or '.', and not look like c4 or r2.5")
            if not phases:
                raise ValueError(f"scenario {name!r} has no phases")
            names = [phase.name for phase in phases if phase.name]
            if len(names) != len(set(names)):
                raise ValueError(f"scenario {name!r}: phase names must differ")
        return value

    @model_validator(mode="after")
    def _points(self) -> LoadConfig:
        if not (self.concurrency or self.rates or self.scenarios or self.trace):
            raise ValueError("give load points: `concurrency`, `rates` or `scenarios` "
                             "(or a `trace`)")
        if (self.concurrency or self.rates) and (self.requests is None) == (
                self.duration_s is None):
            raise ValueError("set exactly one of `requests` and `duration_s` per load point")
        for name, phases in (self.scenarios or {}).items():
            if self.trace is None and any(phase.trace for phase in phases):
                raise ValueError(f"scenario {name!r}: a phase with `trace: true` replays "
                                 "load.trace: set `load.trace`")
        return self


DERIVED_HEADROOM = 1.25   # a derived search tops out 25% above the best rate measured
DERIVED_SPAN = 8.0        # ... and starts 8x below its top
DEFAULT_GROW_TO = 8.0     # a range whose top meets grows by doubling, up to 8x that top


class CapacityConfig(Strict):
    """Search per server cell for the highest open-loop rate that meets every SLO.

    Without `min_rate`/`max_rate`, the range is derived per cell from the highest request rate
    its own points measured: max_rate = 1.25 x that, min_rate = max_rate / 8.
    """

    min_rate: PositiveFloat | None = Field(None, description="req/s; default: max_rate / 8")
    max_rate: PositiveFloat | None = Field(
        None, description="req/s; default: 1.25 x the highest rate the cell's points measured")
    steps: int = Field(5, ge=2, le=20, description="measurements in the search, at most")
    grow_to: float = Field(
        DEFAULT_GROW_TO, ge=1, le=64,
        description="when max_rate meets the SLO and is sustained, the search doubles the rate "
                    "until one misses, up to this many times max_rate (then: 'at least')")
    duration_s: PositiveFloat = Field(10.0, description="seconds of arrivals per step")
    repeats: int = Field(
        1, ge=1, le=10,
        description="measurements of the capacity found and of the rate above it (the first "
                    "included): their spread is the run-to-run noise the answer shows")
    arrival: Arrival = "poisson"

    @model_validator(mode="after")
    def _range(self) -> CapacityConfig:
        if self.min_rate is not None and self.max_rate is not None and \
                self.min_rate >= self.max_rate:
            raise ValueError("min_rate must be below max_rate")
        return self

    def rates(self, measured_rps: float | None) -> tuple[float, float] | None:
        """(min, max) req/s for a cell whose points reached `measured_rps` at best (None: no
        range can be derived: the cell measured nothing)."""
        high = self.max_rate
        if high is None:
            if not measured_rps:
                return None
            high = DERIVED_HEADROOM * measured_rps
            if self.min_rate is not None:
                high = max(high, 2 * self.min_rate)
        low = self.min_rate if self.min_rate is not None else high / DERIVED_SPAN
        return low, high
