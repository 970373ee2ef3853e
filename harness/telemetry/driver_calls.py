"""NVML calls whose symbol depends on the driver, with the older call to fall back on.

nvidia-ml-py binds every function it knows, but the driver's libnvidia-ml may lack the newer
symbol: the call then raises NVMLError_FunctionNotFound, on every call. `DriverCall` tries its
names in order and moves to the next at the first FunctionNotFound, for good (the driver does
not change under a running process), and says which name served (`source`).
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

# Newest first. The binding maps a name to its C symbol; the comments say which drivers have it.
TEMPERATURE = ("nvmlDeviceGetTemperatureV",  # R580 and later
               "nvmlDeviceGetTemperature")  # deprecated, goes away in CUDA 14
CLOCK_EVENT_REASONS = ("nvmlDeviceGetCurrentClocksEventReasons",  # R535 and later
                       "nvmlDeviceGetCurrentClocksThrottleReasons")  # deprecated since R535
# _v2 first: nvidia-ml-py reads both into the v2 struct, but _v3 of R535.43 to R535.86 writes a
# larger v3 struct (wrong pids past the first process), and R535.98 dropped _v3 again.
COMPUTE_PROCESSES = ("nvmlDeviceGetComputeRunningProcesses_v2",
                     "nvmlDeviceGetComputeRunningProcesses_v3")


class DriverCall:
    """One reading by the first of `names` that the binding and the driver have."""

    def __init__(self, nvml: ModuleType, names: tuple[str, ...]):
        self.nvml = nvml
        self._names = [name for name in names if hasattr(nvml, name)]  # an older binding
        self._lock = threading.Lock()
        self.source: str | None = None  # the name that last served a reading

    def __call__(self, *args: Any) -> Any:
        """The reading; NVMLError as NVML raises it, FunctionNotFound once no name is left."""
        while True:
            with self._lock:
                if not self._names:
                    raise self.nvml.NVMLError(self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND)
                name = self._names[0]
            try:
                value = getattr(self.nvml, name)(*args)
            except self.nvml.NVMLError as err:
                if err.value != self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND:
                    raise
                self._drop(name)
                continue
            self.source = name
            return value

    def _drop(self, name: str) -> None:
        with self._lock:
            if self._names and self._names[0] == name:  # (another thread may have dropped it)
                self._names.pop(0)
