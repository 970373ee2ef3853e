"""Which GPUs to measure: exactly those that serve the engine, as whole GPUs matched by UUID.

One place decides a cell's GPUs (`visible_devices`): engine.gpus, else the CUDA_VISIBLE_DEVICES
of engine.env, else the harness's own. CUDA_VISIBLE_DEVICES names them by index or UUID
(prefix); an index is NVML's, which is CUDA's in PCI_BUS_ID order; the server is then handed
the selected GPUs by UUID (harness/engines/process.py), so the two orders can never disagree.

Only the GPUs a cell uses are opened: a GPU this process may not read (NO_PERMISSION under
cgroups) or one that fell off the bus (GPU_IS_LOST) elsewhere on the box changes nothing.
A MIG slice, an unknown entry or too few GPUs is refused with a TelemetryError saying why; a
selected GPU that is lost or unreadable is a GpuUnavailable: that cell's energy is not measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

PCI_ORDER = "PCI_BUS_ID"
UUID_CHARS = len("GPU-244893c0-639e-beee-6e52-ca33c7f9a59b")


class TelemetryError(Exception):
    """GPUs that cannot be measured as asked (MIG, unknown index or UUID): the message says why."""


class GpuUnavailable(Exception):
    """A GPU the cell would use is lost or may not be read: the message says which and why."""


@dataclass(frozen=True)
class Gpu:
    index: int  # NVML's index
    uuid: str
    handle: Any


@dataclass(frozen=True)
class VisibleDevices:
    """The cell's CUDA_VISIBLE_DEVICES (None: unset, all GPUs) and CUDA_DEVICE_ORDER."""

    visible: str | None
    order: str | None = None


def visible_devices(gpus: str | None, env: Mapping[str, str],
                    environ: Mapping[str, str]) -> VisibleDevices:
    """The GPUs a cell's server is given: `gpus` (engine.gpus), else the CUDA_VISIBLE_DEVICES
    of `env` (engine.env, which the server gets), else of `environ` (the harness's own)."""
    if gpus is not None:
        visible = gpus
    elif "CUDA_VISIBLE_DEVICES" in env:
        visible = env["CUDA_VISIBLE_DEVICES"]
    else:
        visible = environ.get("CUDA_VISIBLE_DEVICES")
    return VisibleDevices(visible, env.get("CUDA_DEVICE_ORDER", environ.get("CUDA_DEVICE_ORDER")))


