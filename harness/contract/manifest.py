"""The run's manifest (<run>/run.json): its config, host, invocations and telemetry sources;
part of the results contract of harness/contract/results.py, with the same schema version."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_serializer

from harness.config import ExperimentConfig
from harness.contract.placement import ClusterView
from harness.contract.stored import SCHEMA_VERSION, Stored

# Keys whose values are secrets wherever they sit in a config (engine options such as vLLM's
# api_key, engine env such as HF_TOKEN): stored as REDACTED, never verbatim.
SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|token|secret|password|passwd|credentials?)$",
                        re.IGNORECASE)
REDACTED = "<redacted>"


def redact_secrets(value: Any) -> Any:
    """`value` (a JSON-like config dump) with every secret-named key's value replaced."""
    if isinstance(value, dict):
        return {key: REDACTED if SECRET_KEY.search(str(key)) and value[key] is not None
                else redact_secrets(value[key]) for key in value}
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    return value


class EnginePackage(Stored):
    package: str
    version: str


class GpuDevice(Stored):
    index: int
    name: str
    uuid: str


class GpuInventory(Stored):
    available: bool
    reason: str | None = None
    driver: str | None = None
    devices: list[GpuDevice] = Field(default_factory=list)


class HostSpeed(Stored):
    """How fast the machine was when the run began (harness/run/calibration.py)."""

    single_core_mops: float  # millions of Python additions a second on one core
    memory_gbps: float  # GB/s of a large memory copy

    def ratio(self, other: HostSpeed) -> float:
        """How many times faster the faster of the two is, on the measure they differ most."""
        ratios = [mine / theirs for mine, theirs in
                  ((self.single_core_mops, other.single_core_mops),
                   (self.memory_gbps, other.memory_gbps)) if mine > 0 and theirs > 0]
        return max((max(r, 1 / r) for r in ratios), default=1.0)


class Host(Stored):
    hostname: str
    platform: str
    python: str
    cpu: str
    cpu_count: int | None
    memory_gib: float | None
    gpus: GpuInventory
    environment: dict[str, str] = Field(
        default_factory=dict, description="the allowlisted variables that change what is "
                                          "measured (harness.run.provenance.ENVIRONMENT)")
    speed: HostSpeed | None = None  # absent in runs from before it was measured


class Invocation(Stored):
    started_at: str
    ended_at: str | None
    status: str  # running, complete, failed, interrupted, refused
    harness_version: str
    host: Host
    cluster: ClusterView | None = None  # a run on a Ray cluster


class GpuFacts(Stored):
    """What one GPU of a cell is, as NVML says (None where it does not say)."""

    position: int  # in the engine's order: 0 is cuda:0
    index: int  # NVML's index
    uuid: str
    name: str | None
    driver: str | None
    power_limit_w: float | None  # the enforced limit
    memory_total_b: int | None
    compute_capability: str | None  # "9.0"
    max_sm_clock_mhz: int | None
    persistence_mode: int | None
    max_mem_clock_mhz: int | None = None
    memory_bus_width_bits: int | None = None
    ecc_enabled: bool | None = None  # ECC mode in force
    nvlink_links_up: int | None = None  # active NVLink links (0: PCIe only)


class CellTelemetry(Stored):
    """What measured a cell's energy (the GPUs' static facts), or why nothing did."""

    gpus: list[GpuFacts]
    gpu_energy: str
    cpu_energy: str
    cores: str | None = None  # where a CPU engine's threads and the client ran, if apart
    sources: dict[str, str] = Field(
        default_factory=dict, description="reading -> the NVML call that served it, where "
        "the call depends on the driver (temperature: nvmlDeviceGetTemperature)")
    warnings: list[str] = Field(
        default_factory=list, description="what went wrong with the cell's energy and samples, "
        "as the run warned of it")


class RunManifest(Stored):
    schema_version: int = SCHEMA_VERSION
    run: str
    config_file: str
    config: ExperimentConfig
    config_hash: str
    harness_version: str
    harness_git_sha: str | None
    engine_package: EnginePackage | None
    host: Host
    started_at: str
    ended_at: str | None = None
    status: str = "running"
    invocations: list[Invocation] = Field(default_factory=list)
    telemetry: dict[str, CellTelemetry] = Field(default_factory=dict)

    @field_serializer("config")
    def _config_without_secrets(self, config: ExperimentConfig) -> dict[str, Any]:
        # the hash beside it is of the real config, so a resume still recognises the run
        return redact_secrets(config.model_dump(mode="json"))

    @property
    def gpu_names(self) -> list[str]:
        gpus = self.host.gpus
        return [device.name for device in gpus.devices] if gpus.available else []

    @property
    def hardware(self) -> str:
        """'NVIDIA H100 80GB HBM3' or 'AMD EPYC (no GPU)'."""
        names = self.gpu_names
        return ", ".join(sorted(set(names))) if names else f"{self.host.cpu} (no GPU)"

    @property
    def run_date(self) -> str:
        return self.started_at[:10]
