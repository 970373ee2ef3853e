"""Per-point energy metrics from a measurement: energy per token, power above idle, and what the
NVML samples say about temperature, throttling, utilization and memory."""

from __future__ import annotations

from typing import Any

import pandas as pd

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


def energy_metrics(window: Measurement, *, prompt_tokens: int, output_tokens: int,
                   idle_w: float | None = None) -> dict[str, Any]:
    """Flat energy columns of one load point.

    GPU energy and mean power come from the NVML counter, and `energy_j` and the per-token
    ratios are GPU energy only; `idle_w` is the idle power of the same GPUs
    (`monitor.idle_baseline().mean_gpu_power_w`). `cpu_energy_j` is the RAPL package energy
    beside it. Temperature, throttling, utilization and memory come from the window's
    samples. Anything not measured is None; `energy_note` says why for the GPUs.
    """
    energy = window.gpu_energy_j
    mean_w = window.mean_gpu_power_w
    above_idle = mean_w - idle_w if mean_w is not None and idle_w is not None else None
    total_tokens = prompt_tokens + output_tokens
    return {
        "energy_j": energy,
        "cpu_energy_j": window.cpu_energy_j,
        "mean_power_w": mean_w,
        "idle_power_w": idle_w,
        "mean_power_above_idle_w": above_idle,
        "j_per_output_token": _ratio(energy, output_tokens),
        "j_per_token": _ratio(energy, total_tokens),
        "output_tokens_per_j": _ratio(output_tokens, energy),
        **sample_metrics(window.samples),
        "energy_short_window": window.short_window,
        "energy_note": window.gpu.reason,
    }


def sample_metrics(samples: pd.DataFrame) -> dict[str, Any]:
    """Peak temperature, clock-event reasons seen ("" for none, None when not sampled), mean
    GPU utilization over all samples of all GPUs, and the peak memory used on any one GPU."""
    reasons = samples["clock_event_reasons"].dropna()
    seen = 0
    for mask in reasons.unique():
        seen |= int(mask)
    peak_mem = _stat(samples["mem_used_b"], "max")
    return {
        "peak_temp_c": _stat(samples["temp_c"], "max"),
        "throttle_reasons": ",".join(decode_clock_event_reasons(seen)) if len(reasons) else None,
        "mean_gpu_util_pct": _stat(samples["util_gpu_pct"], "mean"),
        "peak_mem_used_gib": peak_mem / GIB if peak_mem is not None else None,
    }


def _stat(column: pd.Series, how: str) -> float | None:
    values = column.dropna()
    return float(getattr(values, how)()) if len(values) else None


def _ratio(numerator: float | None, denominator: float) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