def parse_visible(visible: str | None) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES -> its entries; None when unset (all GPUs), [] for none.

    As CUDA does, a negative index hides itself and every entry after it ("-1" = no GPU).
    """
    if visible is None:
        return None
    entries: list[str] = []
    for entry in (part.strip() for part in visible.split(",")):
        if not entry:
            continue
        if entry.lstrip("-").isdigit() and int(entry) < 0:
            break
        entries.append(entry)
    return entries


def select_gpus(nvml: ModuleType, visible: str | None, count: int | None,
                order: str | None = None) -> list[Gpu]:
    """The GPUs an engine sees with CUDA_VISIBLE_DEVICES=`visible` and uses `count` of (its
    parallel ranks take the first N), matched to NVML handles by UUID."""
    entries = parse_visible(visible)
    if entries is None:
        chosen = _readable(nvml, count)
    else:
        if order not in (None, PCI_ORDER) and any(entry.isdigit() for entry in entries):
            raise TelemetryError(f"CUDA_DEVICE_ORDER={order} numbers GPUs by CUDA's own ranking, "
                                 "which NVML cannot see: name the GPUs by UUID, or set "
                                 f"CUDA_DEVICE_ORDER={PCI_ORDER}")
        total = nvml.nvmlDeviceGetCount()
        chosen = [_entry_gpu(nvml, entry, total) for entry in entries]
        if len({uuid for _, uuid in chosen}) != len(chosen):
            raise TelemetryError(f"CUDA_VISIBLE_DEVICES={visible!r} names a GPU twice")
    if count is not None:
        if count > len(chosen):
            raise TelemetryError(f"{count} GPU(s) asked for, {len(chosen)} visible "
                                 f"(CUDA_VISIBLE_DEVICES={visible!r})")
        chosen = chosen[:count]
    return [_whole_gpu(nvml, index, uuid) for index, uuid in chosen]


def _readable(nvml: ModuleType, count: int | None) -> list[tuple[int, str]]:
    """The first `count` GPUs (all with None) in NVML's order that this process may read: CUDA
    does not see the others either. One of them that is lost is GpuUnavailable."""
    found: list[tuple[int, str]] = []
    for index in range(nvml.nvmlDeviceGetCount()):
        if count is not None and len(found) == count:
            break
        try:
            found.append((index, _uuid_at(nvml, index)))
        except nvml.NVMLError as err:
            if err.value != nvml.NVML_ERROR_NO_PERMISSION:
                raise GpuUnavailable(unavailable(f"GPU {index}", err, nvml)) from None
    return found


def _entry_gpu(nvml: ModuleType, entry: str, total: int) -> tuple[int, str]:
    """One CUDA_VISIBLE_DEVICES entry -> (NVML index, UUID) of the GPU it names."""
    if entry.startswith("MIG-"):
        raise TelemetryError(f"CUDA_VISIBLE_DEVICES names a MIG slice ({entry}): NVML reports no "
                             "power or energy per slice; measure whole GPUs with MIG disabled")
    if entry.isdigit():
        index = int(entry)
        if index >= total:
            raise TelemetryError(f"CUDA_VISIBLE_DEVICES names GPU {entry}, but NVML sees "
                                 f"{total} GPU(s)")
        try:
            return index, _uuid_at(nvml, index)
        except nvml.NVMLError as err:
            raise GpuUnavailable(unavailable(f"GPU {index}", err, nvml)) from None
    if entry.startswith("GPU-"):
        return _by_uuid_prefix(nvml, entry, total)
    raise TelemetryError(f"cannot read CUDA_VISIBLE_DEVICES entry {entry!r}: "
                         "expected a GPU index or a GPU-... UUID")


def _by_uuid_prefix(nvml: ModuleType, entry: str, total: int) -> tuple[int, str]:
    """The one readable GPU whose UUID starts with `entry` (CUDA accepts a prefix); a whole
    UUID is looked up alone."""
    if len(entry) == UUID_CHARS:
        try:
            return nvml.nvmlDeviceGetIndex(nvml.nvmlDeviceGetHandleByUUID(entry)), entry
        except nvml.NVMLError as err:
            if err.value != nvml.NVML_ERROR_NOT_FOUND:
                raise GpuUnavailable(unavailable(entry, err, nvml)) from None
    matches = []
    for index in range(total):
        try:
            uuid = _uuid_at(nvml, index)
        except nvml.NVMLError:  # not readable here: CUDA cannot use it either
            continue
        if uuid.startswith(entry):
            matches.append((index, uuid))
    if len(matches) != 1:
        found = "no GPU" if not matches else f"{len(matches)} GPUs"
        raise TelemetryError(f"CUDA_VISIBLE_DEVICES entry {entry} matches {found}")
    return matches[0]


def _uuid_at(nvml: ModuleType, index: int) -> str:
    return as_text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(index)))


def _whole_gpu(nvml: ModuleType, index: int, uuid: str) -> Gpu:
    try:
        handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
    except nvml.NVMLError as err:
        raise GpuUnavailable(unavailable(uuid, err, nvml)) from None
    try:
        mig_mode = nvml.nvmlDeviceGetMigMode(handle)[0]
    except nvml.NVMLError:  # NotSupported: a GPU without MIG
        mig_mode = 0
    if mig_mode == nvml.NVML_DEVICE_MIG_ENABLE:
        raise TelemetryError(f"GPU {index} ({uuid}) has MIG enabled: NVML reports no power or "
                             "energy per slice; disable MIG or measure another GPU")
    return Gpu(index, uuid, handle)


def unavailable(gpu: str, err: Exception, nvml: ModuleType) -> str:
    """Why `gpu` (a UUID, or "GPU <index>") gives nothing: "<gpu> lost: GPU is lost" when it
    fell off the bus, "<gpu> unreadable: <error>" otherwise."""
    lost = getattr(err, "value", None) == nvml.NVML_ERROR_GPU_IS_LOST
    return f"{gpu} {'lost' if lost else 'unreadable'}: {err}"


def as_text(value: str | bytes) -> str:
    """An NVML string: bytes from older nvidia-ml-py releases, str from newer ones."""
    return value.decode() if isinstance(value, bytes) else str(value)
