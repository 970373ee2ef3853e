"""Which GPUs to measure: exactly those that serve the engine, as whole GPUs matched by UUID.

CUDA_VISIBLE_DEVICES names them by index or UUID (prefix); NVML lists them by its own index.
A MIG slice, an unknown entry or too few GPUs is refused with a TelemetryError saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any


class TelemetryError(Exception):
    """GPUs that cannot be measured as asked (MIG, unknown index or UUID): the message says why."""


@dataclass(frozen=True)
class Gpu:
    index: int  # NVML's index
    uuid: str
    handle: Any


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


def entry_uuid(entry: str, uuids: list[str]) -> str:
    """One CUDA_VISIBLE_DEVICES entry -> the UUID of the GPU it names.

    An index is NVML's index, which is CUDA's when CUDA_DEVICE_ORDER=PCI_BUS_ID; with CUDA's
    default order (fastest first) the two can differ on a box of mixed GPUs: UUIDs never do.
    """
    if entry.startswith("MIG-"):
        raise TelemetryError(f"CUDA_VISIBLE_DEVICES names a MIG slice ({entry}): NVML reports no "
                             "power or energy per slice; measure whole GPUs with MIG disabled")
    if entry.isdigit():
        if int(entry) >= len(uuids):
            raise TelemetryError(f"CUDA_VISIBLE_DEVICES names GPU {entry}, but NVML sees "
                                 f"{len(uuids)} GPU(s)")
        return uuids[int(entry)]
    if entry.startswith("GPU-"):
        matches = [uuid for uuid in uuids if uuid.startswith(entry)]  # CUDA accepts a prefix
        if len(matches) != 1:
            found = "no GPU" if not matches else f"{len(matches)} GPUs"
            raise TelemetryError(f"CUDA_VISIBLE_DEVICES entry {entry} matches {found}")
        return matches[0]
    raise TelemetryError(f"cannot read CUDA_VISIBLE_DEVICES entry {entry!r}: "
                         "expected a GPU index or a GPU-... UUID")


def select_gpus(nvml: ModuleType, visible: str | None, count: int | None) -> list[Gpu]:
    """The GPUs an engine sees with CUDA_VISIBLE_DEVICES=`visible` and uses `count` of
    (tensor parallel takes the first N), matched to NVML handles by UUID."""
    uuids = [as_text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i)))
             for i in range(nvml.nvmlDeviceGetCount())]
    entries = parse_visible(visible)
    chosen = list(uuids) if entries is None else [entry_uuid(e, uuids) for e in entries]
    if len(set(chosen)) != len(chosen):
        raise TelemetryError(f"CUDA_VISIBLE_DEVICES={visible!r} names a GPU twice")
    if count is not None:
        if count > len(chosen):
            raise TelemetryError(f"{count} GPU(s) asked for, {len(chosen)} visible "
                                 f"(CUDA_VISIBLE_DEVICES={visible!r})")
        chosen = chosen[:count]
    return [_whole_gpu(nvml, uuids.index(uuid), uuid) for uuid in chosen]


def _whole_gpu(nvml: ModuleType, index: int, uuid: str) -> Gpu:
    handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
    try:
        mig_mode = nvml.nvmlDeviceGetMigMode(handle)[0]
    except nvml.NVMLError:  # NotSupported: a GPU without MIG
        mig_mode = 0
    if mig_mode == nvml.NVML_DEVICE_MIG_ENABLE:
        raise TelemetryError(f"GPU {index} ({uuid}) has MIG enabled: NVML reports no power or "
                             "energy per slice; disable MIG or measure another GPU")
    return Gpu(index, uuid, handle)


def as_text(value: str | bytes) -> str:
    """An NVML string: bytes from older nvidia-ml-py releases, str from newer ones."""
    return value.decode() if isinstance(value, bytes) else str(value)
