"""CPU package energy from a fake powercap tree: windows, wrap-around, not-readable paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.telemetry import rapl
from harness.telemetry.energy import energy_metrics
from harness.telemetry.monitor import EnergyMonitor
from harness.telemetry.rapl import RaplMonitor

from .fake_pynvml import H200_TRACE, FakeClock, fake_nvml

MAX_RANGE_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def cpu_monitor(root: Path, clock: FakeClock | None = None) -> EnergyMonitor:
    """A monitor of the CPU packages under `root` alone, on a clock the test moves."""
    return EnergyMonitor.without_gpus("no GPU in this test", clock=clock or FakeClock(),
                                      rapl_root=root)


def zone(root: Path, name: str, zone_name: str, energy_uj: int,
         max_range_uj: int = MAX_RANGE_UJ) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "name").write_text(zone_name + "\n")
    (directory / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    (directory / "energy_uj").write_text(f"{energy_uj}\n")
    return directory


def set_energy(directory: Path, energy_uj: int) -> None:
    """Replace the counter in one step, as sysfs does, so a reading thread never sees it empty."""
    staged = directory / "energy_uj.new"
    staged.write_text(f"{energy_uj}\n")
    os.replace(staged, directory / "energy_uj")


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
    clock = FakeClock()
    monitor = cpu_monitor(tmp_path, clock)
    assert monitor.cpu_measured and [z.name for z in monitor.cpu.zones] == ["package-0",
                                                                           "package-1"]
    monitor.begin_window("c16")
    set_energy(powercap["package-0"], 61_000_000)  # +60 J
    set_energy(powercap["package-1"], 47_000_000)  # +45 J
    set_energy(powercap["core"], 99_000_000)  # a sub-zone: not added again
    clock.sleep(1.0)
    window = monitor.end_window("c16")
    assert window.cpu_energy == {"package-0": 60.0, "package-1": 45.0}
    assert window.cpu_energy_j == 105.0
    assert window.duration_s == 1.0 and window.cpu.reason is None
    assert window.gpu_energy is None and window.gpu.reason == "no GPU in this test"


@pytest.mark.skipif(not H200_TRACE.exists(), reason=f"NVML trace not found: {H200_TRACE}")
def test_one_window_measures_gpus_and_cpus(tmp_path, powercap):
    nvml = fake_nvml(H200_TRACE)
    start, end = nvml.gpus[0].trace.phase_s("full_load")
    nvml.clock.set(start)
    with EnergyMonitor.open("0", 1, sample_hz=None, nvml=nvml, clock=nvml.clock,
                            rapl_root=tmp_path) as monitor:
        monitor.begin_window("c1")
        nvml.clock.set(end)
        set_energy(powercap["package-0"], 201_000_000)  # +200 J
        window = monitor.end_window("c1")
    assert window.duration_s == pytest.approx(5.0, abs=0.01)
    assert window.mean_gpu_power_w == pytest.approx(690, abs=10)
    assert window.cpu_energy == {"package-0": 200.0, "package-1": 0.0}
    row = energy_metrics(window, prompt_tokens=100, output_tokens=100)
    assert row["cpu_energy_j"] == 200.0 and row["energy_j"] == window.gpu_energy_j


def test_counter_wrap_around(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 999_000, max_range_uj=1_000_000)
    with cpu_monitor(tmp_path) as monitor:
        monitor.begin_window("c1")
        set_energy(package, 500)  # wrapped: 1 000 to the top, then 500
        window = monitor.end_window("c1")
    assert window.cpu_energy_j == pytest.approx(1_500 / 1e6)


def test_polling_sees_every_wrap_of_a_long_window(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 900_000, max_range_uj=1_000_000)
    monitor = cpu_monitor(tmp_path)
    monitor.begin_window("long")
    for reading in (100_000, 950_000, 200_000):  # wraps twice
        set_energy(package, reading)
        monitor.cpu.poll()
    set_energy(package, 300_000)
    window = monitor.end_window("long")
    # 900k -> 1M -> 100k (+200k), -> 950k (+850k), -> 1M -> 200k (+250k), -> 300k (+100k)
    assert window.cpu_energy_j == pytest.approx(1_400_000 / 1e6)


def test_overlapping_windows(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    monitor = cpu_monitor(tmp_path)
    monitor.begin_window("run")
    set_energy(package, 10_000_000)
    monitor.begin_window("c1")
    set_energy(package, 25_000_000)
    assert monitor.end_window("c1").cpu_energy_j == 15.0
    assert monitor.end_window("run").cpu_energy_j == 25.0
    with pytest.raises(ValueError, match="no open window"):
        monitor.end_window("run")


def test_no_powercap_tree_is_not_measured(tmp_path):
    monitor = cpu_monitor(tmp_path / "missing")
    assert not monitor.cpu_measured
    reason = f"RAPL unavailable: no package zones under {tmp_path / 'missing'}"
    assert monitor.cpu_reason == reason
    monitor.begin_window("c1")
    window = monitor.end_window("c1")
    assert window.cpu_energy_j is None and window.cpu.reason == reason
    assert window.cpu_summary()["reason"] == reason


def test_unreadable_counter_is_not_measured(tmp_path, powercap, monkeypatch):
    def denied(path: Path) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rapl, "read_uj", denied)
    cpu = RaplMonitor.open(tmp_path)
    assert not cpu.measured
    assert "root only" in cpu.reason and "intel-rapl:0" in cpu.reason


def test_read_failing_mid_window_gives_the_reason(tmp_path, powercap):
    monitor = cpu_monitor(tmp_path)
    monitor.begin_window("c1")
    (powercap["package-1"] / "energy_uj").unlink()
    window = monitor.end_window("c1")
    assert window.cpu_energy_j is None and window.cpu.reason.startswith("RAPL read failed")
    assert not monitor.cpu_measured


def test_this_machine_answers_either_way():
    monitor = EnergyMonitor.without_gpus("CPU only")
    monitor.begin_window("now")
    window = monitor.end_window("now")
    assert (window.cpu_energy_j is not None) == monitor.cpu_measured
    assert monitor.cpu_measured or monitor.cpu_reason.startswith("RAPL")
