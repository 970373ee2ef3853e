"""The experiment: model, engine, matrix, telemetry and cost, and loading a config file."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.config.base import (
    ConfigError,
    Strict,
    as_list,
    first_error,
    is_stored,
    read_yaml_mapping,
)
from harness.config.engines import EngineConfig, OptionValue, VllmConfig, normalise_options
from harness.config.executor import ExecutorConfig, LocalExecutor
from harness.config.fidelity import FidelityConfig
from harness.config.lengths import LengthsFileError
from harness.config.load import DEFAULT_GROW_TO, CapacityConfig, LoadConfig, WorkloadConfig
from harness.config.prompt_file import PromptFileError, read_prompts
from harness.config.shapes import SHAPES
from harness.config.slo import Slo
from harness.config.sustain import SustainConfig
from harness.config.trace import Trace, TraceError, read_trace
from harness.config.tune import TuneConfig, tune_problem, tuned_parameters
from harness.config.workloads import check_names, merged

DUMMY_PREFIX = "dummy:"

class MatrixConfig(Strict):
    max_num_seqs: list[PositiveInt] | None = Field(None, min_length=1)
    variants: dict[str, dict[str, OptionValue]] = Field(
        default_factory=lambda: {"default": {}}, min_length=1)
    tensor_parallel_size: list[PositiveInt] = Field(default_factory=lambda: [1], min_length=1)
    workloads: dict[str, dict[str, Any] | None] | None = Field(
        None, min_length=1, description="named workloads, each the `workload` keys it changes; "
        "every cell is measured at each (docs/tiers.md)")

    _as_lists = field_validator("max_num_seqs", "tensor_parallel_size", mode="before")(
        classmethod(lambda cls, v: as_list(v)))

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        checked = {}
        for name, options in value.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise ValueError(f"variant name {name!r} must be letters, digits, '-', '_' or '.'")
            checked[name] = normalise_options(options or {}, "variant")
        return checked

    _workload_names = field_validator("workloads")(
        classmethod(lambda cls, v: None if v is None else check_names(v)))


class TelemetryConfig(Strict):
    sample_hz: float = Field(10.0, gt=0, le=100, description="NVML power/utilization samples/s")
    idle_baseline_s: float = Field(5.0, ge=5.0, description="idle energy window per server")
    engine_metrics_interval_s: float = Field(
        0.25, gt=0, description="how often /metrics is read during a load point")


class CostConfig(Strict):
    usd_per_hour: PositiveFloat | None = Field(
        None, description="what the whole serving machine costs per hour, for the $/Mtok column")
    profile: str | None = Field(
        None, description="traffic profile (YAML): `harness run` ends with `harness cost`'s answer")


class ExperimentConfig(Strict):
    name: str | None = None
    model: str
    tokenizer: str | None = Field(
        None, description="HF id or path of the tokenizer prompts are built with; default: model")
    served_model_name: str | None = None
    seed: int = 0
    engine: EngineConfig = Field(default_factory=VllmConfig)
    matrix: MatrixConfig = Field(default_factory=MatrixConfig)
    workload: WorkloadConfig
    load: LoadConfig
    slo: Slo | None = Field(
        None, description="limits a point must meet, e.g. ttft_p95_ms: 500, max_error_rate: 0.01")
    sustain: SustainConfig = Field(
        default_factory=SustainConfig,
        description="when an open-loop rate counts as sustained (else its point misses)")
    capacity: CapacityConfig | Literal[False] | None = Field(
        None, description="the capacity search; default: on (derived range, 5 steps x 10 s) "
        "when the config has `slo` and cost.profile; false: off")
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    fidelity: FidelityConfig | None = Field(
        None, description="score each variant's token distributions against the baseline's")
    executor: ExecutorConfig = Field(
        default_factory=LocalExecutor,
        description="where the cells run: here (local) or on a Ray cluster (ray)")
    tune: TuneConfig | None = Field(
        None, description="what `harness tune` searches (docs/tuning.md)")
    _trace: Trace | None = PrivateAttr(None)  # load.trace's replayed window, once read

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("must be letters, digits, '-', '_' or '.' "
                             "(it names the results folder)")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value.startswith(DUMMY_PREFIX) and value[len(DUMMY_PREFIX):] not in SHAPES:
            raise ValueError(f"unknown dummy shape {value[len(DUMMY_PREFIX):]!r}; "
                             f"known: {', '.join(SHAPES)}")
        return value

    @model_validator(mode="after")
    def _matrix_fits_engine(self) -> ExperimentConfig:
        engine, matrix = self.engine, self.matrix
        if not engine.batch_limit and matrix.max_num_seqs is not None:
            raise ValueError(f"matrix.max_num_seqs: the {engine.kind} engine has no batch-size "
                             "limit to set; remove it")
        if not engine.tensor_parallel and matrix.tensor_parallel_size != [1]:
            raise ValueError(f"matrix.tensor_parallel_size: not supported by the {engine.kind} "
                             "engine")
        if not engine.variants and list(matrix.variants) != ["default"]:
            raise ValueError(f"matrix.variants: the {engine.kind} server is measured as it "
                             "runs; remove the variants")
        return self

    @model_validator(mode="after")
    def _executor_fits_engine(self, info: ValidationInfo) -> ExperimentConfig:
        if self.executor.kind == "ray" and not self.engine.local:
            raise ValueError(f"executor: the {self.engine.kind} server is already running "
                             "elsewhere; a Ray cluster has nothing to launch (remove executor)")
        named = named_gpus(self.engine)
        if self.executor.kind == "ray" and named and not is_stored(info):
            raise ValueError(f"{named}: on a Ray cluster each cell gets the GPUs Ray gives its "
                             "task; naming GPUs would put cells that run at once on the same "
                             f"GPUs and count their energy twice (remove {named})")
        return self

    @model_validator(mode="after")
    def _capacity_needs_slo(self) -> ExperimentConfig:
        if self.capacity and self.slo is None:
            raise ValueError("capacity: the search needs `slo` limits to search against")
        return self

    @property
    def capacity_search(self) -> CapacityConfig | None:
        """The search to run per cell: as configured; by default (derived range, bounded
        steps) where the run ends with a cost answer at an SLO or is tuned; none with
        `capacity: false`."""
        if self.capacity is False:
            return None
        if self.capacity is not None:
            return self.capacity
        if self.slo is not None and (self.cost.profile or self.tune is not None):
            return CapacityConfig()
        return None

    @model_validator(mode="after")
    def _tune_fits(self) -> ExperimentConfig:
        if self.tune is not None:
            problem = tune_problem(self.tune, self.matrix, self.engine, self.fidelity,
                                   searches=self.slo is not None and self.capacity is not False)
            if problem:
                raise ValueError(problem)
        return self

    def tuned_parameters(self) -> list[str]:
        """The parameters `harness tune` searches (config/tune.py, tuned_parameters)."""
        return tuned_parameters(self.tune, self.matrix) if self.tune else []

    @model_validator(mode="after")
    def _fidelity_fits(self) -> ExperimentConfig:
        fidelity = self.fidelity
        if fidelity is None:
            return self
        variants = list(self.matrix.variants)
        if fidelity.baseline is not None and fidelity.baseline not in variants:
            raise ValueError(f"fidelity.baseline: {fidelity.baseline!r} is not a variant; "
                             f"the variants are {', '.join(variants)}")
        if not self.engine.prompt_logprobs:
            raise ValueError(f"fidelity: the {self.engine.kind} engine does not return the "
                             "prompt logprobs the fidelity pass needs; remove `fidelity`")
        limit = self.engine.options.get("max_model_len")
        if isinstance(limit, int) and fidelity.request_tokens > limit:
            raise ValueError(f"fidelity: prompt_tokens + output_tokens + 1 is "
                             f"{fidelity.request_tokens} but engine.options.max_model_len is "
                             f"{limit}")
        return self

    @property
    def fidelity_baseline(self) -> str | None:
        """The variant fidelity is scored against (None without a fidelity section)."""
        if self.fidelity is None:
            return None
        return self.fidelity.baseline or next(iter(self.matrix.variants))

    @model_validator(mode="after")
    def _lengths_fit(self, info: ValidationInfo) -> ExperimentConfig:
        limit = self.engine.options.get("max_model_len")
        if not isinstance(limit, int) or is_stored(info):
            return self
        needed = self.workload.longest_request()
        if needed is None and self.workload.prompts is not None:
            return self  # real prompts: their lengths are known once tokenized
        if needed is None:
            raise ValueError("workload: a normal or lognormal length needs `max` when "
                             "engine.options.max_model_len is set")
        if needed > limit:
            raise ValueError(f"workload: a request can need {needed} tokens (input + output"
                             f"{', all turns' if self.workload.conversation else ''}) but "
                             f"engine.options.max_model_len is {limit}")
        return self

    @model_validator(mode="after")
    def _workloads_fit(self, info: ValidationInfo) -> ExperimentConfig:
        """Each named workload is a valid `workload` section and fits max_model_len."""
        for name in self.matrix.workloads or {}:
            try:
                workload = self.workload_of(name)
            except ValidationError as err:
                raise ValueError(f"matrix.workloads.{name}: {first_error(err)}") from None
            needed, limit = workload.longest_request(), self.max_model_len
            if limit is not None and needed is not None and needed > limit \
                    and not is_stored(info):
                raise ValueError(f"matrix.workloads.{name}: a request can need {needed} tokens "
                                 f"but engine.options.max_model_len is {limit}")
            if workload.prompts is not None and not is_stored(info):
                read_prompts(workload.prompts)
        return self

    def workload_of(self, name: str | None) -> WorkloadConfig:
        """The workload a cell measures: the run's, or a named one (matrix.workloads)."""
        if name is None:
            return self.workload
        return merged(self.workload, (self.matrix.workloads or {})[name])

    def for_workload(self, name: str | None) -> ExperimentConfig:
        """This config as one named workload's cells see it (itself for None)."""
        if name is None:
            return self
        return self.model_copy(update={"workload": self.workload_of(name)})

    @model_validator(mode="after")
    def _trace_reads(self, info: ValidationInfo) -> ExperimentConfig:
        if self.load.trace is not None and not is_stored(info):
            # read now, so a bad trace fails here, naming file and line
            replay = self.replayed_trace()
            phases = [phase for phases in (self.load.scenarios or {}).values()
                      for phase in phases]
            if replay.offsets[-1] == 0 and any(phase.trace for phase in phases):
                raise ValueError(f"load.trace: the replayed window of {self.load.trace.file} "
                                 "spans no time (one request?), so a trace phase would last "
                                 "0 s: widen it")
        if self.workload.prompts is not None and not is_stored(info):
            read_prompts(self.workload.prompts)
        return self

    def replayed_trace(self) -> Trace | None:
        """The replayed window of load.trace, read once (when the config is validated) and
        kept: the plan, the prompts and the checks all use this one reading."""
        if self.load.trace is None:
            return None
        if self._trace is None:
            self._trace = read_trace(self.load.trace, self.max_model_len)
        return self._trace

    @property
    def max_model_len(self) -> int | None:
        limit = self.engine.options.get("max_model_len")
        return limit if isinstance(limit, int) else None

    def hash(self) -> str:
        """Hash of everything that changes what is measured: not the cost section, nor where
        the cells run (a run started here can be resumed on a cluster), nor the fidelity
        limits (a config without fidelity hashes as it did before the section), nor default
        sustain rules (configs from before them hash as they did)."""
        skip: dict = {"cost": True, "fidelity": True, "executor": True}
        if self.tune is None:  # configs without the section hash as before it
            skip["tune"] = True
        else:  # the budget: a rerun with more trials continues the same study
            skip["tune"] = {"trials": True, "minutes": True}
        if self.sustain == SustainConfig():  # configs without the section hash as before it
            skip["sustain"] = True
        if self.matrix.workloads is None:  # (and without named workloads)
            skip["matrix"] = {"workloads": True}
        defaults = {"grow_to": DEFAULT_GROW_TO, "repeats": 1}  # (and without these)
        if self.capacity:
            skip["capacity"] = {key: True for key, value in defaults.items()
                                if getattr(self.capacity, key) == value}
        if self.fidelity is not None:
            skip["fidelity"] = {"max_kl": True, "min_top1": True}
        dumped = self.model_dump(exclude=skip)
        dumped["load"]["profiles"] = dumped["load"].pop("scenarios")  # hashed by its old name
        canonical = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def run_name(self, config_path: Path) -> str:
        return self.name or config_path.stem


