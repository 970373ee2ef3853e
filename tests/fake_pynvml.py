"""A stand-in for nvidia-ml-py's `pynvml` that replays real NVML traces.

The traces in tests/fixtures were recorded on an H200 and an H100: every reading the
harness takes, at ~20 Hz, over idle, quarter-load, full-load and cooldown phases. The fake keeps
nvidia-ml-py's function names, units (mJ, mW, bytes, MHz, degrees C), return types (the real
ctypes structures c_nvmlUtilization_t, c_nvmlMemory_t, c_nvmlFieldValue_t) and error classes
(the real NVMLError subclasses), so code that runs on it runs on a GPU.

Time comes from an injectable clock, in seconds since the start of the trace. NVML's counters
and power fields hold their value until the next ~100 ms update, so a reading returns the last
recorded row at or before that time, never an interpolation.

It is as strict as the real NVML where a first GPU run would find out otherwise:
- `call_s`: every call takes that long on a FakeClock (reading N GPUs takes time);
- `driver`: the driver version it plays; a symbol that driver lacks raises FunctionNotFound
  (DRIVER_SINCE: R535 lacks nvmlDeviceGetTemperatureV, R530 the ClocksEventReasons name);
- a FakeGpu may be `no_permission` (NoPermission on every call, its handle included: a GPU
  cgroups keep from this process) or `lost_at` a time (GpuIsLost from then on);
- a FakeGpu's `processes`: the pids nvmlDeviceGetComputeRunningProcesses lists on it.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pynvml

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The first driver branch whose libnvidia-ml has the symbol (nvidia-ml-py binds them all).
DRIVER_SINCE = {
    "nvmlDeviceGetTemperatureV": 580,
    "nvmlDeviceGetCurrentClocksEventReasons": 535,
    "nvmlDeviceGetComputeRunningProcesses_v3": 510,
}
NO_INSTANCE = 0xFFFFFFFF  # gpuInstanceId / computeInstanceId of a process on a GPU without MIG
H200_TRACE = FIXTURES / "nvml-trace-h200.json"
H100_TRACE = FIXTURES / "nvml-trace-h100.json"


# --- clocks ---------------------------------------------------------------------------------


class FakeClock:
    """Seconds since the start of the trace; moves only when told (sleep advances it)."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        self.now = now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class RealtimeClock:
    """Seconds since the start of the trace, running in real time from `start`."""

    def __init__(self, start: float = 0.0):
        self._offset = start - time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() + self._offset


# --- traces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    device: dict[str, Any]
    phases: dict[str, tuple[int, int]]  # name -> (start_ns, end_ns)
    rows: list[dict[str, int]]
    times: list[int]  # rows' t_ns, for bisecting

    @classmethod
    def load(cls, path: Path) -> Trace:
        return _load_trace(path)

    @property
    def t0_ns(self) -> int:
        return self.rows[0]["t_ns"]

    def seconds(self, t_ns: int) -> float:
        """A trace time in ns -> the fake clock's seconds."""
        return (t_ns - self.t0_ns) / 1e9

    def phase_s(self, name: str) -> tuple[float, float]:
        start, end = self.phases[name]
        return self.seconds(start), self.seconds(end)

    def row_at_ns(self, t_ns: int) -> dict[str, int]:
        """The last row recorded at or before t_ns (the first row before the trace starts)."""
        return self.rows[max(bisect_right(self.times, t_ns) - 1, 0)]

    def row_at(self, seconds: float) -> dict[str, int]:
        return self.row_at_ns(self.t0_ns + round(seconds * 1e9))


@cache
def _load_trace(path: Path) -> Trace:
    data = json.loads(path.read_text())
    phases = {p["name"]: (p["start_ns"], p["end_ns"]) for p in data["phases"]}
    rows = sorted(data["rows"], key=lambda row: row["t_ns"])
    return Trace(data["device"], phases, rows, [row["t_ns"] for row in rows])


# --- devices ---------------------------------------------------------------------------------


@dataclass
class FakeGpu:
    trace: Trace
    uuid: str | None = None  # default: the traced GPU's own UUID
    mig: bool = False
    energy_offset_mJ: int = 0  # set negative to play a driver reload
    no_permission: bool = False  # this process may not read it (cgroups)
    lost_at: float | None = None  # fell off the bus at this time (s)
    processes: list[int] = field(default_factory=list)  # pids computing on it

    def __post_init__(self) -> None:
        self.uuid = self.uuid or self.trace.device["uuid"]


@dataclass(frozen=True)
class FakeHandle:
    """Stands for nvidia-ml-py's c_nvmlDevice_t pointer."""

    index: int


def _error(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)  # maps to the real subclass, e.g. NVMLError_NotSupported


