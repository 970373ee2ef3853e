"""Where a sweep's cells run: here, one after another (the default), or as tasks on a Ray
cluster (`executor: {kind: ray}` or `harness run CONFIG --ray ADDRESS`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, NonNegativeInt, PositiveInt, Tag

from harness.config.base import Strict


class LocalExecutor(Strict):
    kind: Literal["local"] = "local"


class RayExecutor(Strict):
    """Each cell is one Ray task holding its tensor-parallel size in GPUs on one node."""

    kind: Literal["ray"]
    address: str = Field(
        "auto", description="the cluster's head, host:port (or ray://host:port); `auto`: the "
                            "cluster started on this machine or RAY_ADDRESS")
    gpu_type: str | None = Field(
        None, description="Ray accelerator type every cell needs, e.g. H100 (node label "
                          "accelerator_type:H100)")
    max_retries: NonNegativeInt = Field(
        2, description="times a cell is retried when its node or task is lost")
    max_in_flight: PositiveInt | None = Field(
        None, description="most cells running at once; default: as many as the GPUs allow")
    allow_mismatch: bool = Field(
        False, description="run across nodes whose GPU driver, CUDA, engine or harness "
                           "versions differ (recorded in run.json either way)")


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return value.get("kind", "local")
    return getattr(value, "kind", "local")


ExecutorConfig = Annotated[
    Annotated[LocalExecutor, Tag("local")] | Annotated[RayExecutor, Tag("ray")],
    Discriminator(_kind, custom_error_type="executor_kind",
                  custom_error_message="unknown executor kind: use local or ray")]
