"""GPU energy and telemetry through NVML, for exactly the GPUs that serve the engine.

Energy comes only from NVML's total-energy counter (mJ since the driver loaded, updated about
every 100 ms): its delta over the window, summed over the GPUs. nvmlDeviceGetPowerUsage is a
~1 s moving average on Hopper, and integrating it under-counted a 4 s full-load window by 12%
on an H200; the power samples of the background sampler are for plots and diagnostics only.

Each sample also holds every GPU's counter (`energy_mj`), so that a part of a window (the
steady window, harness/metrics/steady.py) is measured by the counter too. Readings whose NVML
call depends on the driver fall back to the older call (driver_calls.py); `sources()` says
which call served each.

`NvmlGpus` is the NVML side of an `EnergyMonitor` (monitor.py), which owns the windows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from harness.contract.manifest import GpuFacts
from harness.telemetry.driver_calls import (
    CLOCK_EVENT_REASONS,
    COMPUTE_PROCESSES,
    TEMPERATURE,
    DriverCall,
)
from harness.telemetry.gpus import Gpu, GpuUnavailable, as_text, select_gpus, unavailable
from harness.telemetry.measurement import DeviceEnergy
from harness.telemetry.ticker import Ticker

DEFAULT_SAMPLE_HZ = 10.0

# One row per GPU per sampler tick, stamped when that GPU's counter was read; power in W,
# memory in bytes, clocks in MHz, the energy counter in mJ (runs before it have no energy_mj).
SAMPLE_DTYPES = {
    "t_s": "float64", "gpu": "int64", "uuid": "object",
    "power_instant_w": "float64", "power_avg_w": "float64",
    "util_gpu_pct": "float64", "util_mem_pct": "float64", "mem_used_b": "float64",
    "sm_clock_mhz": "float64", "temp_c": "float64", "clock_event_reasons": "Int64",
    "energy_mj": "Int64",
}

Reading = dict[str, "int | str"]  # GPU UUID -> counter in mJ, or why it could not be read


@dataclass(frozen=True)
class NoGpus:
    """Why no GPU is measured, and whether the user should hear of it: a warning where GPUs
    were to be measured (NVML failing on a machine with NVIDIA GPUs, a lost GPU), none where
    nothing was (no NVIDIA GPU here, none selected, a remote server)."""

    reason: str
    warn: bool = True


def empty_samples() -> pd.DataFrame:
    return samples_frame([])


def samples_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(SAMPLE_DTYPES))
    return frame.astype(SAMPLE_DTYPES)


class NvmlGpus:
    """The NVML side of a fixed set of whole GPUs: their energy counters, a background sampler
    of power, utilization, memory, clocks, temperature and the counter, their static facts,
    and which processes compute on the box's GPUs.

    Build it with `NvmlGpus.open(...)`. Until `start_sampler` no thread runs and the caller
    takes samples with `sample_now()` (tests drive a replayed trace this way).
    """

    def __init__(self, nvml: ModuleType, gpus: list[Gpu],
                 clock: Callable[[], float] = time.perf_counter):
        self.nvml = nvml
        self.gpus = tuple(gpus)
        self.clock = clock
        self.notes: list[str] = []
        self._rows: list[tuple] = []  # samples in time order, pruned to the open windows
        self._lock = threading.Lock()
        self._closed = False
        self._temperature = DriverCall(nvml, TEMPERATURE)
        self._reasons = DriverCall(nvml, CLOCK_EVENT_REASONS)
        self._processes = DriverCall(nvml, COMPUTE_PROCESSES)
        self._sampler: Ticker | None = None

    @classmethod
    def open(cls, visible: str | None = None, count: int | None = None, *,
             order: str | None = None, nvml: ModuleType | None = None,
             clock: Callable[[], float] = time.perf_counter) -> NvmlGpus | NoGpus:
        """The first `count` GPUs of CUDA_VISIBLE_DEVICES=`visible` (None: all GPUs, "": none;
        `order`: CUDA_DEVICE_ORDER), or NoGpus and why not. GPUs that cannot be measured as
        asked (MIG, unknown index or UUID, too few) -> TelemetryError."""
        nvml, reason = _init_nvml(nvml)
        if nvml is None:
            return NoGpus(reason, warn=nvidia_devices_present())
        try:
            gpus = select_gpus(nvml, visible, count, order)
        except nvml.NVMLError as err:
            _shutdown(nvml)
            return NoGpus(f"NVML could not list the GPUs: {err}")
        except GpuUnavailable as err:
            _shutdown(nvml)
            return NoGpus(str(err))
        except BaseException:
            _shutdown(nvml)
            raise
        if not gpus:
            _shutdown(nvml)
            return NoGpus(f"no GPU selected (CUDA_VISIBLE_DEVICES={visible!r}, count={count})",
                          warn=False)
        return cls(nvml, gpus, clock)

    def __repr__(self) -> str:
        return f"NvmlGpus(gpus={[gpu.uuid for gpu in self.gpus]})"

    def close(self) -> None:
        """Stop the sampler, then release NVML. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._sampler is not None:
            self._sampler.stop()
        _shutdown(self.nvml)

    # --- energy ---------------------------------------------------------------------------

    def read_energy(self) -> Reading:
        return {gpu.uuid: self._counter(gpu) for gpu in self.gpus}

    def _counter(self, gpu: Gpu) -> int | str:
        """The GPU's energy counter in mJ, or why it could not be read."""
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
        except self.nvml.NVMLError as err:
            if err.value == self.nvml.NVML_ERROR_GPU_IS_LOST:
                return unavailable(gpu.uuid, err, self.nvml)
            return f"energy counter of {gpu.uuid} unreadable: {err}"

    def energy_between(self, begin: Reading, end: Reading) -> DeviceEnergy:
        return counter_delta_j(begin, end)

    # --- samples --------------------------------------------------------------------------

    def start_sampler(self, sample_hz: float, also: Callable[[], None] = lambda: None) -> None:
        """Sample every GPU `sample_hz` times a second on a daemon thread until `close`, and
        call `also` after each sample (the monitor's RAPL poll rides on this thread)."""
        def tick() -> None:
            self.sample_now()
            also()

        self._sampler = Ticker("nvml-sampler", 1.0 / sample_hz, tick, self.notes)

    def sample_now(self) -> None:
        """Read every GPU once and keep the readings (the sampler thread calls this)."""
        rows = [self._sample(gpu) for gpu in self.gpus]
        with self._lock:
            self._rows.extend(rows)

    def _sample(self, gpu: Gpu) -> tuple:
        """One row: stamped, then the counter read at once (reading N GPUs takes time, so each
        GPU's row has its own time), then the rest."""
        nvml, handle = self.nvml, gpu.handle
        t_s = self.clock()
        counter = self._counter(gpu)
        util = self._try(nvml.nvmlDeviceGetUtilizationRates, handle)
        memory = self._try(nvml.nvmlDeviceGetMemoryInfo, handle)
        return (t_s, gpu.index, gpu.uuid,
                _watts(self._instant_power_mw(handle)),
                _watts(self._try(nvml.nvmlDeviceGetPowerUsage, handle)),  # ~1 s average
                util.gpu if util is not None else None,
                util.memory if util is not None else None,
                memory.used if memory is not None else None,
                self._try(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM),
                self._try(self._temperature, handle, nvml.NVML_TEMPERATURE_GPU),
                self._try(self._reasons, handle),
                counter if isinstance(counter, int) else None)

    def _instant_power_mw(self, handle: Any) -> int | None:
        nvml = self.nvml
        field_id = (getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", 186),
                    getattr(nvml, "NVML_POWER_SCOPE_GPU", 0))
        values = self._try(nvml.nvmlDeviceGetFieldValues, handle, [field_id])
        if not values or values[0].nvmlReturn != nvml.NVML_SUCCESS:
            return None
        return values[0].value.uiVal

    def sources(self) -> dict[str, str]:
        """Which NVML call served each reading that depends on the driver (those read yet)."""
        calls = {"temperature": self._temperature, "clock_event_reasons": self._reasons,
                 "compute_processes": self._processes}
        return {reading: call.source for reading, call in calls.items() if call.source}

    def _try(self, fn: Callable, *args: Any) -> Any:
        """One reading, or None where this GPU or driver does not give it."""
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None

    def samples_between(self, start: float, end: float) -> pd.DataFrame:
        with self._lock:
            rows = [row for row in self._rows if start <= row[0] <= end]
        return samples_frame(rows)

    def drop_samples_before(self, oldest: float | None) -> None:
        """Drop samples no open window can still claim (all of them when none is open)."""
        with self._lock:
            self._rows = [] if oldest is None else [row for row in self._rows if row[0] >= oldest]

    # --- where the server runs --------------------------------------------------------------

    def compute_pids(self) -> dict[str, set[int]]:
        """GPU UUID -> the pids NVML lists as computing on it, over every GPU NVML can read
        (those it may not, or that are lost, are left out)."""
        found: dict[str, set[int]] = {}
        for index in range(self.nvml.nvmlDeviceGetCount()):
            try:
                handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = as_text(self.nvml.nvmlDeviceGetUUID(handle))
                found[uuid] = {process.pid for process in self._processes(handle)}
            except self.nvml.NVMLError:
                continue
        return found

    # --- facts ------------------------------------------------------------------------------

    def static_facts(self) -> list[GpuFacts]:
        """What the GPUs are, in the engine's order (position 0 = cuda:0)."""
        driver = self._try(self.nvml.nvmlSystemGetDriverVersion)
        return [self._facts(position, gpu, driver) for position, gpu in enumerate(self.gpus)]

    def _facts(self, position: int, gpu: Gpu, driver: str | None) -> GpuFacts:
        nvml, handle = self.nvml, gpu.handle
        limit_mw = self._try(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        memory = self._try(nvml.nvmlDeviceGetMemoryInfo, handle)
        capability = self._try(nvml.nvmlDeviceGetCudaComputeCapability, handle)
        name = self._try(nvml.nvmlDeviceGetName, handle)
        return GpuFacts(
            position=position,
            index=gpu.index,
            uuid=gpu.uuid,
            name=as_text(name) if name is not None else None,
            driver=as_text(driver) if driver is not None else None,
            power_limit_w=_watts(limit_mw),
            memory_total_b=memory.total if memory is not None else None,
            compute_capability="{}.{}".format(*capability) if capability else None,
            max_sm_clock_mhz=self._try(nvml.nvmlDeviceGetMaxClockInfo, handle,
                                       nvml.NVML_CLOCK_SM),
            persistence_mode=self._try(nvml.nvmlDeviceGetPersistenceMode, handle),
            max_mem_clock_mhz=self._try(nvml.nvmlDeviceGetMaxClockInfo, handle,
                                        nvml.NVML_CLOCK_MEM),
            memory_bus_width_bits=self._call("nvmlDeviceGetMemoryBusWidth", handle),
            ecc_enabled=_ecc(self._call("nvmlDeviceGetEccMode", handle)),
            nvlink_links_up=self._nvlinks(handle))

    def _call(self, name: str, *args: Any) -> Any:
        """A reading by the binding's function name: None where the binding or the driver
        lacks it (an older driver answers FunctionNotFound) or the GPU does not give it."""
        fn = getattr(self.nvml, name, None)
        if fn is None:
            return None
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None

    def _nvlinks(self, handle: Any) -> int | None:
        """Active NVLink links, NVML_NVLINK_MAX_LINKS asked (None: NVML says nothing)."""
        states = [self._call("nvmlDeviceGetNvLinkState", handle, link)
                  for link in range(getattr(self.nvml, "NVML_NVLINK_MAX_LINKS", 0))]
        answered = [state for state in states if state is not None]
        return sum(1 for state in answered if state) if answered else None


def counter_delta_j(begin: Reading, end: Reading) -> DeviceEnergy:
    """Per-GPU energy in J between two counter readings, or None and why not."""
    per_gpu: dict[str, float] = {}
    for uuid, first in begin.items():
        last = end[uuid]
        if isinstance(first, str) or isinstance(last, str):
            return DeviceEnergy(None, first if isinstance(first, str) else last)
        if last < first:  # the counter restarts from 0 when the driver reloads
            return DeviceEnergy(None, f"energy counter of {uuid} went backwards "
                                      "(driver reloaded?)")
        per_gpu[uuid] = (last - first) / 1000.0
    return DeviceEnergy(per_gpu)


def nvidia_devices_present(proc: Path = Path("/proc/driver/nvidia/gpus"),
                           dev: Path = Path("/dev")) -> bool:
    """True where this machine shows an NVIDIA GPU (the driver's /proc entries, or a device
    node a container was given), so that NVML failing here is news, not the expected CPU box."""
    try:
        listed = any(proc.iterdir())
    except OSError:  # no NVIDIA driver loaded here (or not visible to a container)
        listed = False
    return listed or any(dev.glob("nvidia[0-9]*"))


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


def _ecc(mode: Any) -> bool | None:
    """nvmlDeviceGetEccMode answers [current, pending]: ECC in force now."""
    return bool(mode[0]) if mode else None


def _watts(milliwatts: float | None) -> float | None:
    return milliwatts / 1000.0 if milliwatts is not None else None
