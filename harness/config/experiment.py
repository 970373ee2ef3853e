"""The experiment: model, engine, matrix, telemetry and cost, and loading a config file."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
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
from harness.config.lengths import LengthsFileError
from harness.config.load import CapacityConfig, LoadConfig, WorkloadConfig
from harness.config.shapes import SHAPES
from harness.config.slo import Slo

DUMMY_PREFIX = "dummy:"

# Options the harness sets itself on every server; a config sets them through the matrix.
RESERVED_OPTIONS = {
    "model": "the top-level `model` (or a variant's own `model`)",
    "host": "nothing (the harness binds 127.0.0.1)",
    "port": "nothing (the harness picks a free port)",
    "max_num_seqs": "`matrix.max_num_seqs`",
    "tensor_parallel_size": "`matrix.tensor_parallel_size`",
    "served_model_name": "the top-level `served_model_name`",
    "seed": "the top-level `seed`",
}

OptionValue = Union[bool, int, float, str, list, dict, None]  # noqa: UP007 (a runtime alias)


def _normalise_options(options: dict[str, Any], where: str) -> dict[str, Any]:
    """Accept `max-model-len` and `max_model_len` alike; refuse options the harness owns."""
    normalised = {}
    for key, value in options.items():
        name = str(key).replace("-", "_")
        if name in RESERVED_OPTIONS and not (where == "variant" and name == "model"):
            raise ValueError(f"`{key}` is set by the harness; use {RESERVED_OPTIONS[name]}")
        normalised[name] = value
    return normalised


ENGINE_KINDS = ("vllm", "transformers", "external")


class EngineConfig(Strict):
    kind: Literal["vllm", "transformers", "external"] = "vllm"
    python: str | None = Field(
        None, description="interpreter with the engine installed; default: this one")
    options: dict[str, OptionValue] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    startup_timeout_s: PositiveFloat = 900.0
    gpus: str | None = Field(
        None, description="CUDA_VISIBLE_DEVICES for the server: the GPUs it uses and NVML reads")
    url: str | None = Field(None, description="external: base URL of a running server")
    api_key_env: str | None = Field(
        None, description="external: name of the environment variable holding the API key")

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _normalise_options(value, "engine")

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _fits_kind(self) -> EngineConfig:
        if self.kind == "external":
            if not self.url:
                raise ValueError("the external engine needs `url` (the running server)")
            for key in ("python", "options", "env"):
                if getattr(self, key):
                    raise ValueError(f"`{key}` does not apply to an external engine")
        else:
            for key in ("url", "api_key_env"):
                if getattr(self, key):
                    raise ValueError(f"`{key}` applies only to kind: external")
        return self


class MatrixConfig(Strict):
    max_num_seqs: list[PositiveInt] | None = Field(None, min_length=1)
    variants: dict[str, dict[str, OptionValue]] = Field(
        default_factory=lambda: {"default": {}}, min_length=1)
    tensor_parallel_size: list[PositiveInt] = Field(default_factory=lambda: [1], min_length=1)

    _as_lists = field_validator("max_num_seqs", "tensor_parallel_size", mode="before")(
        classmethod(lambda cls, v: as_list(v)))

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        checked = {}
        for name, options in value.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise ValueError(f"variant name {name!r} must be letters, digits, '-', '_' or '.'")
            checked[name] = _normalise_options(options or {}, "variant")
        return checked


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
    engine: EngineConfig = Field(default_factory=EngineConfig)
    matrix: MatrixConfig = Field(default_factory=MatrixConfig)
    workload: WorkloadConfig
    load: LoadConfig
    slo: Slo | None = Field(
        None, description="limits a point must meet, e.g. ttft_p95_ms: 500, max_error_rate: 0.01")
    capacity: CapacityConfig | None = None
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    cost: CostConfig = Field(default_factory=CostConfig)

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
        kind, matrix = self.engine.kind, self.matrix
        if kind == "vllm":
            return self
        if matrix.max_num_seqs is not None:
            raise ValueError(f"matrix.max_num_seqs: the {kind} engine has no batch-size limit "
                             "to set; remove it")
        if matrix.tensor_parallel_size != [1]:
            raise ValueError(f"matrix.tensor_parallel_size: not supported by the {kind} engine")
        if kind == "external" and list(matrix.variants) != ["default"]:
            raise ValueError("matrix.variants: an external server is measured as it runs; "
                             "remove the variants")
        return self

    @model_validator(mode="after")
    def _capacity_needs_slo(self) -> ExperimentConfig:
        if self.capacity is not None and self.slo is None:
            raise ValueError("capacity: the search needs `slo` limits to search against")
        return self

    @model_validator(mode="after")
    def _lengths_fit(self, info: ValidationInfo) -> ExperimentConfig:
        limit = self.engine.options.get("max_model_len")
        if not isinstance(limit, int) or is_stored(info):
            return self
        needed = self.workload.longest_request()
        if needed is None:
            raise ValueError("workload: a normal or lognormal length needs `max` when "
                             "engine.options.max_model_len is set")
        if needed > limit:
            raise ValueError(f"workload: a request can need {needed} tokens (input + output"
                             f"{', all turns' if self.workload.conversation else ''}) but "
                             f"engine.options.max_model_len is {limit}")
        return self

    def hash(self) -> str:
        """Hash of everything that changes what is measured (the cost section does not)."""
        canonical = json.dumps(self.model_dump(exclude={"cost"}), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def run_name(self, config_path: Path) -> str:
        return self.name or config_path.stem


def looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or os.path.exists(model)


def load_config(path: Path) -> ExperimentConfig:
    """Read and validate a config file; every problem is a ConfigError naming file and field."""
    raw = read_yaml_mapping(path, "config", ConfigError)
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{path}: {first_error(err)}") from None
    except LengthsFileError as err:
        raise ConfigError(f"{path}: {err}") from None
    for where, model in _models(config):
        if not model.startswith(DUMMY_PREFIX) and looks_like_path(model):
            if not Path(model).expanduser().exists():
                raise ConfigError(f"{path}: {where}: model path {model} does not exist")
    if config.cost.profile and not Path(config.cost.profile).expanduser().exists():
        raise ConfigError(f"{path}: cost.profile: {config.cost.profile} does not exist")
    return config


def _models(config: ExperimentConfig) -> list[tuple[str, str]]:
    found = [("model", config.model)]
    if config.tokenizer:
        found.append(("tokenizer", config.tokenizer))
    for name, options in config.matrix.variants.items():
        if isinstance(options.get("model"), str):
            found.append((f"matrix.variants.{name}.model", options["model"]))
    return found
