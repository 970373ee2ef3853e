"""The engine section of a config: one model per engine kind, chosen by `kind` (default vllm).

Each model says what its engine can vary (batch-size limit, tensor parallelism, variants), so
the experiment's checks ask the engine rather than list kinds. Adding an engine: its model here
(added to EngineConfig) and its module in harness/engines/ (added to the registry there).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Discriminator, Field, PositiveFloat, Tag, field_validator, model_validator

from harness.config.base import Strict

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


def normalise_options(options: dict[str, Any], where: str) -> dict[str, Any]:
    """Accept `max-model-len` and `max_model_len` alike; refuse options the harness owns."""
    normalised = {}
    for key, value in options.items():
        name = str(key).replace("-", "_")
        if name in RESERVED_OPTIONS and not (where == "variant" and name == "model"):
            raise ValueError(f"`{key}` is set by the harness; use {RESERVED_OPTIONS[name]}")
        normalised[name] = value
    return normalised


class _Engine(Strict):
    startup_timeout_s: PositiveFloat = 900.0
    gpus: str | None = Field(
        None, description="CUDA_VISIBLE_DEVICES for the server: the GPUs it uses and NVML reads "
        "(not with executor ray, which gives each cell its GPUs)")

    local: ClassVar[bool] = True  # the server runs here, on GPUs NVML can see
    batch_limit: ClassVar[bool] = True  # matrix.max_num_seqs means something to it
    tensor_parallel: ClassVar[bool] = True  # matrix.tensor_parallel_size > 1 works
    variants: ClassVar[bool] = True  # matrix.variants launch it with other options
    prompt_logprobs: ClassVar[bool] = False  # returns top-k logprobs of prompt tokens


class LaunchedEngine(_Engine):
    """An engine the harness starts, per cell, with the config's options."""

    python: str | None = Field(
        None, description="interpreter with the engine installed; default: this one")
    options: dict[str, OptionValue] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        return normalise_options(value, "engine")

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value


class VllmConfig(LaunchedEngine):
    kind: Literal["vllm"] = "vllm"

    prompt_logprobs: ClassVar[bool] = True


class TransformersConfig(LaunchedEngine):
    """`transformers serve --continuous-batching`: no batch-size limit, one GPU."""

    kind: Literal["transformers"]

    batch_limit: ClassVar[bool] = False
    tensor_parallel: ClassVar[bool] = False


class ExternalConfig(_Engine):
    """A server that is already running: measured as it runs, nothing launched."""

    kind: Literal["external"]
    url: str | None = Field(None, description="base URL of the running server")
    api_key_env: str | None = Field(
        None, description="name of the environment variable holding the API key")

    local: ClassVar[bool] = False
    batch_limit: ClassVar[bool] = False
    tensor_parallel: ClassVar[bool] = False
    variants: ClassVar[bool] = False

    @property
    def options(self) -> dict[str, OptionValue]:
        return {}  # nothing to launch it with

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _has_url(self) -> ExternalConfig:
        if not self.url:
            raise ValueError("the external engine needs `url` (the running server)")
        return self


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("kind", "vllm")
    return getattr(value, "kind", "vllm")


EngineConfig = Annotated[
    Annotated[VllmConfig, Tag("vllm")] | Annotated[TransformersConfig, Tag("transformers")]
    | Annotated[ExternalConfig, Tag("external")],
    Discriminator(_kind, custom_error_type="engine_kind",
                  custom_error_message="unknown engine kind: use vllm, transformers or external")]
