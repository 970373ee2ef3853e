"""The record of one window, for GPUs and CPUs alike, as Zeus's `Measurement`:

    m = monitor.end_window("c16")
    m.duration_s, m.gpu_energy   # {GPU UUID: J} or None
    m.cpu_energy                 # {RAPL zone: J} or None
    m.gpu.reason, m.cpu.reason   # why a side was not measured
    m.gpu_summary(), m.cpu_summary()   # as a point result stores them (WindowSummary, CpuEnergy)

Each side is a `DeviceEnergy`: joules per device, or None and the reason. Nothing is ever a
zero standing in for "not measured".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.contract.results import CpuEnergy, WindowSummary

SHORT_WINDOW_S = 1.0  # the NVML counter moves every ~100 ms: a shorter window is a coarse reading


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy of one kind of device over a window: J per device, or None and the reason."""

    joules: dict[str, float] | None  # GPU UUID or RAPL zone name -> J
    reason: str | None = None

    @property
    def measured(self) -> bool:
        return self.joules is not None

    @property
    def total_j(self) -> float | None:
        return sum(self.joules.values()) if self.joules is not None else None


@dataclass(eq=False)
class Measurement:
    """One window over every measured device: its times, the energy of each side, the NVML
    samples taken during it (the window's energy is its own counter reads), the monitor's
    notes, and which NVML call served each reading that depends on the driver."""

    name: str
    start_s: float  # on the monitor's clock (time.perf_counter unless injected)
    end_s: float
    gpu: DeviceEnergy
    cpu: DeviceEnergy
    samples: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def short_window(self) -> bool:
        return self.duration_s < SHORT_WINDOW_S

    @property
    def gpu_energy(self) -> dict[str, float] | None:
        return self.gpu.joules

    @property
    def cpu_energy(self) -> dict[str, float] | None:
        return self.cpu.joules

    @property
    def gpu_energy_j(self) -> float | None:
        """Summed over the GPUs."""
        return self.gpu.total_j

    @property
    def cpu_energy_j(self) -> float | None:
        """Summed over the CPU packages."""
        return self.cpu.total_j

    @property
    def mean_gpu_power_w(self) -> float | None:
        """Counter energy over the window's duration, summed over the GPUs."""
        if self.gpu_energy_j is None or self.duration_s <= 0:
            return None
        return self.gpu_energy_j / self.duration_s

    def gpu_summary(self) -> WindowSummary:
        """The window and its GPU side, as a point result's `energy.window` holds it."""
        return WindowSummary(name=self.name, duration_s=self.duration_s,
                             energy_j=self.gpu_energy_j, energy_j_per_gpu=self.gpu_energy,
                             mean_power_w=self.mean_gpu_power_w, short_window=self.short_window,
                             reason=self.gpu.reason, notes=list(self.notes),
                             samples=len(self.samples), sources=dict(self.sources))

    def cpu_summary(self) -> CpuEnergy:
        """The window and its CPU side, as a point result's `cpu_energy` holds it."""
        return CpuEnergy(name=self.name, duration_s=self.duration_s, energy_j=self.cpu_energy_j,
                         energy_j_per_zone=self.cpu_energy, reason=self.cpu.reason)