@dataclass
class FakeNvml:
    """Use where the code takes `nvml=`: `FakeNvml([FakeGpu(Trace.load(H200_TRACE))], clock)`.

    init_error: an NVMLError subclass that nvmlInit raises (no driver, no library).
    unsupported: names of functions that raise NVMLError_NotSupported on every call.
    driver: the driver version played (default: the trace's); see DRIVER_SINCE.
    call_s: how long each call takes on a FakeClock (the clock moves during a sample).
    """

    gpus: list[FakeGpu]
    clock: Any = field(default_factory=FakeClock)
    init_error: type[pynvml.NVMLError] | None = None
    unsupported: set[str] = field(default_factory=set)
    driver: str | None = None
    call_s: float = 0.0
    init_count: int = 0
    calls: int = 0
    called: list[str] = field(default_factory=list)  # every call by name, in order
    _now: float = 0.0  # when the current call reads its row

    def __getattr__(self, name: str) -> Any:
        # Constants, structures and error classes are the real ones.
        if name.startswith(("NVML_", "NVMLError", "nvmlClocks", "c_nvml", "nvmlTemperature_v")):
            return getattr(pynvml, name)
        raise AttributeError(f"fake pynvml has no {name}")

    # --- library ---------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error()
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._check("nvmlShutdown")
        self.init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._check("nvmlSystemGetNVMLVersion")
        return self.gpus[0].trace.device["nvml_version"]

    # --- devices ---------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise _error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._reachable(self.gpus[index])
        return FakeHandle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> FakeHandle:
        self._check("nvmlDeviceGetHandleByUUID")
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        for index, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:  # NVML wants the whole UUID, no prefix
                self._reachable(gpu)
                return FakeHandle(index)
        raise _error(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: FakeHandle) -> int:
        self._gpu(handle, "nvmlDeviceGetIndex")
        return handle.index

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:
        return self._device(handle, "nvmlDeviceGetName")["name"]

    def nvmlDeviceGetMigMode(self, handle: FakeHandle) -> list[int]:
        mode = int(self._gpu(handle, "nvmlDeviceGetMigMode").mig)
        return [mode, mode]  # [current, pending]

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        return self._device(handle, "nvmlDeviceGetEnforcedPowerLimit")["power_limit_mW"]

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeHandle) -> int:
        return self._device(handle, "nvmlDeviceGetPowerManagementLimit")["power_limit_mW"]

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeHandle) -> tuple[int, int]:
        major, minor = self._device(handle, "nvmlDeviceGetCudaComputeCapability")[
            "cuda_capability"]
        return (major, minor)

    def nvmlDeviceGetArchitecture(self, handle: FakeHandle) -> int:
        return self._device(handle, "nvmlDeviceGetArchitecture")["architecture"]

    def nvmlDeviceGetMaxClockInfo(self, handle: FakeHandle, clock_type: int) -> int:
        self._gpu(handle, "nvmlDeviceGetMaxClockInfo")
        raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)  # not in the trace: never invented

    def nvmlDeviceGetPersistenceMode(self, handle: FakeHandle) -> int:
        self._gpu(handle, "nvmlDeviceGetPersistenceMode")
        raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)  # not in the trace: never invented

    # --- readings that change with time ------------------------------------------------------

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEnergyConsumption")
        return self._row(handle)["energy_mJ"] + gpu.energy_offset_mJ

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        self._gpu(handle, "nvmlDeviceGetPowerUsage")
        return self._row(handle)["power_usage_mW"]

    def nvmlDeviceGetFieldValues(self, handle: FakeHandle, field_ids: list) -> Any:
        self._gpu(handle, "nvmlDeviceGetFieldValues")
        row = self._row(handle)
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for value, field_id in zip(values, field_ids, strict=True):
            value.fieldId, value.scopeId = (field_id if isinstance(field_id, tuple)
                                            else (field_id, 0))
            value.timestamp = row["t_ns"] // 1000  # microseconds, as NVML stamps them
            self._fill(value, row)
        return values

    @staticmethod
    def _fill(value: Any, row: dict[str, int]) -> None:
        """One field's value; a field the trace lacks fails in nvmlReturn, like NVML."""
        power_fields = {pynvml.NVML_FI_DEV_POWER_INSTANT: "power_instant_mW",
                        pynvml.NVML_FI_DEV_POWER_AVERAGE: "power_average_mW"}
        if value.fieldId in power_fields and value.scopeId == pynvml.NVML_POWER_SCOPE_GPU:
            value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            value.value.uiVal = row[power_fields[value.fieldId]]
            value.nvmlReturn = pynvml.NVML_SUCCESS
        elif value.fieldId == pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION:
            value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
            value.value.ullVal = row["energy_mJ"]
            value.nvmlReturn = pynvml.NVML_SUCCESS
        else:
            value.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> Any:
        self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        row = self._row(handle)
        return pynvml.c_nvmlUtilization_t(gpu=row["util_gpu_pct"], memory=row["util_mem_pct"])

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle, version: int | None = None) -> Any:
        device = self._device(handle, "nvmlDeviceGetMemoryInfo")
        total, used = device["memory_total_B"], self._row(handle)["mem_used_B"]
        if version:
            return pynvml.c_nvmlMemory_v2_t(version=version, total=total, used=used,
                                            free=total - used, reserved=0)
        return pynvml.c_nvmlMemory_t(total=total, free=total - used, used=used)

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, clock_type: int) -> int:
        self._gpu(handle, "nvmlDeviceGetClockInfo")
        columns = {pynvml.NVML_CLOCK_SM: "sm_clock_MHz", pynvml.NVML_CLOCK_MEM: "mem_clock_MHz"}
        if clock_type not in columns:
            raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self._row(handle)[columns[clock_type]]

    def nvmlDeviceGetTemperatureV(self, handle: FakeHandle, sensor: int,
                                  version: int = pynvml.nvmlTemperature_v1) -> int:
        self._gpu(handle, "nvmlDeviceGetTemperatureV")
        if version != pynvml.nvmlTemperature_v1:
            raise _error(pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        return self._temperature(handle, sensor)

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        self._gpu(handle, "nvmlDeviceGetTemperature")
        return self._temperature(handle, sensor)

    def _temperature(self, handle: FakeHandle, sensor: int) -> int:
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self._row(handle)["temp_C"]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeHandle) -> int:
        self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons")
        return self._row(handle)["clock_event_reasons"]

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: FakeHandle) -> int:
        self._gpu(handle, "nvmlDeviceGetCurrentClocksThrottleReasons")
        return self._row(handle)["clock_event_reasons"]

    # --- processes ---------------------------------------------------------------------------

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: FakeHandle) -> list[Any]:
        gpu = self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses_v2")
        return [_process(pid) for pid in gpu.processes]

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: FakeHandle) -> list[Any]:
        gpu = self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses_v3")
        return [_process(pid) for pid in gpu.processes]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[Any]:
        """As nvidia-ml-py's: _v3, and NVMLLibraryMismatchError where the driver lacks it."""
        try:
            return self.nvmlDeviceGetComputeRunningProcesses_v3(handle)
        except pynvml.NVMLError_FunctionNotFound:
            raise pynvml.NVMLLibraryMismatchError(
                "Unversioned function called and the pyNVML version does not match the NVML "
                "lib version") from None

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def driver_version(self) -> str:
        return self.driver or self.gpus[0].trace.device["driver"]

    def _check(self, name: str) -> None:
        """NVML's answers before nvmlInit and for functions this 'driver' lacks; the call then
        reads the trace at this time and takes `call_s`."""
        self.calls += 1
        self.called.append(name)
        if self.init_count <= 0:
            raise _error(pynvml.NVML_ERROR_UNINITIALIZED)
        if int(self.driver_version.split(".")[0]) < DRIVER_SINCE.get(name, 0):
            raise _error(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        if name in self.unsupported:
            raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        self._now = self.clock()
        if self.call_s and hasattr(self.clock, "sleep"):
            self.clock.sleep(self.call_s)

    def _reachable(self, gpu: FakeGpu) -> None:
        """A GPU this process may not read, or one lost by now, answers nothing."""
        if gpu.no_permission:
            raise _error(pynvml.NVML_ERROR_NO_PERMISSION)
        if gpu.lost_at is not None and self._now >= gpu.lost_at:
            raise _error(pynvml.NVML_ERROR_GPU_IS_LOST)

    def _gpu(self, handle: FakeHandle, name: str) -> FakeGpu:
        self._check(name)
        if not isinstance(handle, FakeHandle) or not 0 <= handle.index < len(self.gpus):
            raise _error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._reachable(self.gpus[handle.index])
        return self.gpus[handle.index]

    def _device(self, handle: FakeHandle, name: str) -> dict[str, Any]:
        return self._gpu(handle, name).trace.device

    def _row(self, handle: FakeHandle) -> dict[str, int]:
        return self.gpus[handle.index].trace.row_at(self._now)


def _process(pid: int) -> Any:
    """One process as nvidia-ml-py returns it (its struct as a friendly object)."""
    return pynvml.nvmlStructToFriendlyObject(pynvml.c_nvmlProcessInfo_v2_t(
        pid=pid, usedGpuMemory=1 << 30, gpuInstanceId=NO_INSTANCE,
        computeInstanceId=NO_INSTANCE))


def fake_nvml(*traces: Path, clock: Any = None, **options: Any) -> FakeNvml:
    """A box with one GPU per trace, e.g. fake_nvml(H200_TRACE, H100_TRACE)."""
    return FakeNvml([FakeGpu(Trace.load(path)) for path in traces],
                    clock if clock is not None else FakeClock(), **options)


def fake_box(trace: Path, gpus: int, clock: Any = None, **options: Any) -> FakeNvml:
    """A box of `gpus` GPUs that all replay `trace`, each with a UUID of its own."""
    loaded = Trace.load(trace)
    base = loaded.device["uuid"][:-4]
    return FakeNvml([FakeGpu(loaded, uuid=f"{base}{k:04x}") for k in range(gpus)],
                    clock if clock is not None else FakeClock(), **options)