def named_gpus(engine: EngineConfig) -> str | None:
    """The setting by which a config names its server's GPUs (None: it leaves them to the
    environment, or to Ray on a cluster)."""
    if engine.gpus is not None:
        return "engine.gpus"
    if "CUDA_VISIBLE_DEVICES" in getattr(engine, "env", {}):
        return "engine.env.CUDA_VISIBLE_DEVICES"
    return None


def looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or os.path.exists(model)


def load_config(path: Path) -> ExperimentConfig:
    """Read and validate a config file; every problem is a ConfigError naming file and field."""
    raw = read_yaml_mapping(path, "config", ConfigError)
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{path}: {first_error(err)}") from None
    except (LengthsFileError, TraceError, PromptFileError) as err:
        raise ConfigError(f"{path}: {err}") from None
    for where, model in _models(config):
        if not model.startswith(DUMMY_PREFIX) and looks_like_path(model):
            if not Path(model).expanduser().exists():
                raise ConfigError(f"{path}: {where}: model path {model} does not exist")
    if config.cost.profile and not Path(config.cost.profile).expanduser().exists():
        raise ConfigError(f"{path}: cost.profile: {config.cost.profile} does not exist")
    key_env = getattr(config.engine, "api_key_env", None)
    if key_env and not os.environ.get(key_env):
        raise ConfigError(f"{path}: engine.api_key_env: the environment variable {key_env} "
                          "is not set (export it, or remove api_key_env)")
    return config


def _models(config: ExperimentConfig) -> list[tuple[str, str]]:
    found = [("model", config.model)]
    if config.tokenizer:
        found.append(("tokenizer", config.tokenizer))
    for name, options in config.matrix.variants.items():
        if isinstance(options.get("model"), str):
            found.append((f"matrix.variants.{name}.model", options["model"]))
    return found
