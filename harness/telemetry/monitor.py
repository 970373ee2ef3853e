"""GPU and CPU energy of one cell in named windows, as Zeus's `ZeusMonitor`:

    monitor = EnergyMonitor.open(visible=env.get("CUDA_VISIBLE_DEVICES"), count=cell.gpus)
    idle = monitor.idle_baseline(seconds=5.0)
    monitor.begin_window("c16")
    ...                                  # the load point
    m = monitor.end_window("c16")        # m.gpu_energy, m.cpu_energy, m.samples (a DataFrame)
    energy = point_energy(m, idle, prompt_tokens=..., output_tokens=...)   # a point's Energy
    monitor.cancel_window("c32")         # a point that failed: its window is dropped unread

A window reads every GPU's NVML energy counter and every RAPL package counter when it begins
and when it ends, and returns one `Measurement`. Windows may nest and overlap. While one is
open the RAPL counters are also read every RAPL_POLL_S, so that a long window sees each wrap.

Without NVML (no driver, no GPU, CI) or without RAPL (not root, a VM, a container) the monitor
works the same, and that side of every measurement is None with the reason. `gpu_reason` and
`cpu_reason` are the checks a caller needs, and only to decide what to write, never to avoid
a crash. What the user must hear of (NVML failing on a machine with NVIDIA GPUs, a window
whose counters could not be read, a sampler that stopped) is also in `take_warnings()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd

from harness.contract.manifest import GpuFacts
from harness.telemetry.gpus import Gpu
from harness.telemetry.measurement import DeviceEnergy, Measurement
from harness.telemetry.nvml import DEFAULT_SAMPLE_HZ, NoGpus, NvmlGpus, Reading, empty_samples
from harness.telemetry.placement import Placement, judge
from harness.telemetry.rapl import DEFAULT_ROOT, RaplMonitor
from harness.telemetry.ticker import Ticker

IDLE_WINDOW = "idle-baseline"
# RAPL's energy_uj wraps after max_energy_range_uj, ~262 kJ on many parts: about 20 minutes for
# a package at 200 W, still over 4 minutes at 1 kW. A read misses a wrap only when a whole wrap
# period passed since the previous read, so reads every 10 s (11 s at worst, see the poller)
# come more than 20 times per wrap period even at 1 kW, for the cost of a few sysfs reads.
RAPL_POLL_S = 10.0


@dataclass(frozen=True)
class _Begin:
    """What an open window read when it began."""

    start_s: float
    gpu: Reading
    cpu: dict[str, int]


class EnergyMonitor:
    """Named windows over the GPUs of a cell (NVML, when there is one) and the CPU packages
    (RAPL, when readable). Build it with `EnergyMonitor.open(...)`.

    With `sample_hz=None` no sampler thread runs and the caller takes GPU samples with
    `sample_now()` (tests drive a replayed trace this way). The RAPL poll rides on the sampler
    thread; without one, and with RAPL readable, a small thread of its own runs it.
    """

    def __init__(self, gpus: NvmlGpus | NoGpus, cpu: RaplMonitor, *,
                 sample_hz: float | None = DEFAULT_SAMPLE_HZ,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep, rapl_poll_s: float = RAPL_POLL_S):
        self._nvml = gpus if isinstance(gpus, NvmlGpus) else None
        self.gpu_reason = gpus.reason if isinstance(gpus, NoGpus) else None
        self.cpu = cpu
        self.clock = clock
        self.rapl_poll_s = rapl_poll_s
        self._sleep = sleep
        self._open: dict[str, _Begin] = {}
        self._notes: list[str] = []
        self._poller: Ticker | None = None
        self.gpu_windows = 0  # windows ended with NVML present
        self.gpu_failures: list[str] = []  # why each of those without GPU energy had none
        self._warned: list[str] = []  # every warning of this monitor, in order
        self._handed = 0  # how many of them take_warnings has handed out
        if isinstance(gpus, NoGpus) and gpus.warn:
            self._warn(f"GPU energy not measured: {gpus.reason}")
        if self._nvml is not None and sample_hz:
            self._nvml.start_sampler(sample_hz, also=self._poll_cpu)
        elif cpu.measured:  # looks ten times per interval: reads come at most 1.1 intervals apart
            self._poller = Ticker("rapl-poller", rapl_poll_s / 10, self._poll_cpu, self._notes)

    @classmethod
    def open(cls, visible: str | None = None, count: int | None = None, *,
             order: str | None = None,
             sample_hz: float | None = DEFAULT_SAMPLE_HZ, nvml: ModuleType | None = None,
             clock: Callable[[], float] = time.perf_counter,
             sleep: Callable[[float], None] = time.sleep,
             rapl_root: Path | str = DEFAULT_ROOT,
             rapl_poll_s: float = RAPL_POLL_S) -> EnergyMonitor:
        """Monitor the first `count` GPUs of CUDA_VISIBLE_DEVICES=`visible` (None: all GPUs,
        "": none; `order`: CUDA_DEVICE_ORDER) and the CPU packages under `rapl_root`. GPUs
        that cannot be measured as asked (MIG, unknown index or UUID, too few) ->
        TelemetryError."""
        gpus = NvmlGpus.open(visible, count, order=order, nvml=nvml, clock=clock)
        return cls(gpus, RaplMonitor.open(rapl_root, clock), sample_hz=sample_hz,
                   clock=clock, sleep=sleep, rapl_poll_s=rapl_poll_s)

    @classmethod
    def without_gpus(cls, reason: str, *, clock: Callable[[], float] = time.perf_counter,
                     sleep: Callable[[float], None] = time.sleep,
                     rapl_root: Path | str = DEFAULT_ROOT,
                     rapl_poll_s: float = RAPL_POLL_S) -> EnergyMonitor:
        """GPU energy not measured, for `reason` (a remote server); CPU energy as usual."""
        return cls(NoGpus(reason, warn=False), RaplMonitor.open(rapl_root, clock), clock=clock,
                   sleep=sleep, rapl_poll_s=rapl_poll_s)

    def __repr__(self) -> str:
        gpus = repr(self._nvml) if self._nvml is not None else f"gpu_reason={self.gpu_reason!r}"
        return f"EnergyMonitor({gpus}, {self.cpu!r})"

    # --- what is measured ------------------------------------------------------------------

    @property
    def gpus(self) -> tuple[Gpu, ...]:
        return self._nvml.gpus if self._nvml is not None else ()

    @property
    def gpu_measured(self) -> bool:
        return self._nvml is not None

    @property
    def cpu_measured(self) -> bool:
        return self.cpu.measured

    @property
    def cpu_reason(self) -> str | None:
        return self.cpu.reason

    @property
    def notes(self) -> list[str]:
        """What went wrong on the way (a sampler or poller thread that stopped)."""
        gpu_notes = self._nvml.notes if self._nvml is not None else []
        return [*gpu_notes, *self._notes]

    def static_facts(self) -> list[GpuFacts]:
        """What the GPUs are, in the engine's order (position 0 = cuda:0)."""
        return self._nvml.static_facts() if self._nvml is not None else []

    @property
    def sources(self) -> dict[str, str]:
        """Which NVML call served each reading that depends on the driver."""
        return self._nvml.sources() if self._nvml is not None else {}

    def placement(self, server_pids: set[int]) -> Placement:
        """Whether the server (its pids) computes on exactly the measured GPUs; nothing is
        judged without NVML."""
        if self._nvml is None:
            return Placement()
        return judge([gpu.uuid for gpu in self.gpus], self._nvml.compute_pids(), server_pids)

    @property
    def warnings(self) -> list[str]:
        """What the user should hear of, in order, each text once: GPU energy not measured
        where it was to be, a sampler or poller that stopped."""
        for note in self._nvml.notes if self._nvml is not None else []:
            self._warn(f"GPU samples not measured from here on: {note}")
        for note in self._notes:
            self._warn(note)
        return list(self._warned)

    def take_warnings(self) -> list[str]:
        """The warnings not handed out yet."""
        seen = self.warnings
        found, self._handed = seen[self._handed:], len(seen)
        return found

    def _warn(self, text: str) -> None:
        if text not in self._warned:
            self._warned.append(text)

    # --- windows ---------------------------------------------------------------------------

    def begin_window(self, name: str) -> None:
        if name in self._open:
            raise ValueError(f"window {name!r} is already open")
        gpu, cpu = self._read_gpus(), self.cpu.read()
        self._open[name] = _Begin(self.clock(), gpu, cpu)
        self._drop_old_samples()

    def end_window(self, name: str) -> Measurement:
        if name not in self._open:
            raise ValueError(f"no open window named {name!r}")
        begin = self._open.pop(name)
        gpu, cpu = self._read_gpus(), self.cpu.read()
        end_s = self.clock()
        measurement = Measurement(name, begin.start_s, end_s, self._gpu_energy(begin.gpu, gpu),
                                  self.cpu.energy_between(begin.cpu, cpu),
                                  self._samples(begin.start_s, end_s), self.notes, self.sources)
        self._drop_old_samples()
        self._tally(measurement)
        return measurement

    def _tally(self, measurement: Measurement) -> None:
        """Count a window NVML was there for, and warn where its GPU energy was lost."""
        if self._nvml is None:
            return
        self.gpu_windows += 1
        if not measurement.gpu.measured:
            self.gpu_failures.append(measurement.gpu.reason)
            self._warn(f"GPU energy not measured: {measurement.gpu.reason}")

    def cancel_window(self, name: str) -> None:
        """Drop the open window `name` without reading a counter: the point it measured
        failed, and nothing of it is stored."""
        if self._open.pop(name, None) is None:
            raise ValueError(f"no open window named {name!r}")
        self._drop_old_samples()

    def idle_baseline(self, seconds: float = 5.0) -> Measurement:
        """The devices at rest for `seconds` (5 s or more: the GPU counter is coarse). Its
        `mean_gpu_power_w` is the idle power of the same GPUs, summed. With nothing to
        measure it does not wait."""
        self.begin_window(IDLE_WINDOW)
        if self.gpu_measured or self.cpu_measured:
            self._sleep(seconds)
        return self.end_window(IDLE_WINDOW)

    def sample_now(self) -> None:
        """Sample every GPU once (the sampler thread calls this; without NVML it does nothing)."""
        if self._nvml is not None:
            self._nvml.sample_now()

    def close(self) -> None:
        """Stop the sampler or poller thread, then release NVML. Safe to call twice."""
        if self._poller is not None:
            self._poller.stop()
        if self._nvml is not None:
            self._nvml.close()

    def __enter__(self) -> EnergyMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _poll_cpu(self) -> None:
        """While a window is open, read RAPL if the last read is `rapl_poll_s` old."""
        if self._open:
            self.cpu.poll(max_age_s=self.rapl_poll_s)

    # --- the GPU side, which may be absent --------------------------------------------------

    def _read_gpus(self) -> Reading:
        return self._nvml.read_energy() if self._nvml is not None else {}

    def _gpu_energy(self, begin: Reading, end: Reading) -> DeviceEnergy:
        if self._nvml is None:
            return DeviceEnergy(None, self.gpu_reason)
        return self._nvml.energy_between(begin, end)

    def _samples(self, start_s: float, end_s: float) -> pd.DataFrame:
        if self._nvml is None:
            return empty_samples()
        return self._nvml.samples_between(start_s, end_s)

    def _drop_old_samples(self) -> None:
        """Keep only the samples an open window can still claim."""
        if self._nvml is not None:
            oldest = min((begin.start_s for begin in self._open.values()), default=None)
            self._nvml.drop_samples_before(oldest)
