"""CPU package energy through Linux RAPL (the powercap sysfs tree), where it can be read.

    cpu = RaplMonitor.open()
    begin = cpu.read(); ...; energy = cpu.energy_between(begin, cpu.read())   # J per zone or None

Each package zone /sys/class/powercap/intel-rapl:N holds `energy_uj`, a microjoule counter that
wraps to 0 after `max_energy_range_uj` (~262 kJ on many parts: about 20 minutes at 200 W). Every
read adds the step since the previous read, allowing one wrap, so a window is exact as long as
reads come less than one wrap period apart: the EnergyMonitor (monitor.py) calls `poll()` while
a window is open. Reads hold a lock, so that poll and window reads may come from two threads.

energy_uj is readable by root only since Linux 5.10, and VMs and containers often have no
powercap tree at all: then the monitor says "not measured" and why, and never raises.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.telemetry.measurement import DeviceEnergy

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
    """The CPU package counters, unwrapped; `measured` False with a `reason` where unreadable."""

    def __init__(self, zones: list[RaplZone], reason: str | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.zones = zones
        self.reason = reason
        self.clock = clock
        self.last_read_s = clock()  # RaplZone.open read every counter
        self._lock = threading.RLock()

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

    def read(self) -> dict[str, int]:
        """Unwrapped totals in uJ per zone ({} when not measured); a failed read marks the
        monitor not measured from then on."""
        with self._lock:
            if self.reason is not None:
                return {}
            try:
                totals = {zone.name: zone.read() for zone in self.zones}
            except (OSError, ValueError) as err:
                self.reason = f"RAPL read failed: {err}"
                return {}
            self.last_read_s = self.clock()
            return totals

    def poll(self, max_age_s: float = 0.0) -> None:
        """Read every counter, so that a long window sees every wrap, unless the last read
        came less than `max_age_s` ago."""
        with self._lock:
            if self.clock() - self.last_read_s >= max_age_s:
                self.read()

    def energy_between(self, begin: dict[str, int], end: dict[str, int]) -> DeviceEnergy:
        """J per zone between two reads, or None and the reason."""
        if self.reason is not None:
            return DeviceEnergy(None, self.reason)
        return DeviceEnergy({zone: (end[zone] - begin[zone]) / 1e6 for zone in begin})
