"""GPU energy and telemetry through NVML, for exactly the GPUs that serve the engine.

    monitor = GpuMonitor.open(visible=env.get("CUDA_VISIBLE_DEVICES"), count=tensor_parallel)
    idle = monitor.idle_baseline(seconds=5.0)
    monitor.begin_window("c16")
    ...                                    # the load point
    window = monitor.end_window("c16")     # window.energy_j, window.samples (a DataFrame)
    row = energy_metrics(window, prompt_tokens=..., output_tokens=..., idle_w=idle.mean_power_w)

Energy comes only from NVML's total-energy counter (mJ since the driver loaded, updated about
every 100 ms): its delta over the window, summed over the GPUs. nvmlDeviceGetPowerUsage is a
~1 s moving average on Hopper, and integrating it under-counted a 4 s full-load window by 12%
on an H200; the power samples of the background sampler are for plots and diagnostics only.

Without NVML (no driver, no GPU, CI) `GpuMonitor.open` returns `Unavailable`: the same methods,
windows with `energy_j=None` and the reason. `monitor.measured` is the one check a caller needs,
and only to decide what to write, never to avoid a crash.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pandas as pd

from harness.telemetry.gpus import Gpu, TelemetryError, as_text, select_gpus

SHORT_WINDOW_S = 1.0  # the counter moves every ~100 ms: a shorter window is a coarse reading
DEFAULT_SAMPLE_HZ = 10.0
IDLE_WINDOW = "idle-baseline"

# One row per GPU per sampler tick; power in W, memory in bytes, clocks in MHz.
SAMPLE_DTYPES = {
    "t_s": "float64", "gpu": "int64", "uuid": "object",
    "power_instant_w": "float64", "power_avg_w": "float64",
    "util_gpu_pct": "float64", "util_mem_pct": "float64", "mem_used_b": "float64",
    "sm_clock_mhz": "float64", "temp_c": "float64", "clock_event_reasons": "Int64",
}


def empty_samples() -> pd.DataFrame:
    return samples_frame([])


def samples_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(SAMPLE_DTYPES))
    return frame.astype(SAMPLE_DTYPES)


# --- the record of one window -------------------------------------------------------------


@dataclass(eq=False)
class EnergyWindow:
    """One window. `energy_j` is None when energy was not measured, and `reason` says why."""

    name: str
    start_s: float  # on the monitor's clock (time.perf_counter unless injected)
    end_s: float
    energy_j: float | None  # summed over the GPUs
    energy_j_per_gpu: dict[str, float] | None  # GPU UUID -> J
    samples: pd.DataFrame = field(default_factory=empty_samples)  # never a source of energy
    reason: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def short_window(self) -> bool:
        return self.duration_s < SHORT_WINDOW_S

    @property
    def measured(self) -> bool:
        return self.energy_j is not None

    @property
    def mean_power_w(self) -> float | None:
        """Counter energy over the window's duration, summed over the GPUs."""
        if self.energy_j is None or self.duration_s <= 0:
            return None
        return self.energy_j / self.duration_s

    def summary(self) -> dict[str, Any]:
        """Everything but the samples, ready for JSON."""
        return {"name": self.name, "duration_s": self.duration_s, "energy_j": self.energy_j,
                "energy_j_per_gpu": self.energy_j_per_gpu, "mean_power_w": self.mean_power_w,
                "short_window": self.short_window, "reason": self.reason,
                "notes": list(self.notes), "samples": len(self.samples)}


# --- window bookkeeping, shared by the real monitor and the stand-in -------------------------


class _Windows(ABC):
    """Named windows on one clock, Zeus-style: begin_window(name) ... end_window(name)."""

    measured: bool
    reason: str | None

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]):
        self.clock = clock
        self._sleep = sleep
        self._open: dict[str, tuple[float, Any]] = {}

    def begin_window(self, name: str) -> None:
        if name in self._open:
            raise ValueError(f"window {name!r} is already open")
        reading = self._read_counters()
        self._open[name] = (self.clock(), reading)

    def end_window(self, name: str) -> EnergyWindow:
        if name not in self._open:
            raise ValueError(f"no open window named {name!r}")
        start, begin = self._open.pop(name)
        end_reading = self._read_counters()
        return self._window(name, start, self.clock(), begin, end_reading)

    def idle_baseline(self, seconds: float = 5.0) -> EnergyWindow:
        """The GPUs at rest for `seconds` (5 s or more: the counter is coarse). Its
        `mean_power_w` is the idle power of the same GPUs, summed."""
        self.begin_window(IDLE_WINDOW)
        self._sleep(seconds)
        return self.end_window(IDLE_WINDOW)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _read_counters(self) -> Any: ...

    @abstractmethod
    def _window(self, name: str, start: float, end: float, begin: Any,
                end_reading: Any) -> EnergyWindow: ...


