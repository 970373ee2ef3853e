"""CPU package energy through Linux RAPL (the powercap sysfs tree), where it can be read.

    cpu = RaplMonitor.open()
    cpu.begin_window("c16"); ...; window = cpu.end_window("c16")   # window.energy_j or None

Each package zone /sys/class/powercap/intel-rapl:N holds `energy_uj`, a microjoule counter that
wraps to 0 after `max_energy_range_uj` (~262 kJ on many parts: about 20 minutes at 200 W). Every
read adds the step since the previous read, allowing one wrap, so a window is exact as long as
reads come less than one wrap period apart; call `poll()` now and then in longer windows.

energy_uj is readable by root only since Linux 5.10, and VMs and containers often have no
powercap tree at all: then the monitor says "not measured" and why, and never raises.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("/sys/class/powercap")
PACKAGE_ZONE = re.compile(r"intel-rapl:(\d+)$")  # top level; intel-rapl:N:M are sub-zones


def read_uj(path: Path) -> int:
    return int(path.read_text().strip())


@dataclass
class RaplZone:
    """One package counter, unwrapped: `total_uj` only grows."""

    name: str
    directory: Path
    max_range_uj: int
    last_uj: int
    total_uj: int = 0

    @classmethod
    def open(cls, directory: Path) -> RaplZone:
        return cls(name=(directory / "name").read_text().strip(), directory=directory,
                   max_range_uj=read_uj(directory / "max_energy_range_uj"),
                   last_uj=read_uj(directory / "energy_uj"))

    def read(self) -> int:
        raw = read_uj(self.directory / "energy_uj")
        step = raw - self.last_uj
        if step < 0:  # wrapped past max_energy_range_uj back to 0
            step += self.max_range_uj
        self.total_uj += step
        self.last_uj = raw
        return self.total_uj


@dataclass(eq=False)
class CpuEnergyWindow:
    """One window. `energy_j` is None when CPU energy was not measured; `reason` says why."""

    name: str
    start_s: float
    end_s: float
    energy_j: float | None  # summed over the packages
    energy_j_per_zone: dict[str, float] | None  # zone name (package-0, ...) -> J
    reason: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def measured(self) -> bool:
        return self.energy_j is not None

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "duration_s": self.duration_s, "energy_j": self.energy_j,
                "energy_j_per_zone": self.energy_j_per_zone, "reason": self.reason}


def package_zones(root: Path) -> list[RaplZone]:
    """The package zones under `root` (not psys, not the core/uncore/dram sub-zones)."""
    zones = []
    for directory in sorted(root.glob("intel-rapl:*"), key=_zone_number):
        if PACKAGE_ZONE.search(directory.name) is None:
            continue
        zone = RaplZone.open(directory)
        if zone.name.startswith("package"):
            zones.append(zone)
    return zones


def _zone_number(directory: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in directory.name.split(":")[1:] if part.isdigit())


class RaplMonitor:
    """Named windows of CPU package energy; `measured` False with a `reason` where unreadable."""

    def __init__(self, zones: list[RaplZone], reason: str | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.zones = zones
        self.reason = reason
        self.clock = clock
        self._open: dict[str, tuple[float, dict[str, int]]] = {}

    @classmethod
    def open(cls, root: Path | str = DEFAULT_ROOT,
             clock: Callable[[], float] = time.perf_counter) -> RaplMonitor:
        root = Path(root)
        try:
            zones = package_zones(root)
        except PermissionError as err:
            return cls([], f"RAPL not readable: {err.filename} (root only since Linux 5.10)",
                       clock)
        except (OSError, ValueError) as err:
            return cls([], f"RAPL not readable: {err}", clock)
        if not zones:
            return cls([], f"RAPL unavailable: no package zones under {root}", clock)
        return cls(zones, None, clock)

    @property
    def measured(self) -> bool:
        return self.reason is None

    def __repr__(self) -> str:
        if self.reason:
            return f"RaplMonitor(reason={self.reason!r})"
        return f"RaplMonitor(zones={[zone.name for zone in self.zones]})"

    def poll(self) -> None:
        """Read every counter once, so that a long window sees every wrap."""
        self._totals()

    def begin_window(self, name: str) -> None:
        if name in self._open:
            raise ValueError(f"window {name!r} is already open")
        self._open[name] = (self.clock(), self._totals())

    def end_window(self, name: str) -> CpuEnergyWindow:
        if name not in self._open:
            raise ValueError(f"no open window named {name!r}")
        start, begin = self._open.pop(name)
        end_totals = self._totals()
        end = self.clock()
        if self.reason is not None:
            return CpuEnergyWindow(name, start, end, None, None, self.reason)
        per_zone = {zone: (end_totals[zone] - begin[zone]) / 1e6 for zone in begin}
        return CpuEnergyWindow(name, start, end, sum(per_zone.values()), per_zone)

    def _totals(self) -> dict[str, int]:
        """Unwrapped totals in uJ; a failed read marks the monitor not measured from then on."""
        if self.reason is not None:
            return {}
        try:
            return {zone.name: zone.read() for zone in self.zones}
        except (OSError, ValueError) as err:
            self.reason = f"RAPL read failed: {err}"
            return {}

    def close(self) -> None:
        self._open.clear()

    def __enter__(self) -> RaplMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
