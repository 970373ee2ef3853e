"""CPU package energy from a fake powercap tree: windows, wrap-around, not-readable paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.telemetry import rapl
from harness.telemetry.rapl import RaplMonitor

MAX_RANGE_UJ = 262_143_328_850  # a real package's max_energy_range_uj


class Ticks:
    """A clock that moves one second per read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def zone(root: Path, name: str, zone_name: str, energy_uj: int,
         max_range_uj: int = MAX_RANGE_UJ) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "name").write_text(zone_name + "\n")
    (directory / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    (directory / "energy_uj").write_text(f"{energy_uj}\n")
    return directory


def set_energy(directory: Path, energy_uj: int) -> None:
    (directory / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path) -> dict[str, Path]:
    """Two packages as sysfs lays them out, with sub-zones and a psys zone beside them."""
    return {
        "package-0": zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000),
        "core": zone(tmp_path, "intel-rapl:0:0", "core", 500_000),
        "dram": zone(tmp_path, "intel-rapl:0:1", "dram", 700_000),
        "package-1": zone(tmp_path, "intel-rapl:1", "package-1", 2_000_000),
        "psys": zone(tmp_path, "intel-rapl:2", "psys", 9_000_000),
    }


def test_window_sums_the_packages(tmp_path, powercap):
    cpu = RaplMonitor.open(tmp_path, clock=Ticks())
    assert cpu.measured and [z.name for z in cpu.zones] == ["package-0", "package-1"]
    cpu.begin_window("c16")
    set_energy(powercap["package-0"], 61_000_000)  # +60 J
    set_energy(powercap["package-1"], 47_000_000)  # +45 J
    set_energy(powercap["core"], 99_000_000)  # a sub-zone: not added again
    window = cpu.end_window("c16")
    assert window.energy_j_per_zone == {"package-0": 60.0, "package-1": 45.0}
    assert window.energy_j == 105.0
    assert window.duration_s == 1.0 and window.reason is None


def test_counter_wrap_around(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 999_000, max_range_uj=1_000_000)
    with RaplMonitor.open(tmp_path, clock=Ticks()) as cpu:
        cpu.begin_window("c1")
        set_energy(package, 500)  # wrapped: 1 000 to the top, then 500
        window = cpu.end_window("c1")
    assert window.energy_j == pytest.approx(1_500 / 1e6)


def test_polling_sees_every_wrap_of_a_long_window(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 900_000, max_range_uj=1_000_000)
    cpu = RaplMonitor.open(tmp_path, clock=Ticks())
    cpu.begin_window("long")
    for reading in (100_000, 950_000, 200_000):  # wraps twice
        set_energy(package, reading)
        cpu.poll()
    set_energy(package, 300_000)
    window = cpu.end_window("long")
    # 900k -> 1M -> 100k (+200k), -> 950k (+850k), -> 1M -> 200k (+250k), -> 300k (+100k)
    assert window.energy_j == pytest.approx(1_400_000 / 1e6)


def test_overlapping_windows(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    cpu = RaplMonitor.open(tmp_path, clock=Ticks())
    cpu.begin_window("run")
    set_energy(package, 10_000_000)
    cpu.begin_window("c1")
    set_energy(package, 25_000_000)
    assert cpu.end_window("c1").energy_j == 15.0
    assert cpu.end_window("run").energy_j == 25.0
    with pytest.raises(ValueError, match="no open window"):
        cpu.end_window("run")


def test_no_powercap_tree_is_not_measured(tmp_path):
    cpu = RaplMonitor.open(tmp_path / "missing")
    assert not cpu.measured
    assert cpu.reason == f"RAPL unavailable: no package zones under {tmp_path / 'missing'}"
    cpu.begin_window("c1")
    window = cpu.end_window("c1")
    assert window.energy_j is None and window.reason == cpu.reason
    assert window.summary()["reason"] == cpu.reason


def test_unreadable_counter_is_not_measured(tmp_path, powercap, monkeypatch):
    def denied(path: Path) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rapl, "read_uj", denied)
    cpu = RaplMonitor.open(tmp_path)
    assert not cpu.measured
    assert "root only" in cpu.reason and "intel-rapl:0" in cpu.reason


def test_read_failing_mid_window_gives_the_reason(tmp_path, powercap):
    cpu = RaplMonitor.open(tmp_path, clock=Ticks())
    cpu.begin_window("c1")
    (powercap["package-1"] / "energy_uj").unlink()
    window = cpu.end_window("c1")
    assert window.energy_j is None and window.reason.startswith("RAPL read failed")
    assert not cpu.measured


def test_this_machine_answers_either_way():
    cpu = RaplMonitor.open()
    cpu.begin_window("now")
    window = cpu.end_window("now")
    assert (window.energy_j is not None) == cpu.measured
    assert cpu.measured or cpu.reason.startswith("RAPL")