class Unavailable(_Windows):
    """Energy not measured, with the reason: windows keep their times, energy is None."""

    measured = False
    gpus: tuple[Gpu, ...] = ()

    def __init__(self, reason: str, clock: Callable[[], float] = time.perf_counter):
        super().__init__(clock, sleep=lambda _seconds: None)  # nothing to wait for
        self.reason = reason

    def __repr__(self) -> str:
        return f"Unavailable(reason={self.reason!r})"

    def static_facts(self) -> list[dict[str, Any]]:
        return []

    def sample_now(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _read_counters(self) -> None:
        return None

    def _window(self, name: str, start: float, end: float, begin: Any,
                end_reading: Any) -> EnergyWindow:
        return EnergyWindow(name, start, end, None, None, reason=self.reason)


# --- the monitor ------------------------------------------------------------------------------

Reading = dict[str, "int | str"]  # GPU UUID -> counter in mJ, or the NVML error that stopped it


class GpuMonitor(_Windows):
    """Energy windows and a background sampler for a fixed set of whole GPUs.

    Build it with `GpuMonitor.open(...)`. With `sample_hz=None` no thread runs and the
    caller takes samples with `sample_now()` (tests drive a replayed trace this way).
    """

    measured = True
    reason = None

    def __init__(self, nvml: ModuleType, gpus: list[Gpu], *,
                 sample_hz: float | None = DEFAULT_SAMPLE_HZ,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(clock, sleep)
        self.nvml = nvml
        self.gpus = tuple(gpus)
        self.notes: list[str] = []
        self._rows: list[tuple] = []  # samples in time order, pruned to the open windows
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        # The newer name first; older nvidia-ml-py releases have only the older one.
        self._reasons_fn = (getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
                            or nvml.nvmlDeviceGetCurrentClocksThrottleReasons)
        self._thread: threading.Thread | None = None
        if sample_hz:
            self._thread = threading.Thread(target=self._sample_loop, args=(1.0 / sample_hz,),
                                            name="nvml-sampler", daemon=True)
            self._thread.start()

    @classmethod
    def open(cls, visible: str | None = None, count: int | None = None, *,
             sample_hz: float | None = DEFAULT_SAMPLE_HZ, nvml: ModuleType | None = None,
             clock: Callable[[], float] = time.perf_counter,
             sleep: Callable[[float], None] = time.sleep) -> GpuMonitor | Unavailable:
        """Monitor the first `count` GPUs of CUDA_VISIBLE_DEVICES=`visible` (None: all GPUs,
        "": none). No NVML or no GPU -> `Unavailable(reason)`; GPUs that cannot be measured
        as asked (MIG, unknown index or UUID, too few) -> TelemetryError."""
        nvml, reason = _init_nvml(nvml)
        if nvml is None:
            return Unavailable(reason, clock)
        try:
            gpus = select_gpus(nvml, visible, count)
        except nvml.NVMLError as err:
            _shutdown(nvml)
            return Unavailable(f"NVML could not list the GPUs: {err}", clock)
        except TelemetryError:
            _shutdown(nvml)
            raise
        if not gpus:
            _shutdown(nvml)
            return Unavailable(f"no GPU selected (CUDA_VISIBLE_DEVICES={visible!r}, "
                               f"count={count})", clock)
        return cls(nvml, gpus, sample_hz=sample_hz, clock=clock, sleep=sleep)

    def __repr__(self) -> str:
        return f"GpuMonitor(gpus={[gpu.uuid for gpu in self.gpus]})"

    def close(self) -> None:
        """Stop the sampler, then release NVML. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        _shutdown(self.nvml)

    # --- energy ---------------------------------------------------------------------------

    def begin_window(self, name: str) -> None:
        super().begin_window(name)
        self._prune()

    def _read_counters(self) -> Reading:
        reading: Reading = {}
        for gpu in self.gpus:
            try:
                reading[gpu.uuid] = int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
            except self.nvml.NVMLError as err:
                reading[gpu.uuid] = str(err)
        return reading

    def _window(self, name: str, start: float, end: float, begin: Reading,
                end_reading: Reading) -> EnergyWindow:
        per_gpu, reason = counter_delta_j(begin, end_reading)
        samples = self._samples_between(start, end)
        self._prune()
        energy = sum(per_gpu.values()) if per_gpu is not None else None
        return EnergyWindow(name, start, end, energy, per_gpu, samples, reason, list(self.notes))

    # --- samples --------------------------------------------------------------------------

    def sample_now(self) -> None:
        """Read every GPU once and keep the readings (the sampler thread calls this)."""
        rows = [(self.clock(), *self._sample(gpu)) for gpu in self.gpus]
        with self._lock:
            self._rows.extend(rows)

    def _sample(self, gpu: Gpu) -> tuple:
        nvml, handle = self.nvml, gpu.handle
        util = self._try(nvml.nvmlDeviceGetUtilizationRates, handle)
        memory = self._try(nvml.nvmlDeviceGetMemoryInfo, handle)
        return (gpu.index, gpu.uuid,
                _watts(self._instant_power_mw(handle)),
                _watts(self._try(nvml.nvmlDeviceGetPowerUsage, handle)),  # ~1 s average
                util.gpu if util is not None else None,
                util.memory if util is not None else None,
                memory.used if memory is not None else None,
                self._try(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM),
                self._temperature(handle),
                self._try(self._reasons_fn, handle))

    def _instant_power_mw(self, handle: Any) -> int | None:
        nvml = self.nvml
        field_id = (getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", 186),
                    getattr(nvml, "NVML_POWER_SCOPE_GPU", 0))
        values = self._try(nvml.nvmlDeviceGetFieldValues, handle, [field_id])
        if not values or values[0].nvmlReturn != nvml.NVML_SUCCESS:
            return None
        return values[0].value.uiVal

    def _temperature(self, handle: Any) -> int | None:
        nvml = self.nvml
        if hasattr(nvml, "nvmlDeviceGetTemperatureV"):  # GetTemperature goes away in CUDA 14
            return self._try(nvml.nvmlDeviceGetTemperatureV, handle, nvml.NVML_TEMPERATURE_GPU)
        return self._try(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)

    def _try(self, fn: Callable, *args: Any) -> Any:
        """One reading, or None where this GPU or driver does not give it."""
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None

    def _sample_loop(self, period_s: float) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_now()
            except Exception as err:  # telemetry must never take the run down
                self.notes.append(f"sampler stopped: {type(err).__name__}: {err}")
                return
            # A fixed schedule keeps the rate; after a stall, resume rather than catch up.
            next_tick = max(next_tick + period_s, time.monotonic())
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def _samples_between(self, start: float, end: float) -> pd.DataFrame:
        with self._lock:
            rows = [row for row in self._rows if start <= row[0] <= end]
        return samples_frame(rows)

    def _prune(self) -> None:
        """Drop samples no open window can still claim."""
        with self._lock:
            if not self._open:
                self._rows.clear()
                return
            oldest = min(start for start, _reading in self._open.values())
            self._rows = [row for row in self._rows if row[0] >= oldest]

    # --- facts ------------------------------------------------------------------------------

    def static_facts(self) -> list[dict[str, Any]]:
        """What the GPUs are, one dict per GPU in the engine's order (position 0 = cuda:0)."""
        driver = self._try(self.nvml.nvmlSystemGetDriverVersion)
        return [self._facts(position, gpu, driver) for position, gpu in enumerate(self.gpus)]

    def _facts(self, position: int, gpu: Gpu, driver: str | None) -> dict[str, Any]:
        nvml, handle = self.nvml, gpu.handle
        limit_mw = self._try(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        memory = self._try(nvml.nvmlDeviceGetMemoryInfo, handle)
        capability = self._try(nvml.nvmlDeviceGetCudaComputeCapability, handle)
        name = self._try(nvml.nvmlDeviceGetName, handle)
        return {
            "position": position,
            "index": gpu.index,
            "uuid": gpu.uuid,
            "name": as_text(name) if name is not None else None,
            "driver": as_text(driver) if driver is not None else None,
            "power_limit_w": _watts(limit_mw),
            "memory_total_b": memory.total if memory is not None else None,
            "compute_capability": "{}.{}".format(*capability) if capability else None,
            "max_sm_clock_mhz": self._try(nvml.nvmlDeviceGetMaxClockInfo, handle,
                                          nvml.NVML_CLOCK_SM),
            "persistence_mode": self._try(nvml.nvmlDeviceGetPersistenceMode, handle),
        }


def counter_delta_j(begin: Reading, end: Reading) -> tuple[dict[str, float] | None, str | None]:
    """Per-GPU energy in J between two counter readings, or (None, why not)."""
    per_gpu: dict[str, float] = {}
    for uuid, first in begin.items():
        last = end[uuid]
        if isinstance(first, str) or isinstance(last, str):
            error = first if isinstance(first, str) else last
            return None, f"energy counter of {uuid} unreadable: {error}"
        if last < first:  # the counter restarts from 0 when the driver reloads
            return None, f"energy counter of {uuid} went backwards (driver reloaded?)"
        per_gpu[uuid] = (last - first) / 1000.0
    return per_gpu, None


def _init_nvml(nvml: ModuleType | None) -> tuple[ModuleType | None, str | None]:
    """(initialized NVML, None) or (None, why not)."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as err:
            return None, f"NVML unavailable: nvidia-ml-py is not installed ({err})"
    try:
        nvml.nvmlInit()
    except Exception as err:  # NVMLError_LibraryNotFound, DriverNotLoaded, version mismatch...
        return None, f"NVML unavailable: {err}"
    return nvml, None


def _shutdown(nvml: ModuleType) -> None:
    try:
        nvml.nvmlShutdown()
    except nvml.NVMLError:
        pass


def _watts(milliwatts: float | None) -> float | None:
    return milliwatts / 1000.0 if milliwatts is not None else None
