"""A load point's energy from its measurement: energy per token, power above idle, and what the
NVML samples say about temperature, throttling, utilization and memory, built as the point's
result stores it (harness.contract.results.Energy)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.contract.results import Energy
from harness.telemetry.measurement import Measurement

GIB = 1024**3

# Clock-event ("throttle") reason bits, named as nvidia-ml-py's nvmlClocksEventReason* constants.
CLOCK_EVENT_REASONS = {
    0x1: "GpuIdle", 0x2: "ApplicationsClocksSetting", 0x4: "SwPowerCap", 0x8: "HwSlowdown",
    0x10: "SyncBoost", 0x20: "SwThermalSlowdown", 0x40: "HwThermalSlowdown",
    0x80: "HwPowerBrakeSlowdown", 0x100: "DisplayClockSetting", 0x200: "BoardLimit",
    0x400: "Reliability",
}


def decode_clock_event_reasons(mask: int) -> list[str]:
    return [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]


def point_energy(window: Measurement, idle: Measurement, *, prompt_tokens: int,
                 output_tokens: int) -> Energy:
    """The energy of one load point over its `window`.

    GPU energy and mean power come from the NVML counter, and `energy_j` and the per-token
    ratios are GPU energy only; the idle power is `idle`'s (`monitor.idle_baseline()`, the same
    GPUs at rest). `cpu_energy_j` is the RAPL package energy beside it. Temperature,
    throttling, utilization and memory come from the window's samples. Anything not measured
    is None; `energy_note` says why for the GPUs ("not measured: <why>").
    """
    energy = window.gpu_energy_j
    mean_w, idle_w = window.mean_gpu_power_w, idle.mean_gpu_power_w
    above_idle = mean_w - idle_w if mean_w is not None and idle_w is not None else None
    sampled = sampled_facts(window.samples)
    return Energy(
        energy_j=energy,
        mean_power_w=mean_w,
        idle_power_w=idle_w,
        mean_power_above_idle_w=above_idle,
        j_per_output_token=_ratio(energy, output_tokens),
        j_per_token=_ratio(energy, prompt_tokens + output_tokens),
        output_tokens_per_j=_ratio(output_tokens, energy),
        peak_temp_c=sampled.peak_temp_c,
        throttle_reasons=sampled.throttle_reasons,
        mean_gpu_util_pct=sampled.mean_gpu_util_pct,
        peak_mem_used_gib=sampled.peak_mem_used_gib,
        energy_short_window=window.short_window,
        energy_note=None if energy is not None else f"not measured: {window.gpu.reason}",
        cpu_energy_j=window.cpu_energy_j,
        window=window.gpu_summary(),
        idle=idle.gpu_summary())


@dataclass(frozen=True)
class SampledFacts:
    """What a window's NVML samples say (None where nothing was sampled)."""

    peak_temp_c: float | None
    throttle_reasons: str | None  # "" when the GPUs never throttled
    mean_gpu_util_pct: float | None  # over all samples of all GPUs
    peak_mem_used_gib: float | None  # on any one GPU


def sampled_facts(samples: pd.DataFrame) -> SampledFacts:
    """Peak temperature, clock-event reasons seen, mean GPU utilization and peak memory."""
    reasons = samples["clock_event_reasons"].dropna()
    seen = 0
    for mask in reasons.unique():
        seen |= int(mask)
    peak_mem = _stat(samples["mem_used_b"], "max")
    return SampledFacts(
        peak_temp_c=_stat(samples["temp_c"], "max"),
        throttle_reasons=",".join(decode_clock_event_reasons(seen)) if len(reasons) else None,
        mean_gpu_util_pct=_stat(samples["util_gpu_pct"], "mean"),
        peak_mem_used_gib=peak_mem / GIB if peak_mem is not None else None)


def _stat(column: pd.Series, how: str) -> float | None:
    values = column.dropna()
    return float(getattr(values, how)()) if len(values) else None


def _ratio(numerator: float | None, denominator: float) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
