"""CPU package energy from a fake powercap tree: windows, wrap-around, the poll that keeps a long
window seeing every wrap, not-readable paths."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.telemetry import rapl
from harness.telemetry.energy import point_energy
from harness.telemetry.monitor import EnergyMonitor
from harness.telemetry.rapl import RaplMonitor

from .fake_pynvml import H200_TRACE, FakeClock, RealtimeClock, fake_nvml

MAX_RANGE_UJ = 262_143_328_850  # a real package's max_energy_range_uj
WRAPPING = (100_000, 950_000, 200_000)  # from 900k in a 1M range: wraps twice, then 300k


@pytest.fixture
def cpu_monitor() -> Iterator[Callable[..., EnergyMonitor]]:
    """Opens monitors of the CPU packages under a root alone, on a clock the test moves (no
    poll comes due), and closes them after the test."""
    opened: list[EnergyMonitor] = []

    def open_monitor(root: Path, clock: FakeClock | None = None) -> EnergyMonitor:
        opened.append(EnergyMonitor.without_gpus("no GPU in this test", rapl_root=root,
                                                 clock=clock or FakeClock()))
        return opened[-1]

    yield open_monitor
    for monitor in opened:
        monitor.close()


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


def test_window_sums_the_packages(tmp_path, powercap, cpu_monitor):
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
    energy = point_energy(window, window, prompt_tokens=100, output_tokens=100)
    assert energy.cpu_energy_j == 200.0 and energy.energy_j == window.gpu_energy_j


def test_counter_wrap_around(tmp_path, cpu_monitor):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 999_000, max_range_uj=1_000_000)
    monitor = cpu_monitor(tmp_path)
    monitor.begin_window("c1")
    set_energy(package, 500)  # wrapped: 1 000 to the top, then 500
    window = monitor.end_window("c1")
    assert window.cpu_energy_j == pytest.approx(1_500 / 1e6)


def test_polling_sees_every_wrap_of_a_long_window(tmp_path, cpu_monitor):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 900_000, max_range_uj=1_000_000)
    monitor = cpu_monitor(tmp_path)
    monitor.begin_window("long")
    for reading in WRAPPING:
        set_energy(package, reading)
        monitor.cpu.poll()
    set_energy(package, 300_000)
    window = monitor.end_window("long")
    # 900k -> 1M -> 100k (+200k), -> 950k (+850k), -> 1M -> 200k (+250k), -> 300k (+100k)
    assert window.cpu_energy_j == pytest.approx(1_400_000 / 1e6)


def test_poll_reads_only_when_the_last_read_is_old(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 1_000)
    clock = FakeClock()
    cpu = RaplMonitor.open(tmp_path, clock)
    set_energy(package, 2_000)
    clock.sleep(5.0)
    cpu.poll(max_age_s=10.0)
    assert cpu.zones[0].last_uj == 1_000  # read 5 s ago: not yet
    clock.sleep(5.0)
    cpu.poll(max_age_s=10.0)
    assert cpu.zones[0].last_uj == 2_000


def wait_for_read(monitor: EnergyMonitor, energy_uj: int, timeout_s: float = 5.0) -> None:
    """Until the monitor's poll has read `energy_uj` from the first zone."""
    deadline = time.monotonic() + timeout_s
    while monitor.cpu.zones[0].last_uj != energy_uj:
        assert time.monotonic() < deadline, f"no poll read {energy_uj} within {timeout_s} s"
        time.sleep(0.002)


def long_window(monitor: EnergyMonitor, package: Path, *, wait_for_polls: bool):
    """A window in which the counter wraps twice; with `wait_for_polls`, each reading stays
    until a poll has read it."""
    monitor.begin_window("long")
    for reading in WRAPPING:
        set_energy(package, reading)
        if wait_for_polls:
            wait_for_read(monitor, reading)
    set_energy(package, 300_000)
    return monitor.end_window("long")


def test_poller_thread_sees_the_wraps_two_reads_miss(tmp_path):
    """Without NVML a small thread polls RAPL while a window is open."""
    package = zone(tmp_path, "intel-rapl:0", "package-0", 900_000, max_range_uj=1_000_000)
    with EnergyMonitor.without_gpus("CPU only", rapl_root=tmp_path,
                                    rapl_poll_s=0.01) as monitor:
        window = long_window(monitor, package, wait_for_polls=True)
        poller = monitor._poller
        assert poller is not None and poller.is_alive()
    assert not poller.is_alive()  # stopped on close
    # 900k -> 1M -> 100k (+200k), -> 950k (+850k), -> 1M -> 200k (+250k), -> 300k (+100k)
    assert window.cpu_energy_j == pytest.approx(1_400_000 / 1e6)

    set_energy(package, 900_000)
    with EnergyMonitor.without_gpus("CPU only", rapl_root=tmp_path,
                                    rapl_poll_s=3600.0) as monitor:  # no poll comes due
        window = long_window(monitor, package, wait_for_polls=False)
    assert window.cpu_energy_j == pytest.approx(400_000 / 1e6)  # 900k -> 1M -> 300k: one wrap


@pytest.mark.skipif(not H200_TRACE.exists(), reason=f"NVML trace not found: {H200_TRACE}")
def test_nvml_sampler_thread_polls_rapl(tmp_path):
    """With NVML the poll rides on the sampler thread: no thread of its own."""
    package = zone(tmp_path, "intel-rapl:0", "package-0", 900_000, max_range_uj=1_000_000)
    clock = RealtimeClock()
    with EnergyMonitor.open("0", 1, sample_hz=100.0, nvml=fake_nvml(H200_TRACE, clock=clock),
                            clock=clock, rapl_root=tmp_path, rapl_poll_s=0.01) as monitor:
        assert monitor._poller is None
        window = long_window(monitor, package, wait_for_polls=True)
    assert window.cpu_energy_j == pytest.approx(1_400_000 / 1e6)
    assert window.gpu_energy_j is not None and len(window.samples) > 0


def test_poller_reads_only_while_a_window_is_open(tmp_path):
    package = zone(tmp_path, "intel-rapl:0", "package-0", 1_000)
    monitor = EnergyMonitor.without_gpus("CPU only", rapl_root=tmp_path, rapl_poll_s=0.01)
    set_energy(package, 2_000)
    time.sleep(0.1)
    assert monitor.cpu.zones[0].last_uj == 1_000  # no window: no poll
    monitor.begin_window("w")
    set_energy(package, 3_000)
    wait_for_read(monitor, 3_000)
    assert monitor.end_window("w").cpu_energy_j == pytest.approx(1_000 / 1e6)  # 2k -> 3k
    monitor.close()
    set_energy(package, 4_000)
    time.sleep(0.05)
    assert monitor.cpu.zones[0].last_uj == 3_000  # closed: no reads
    monitor.close()  # twice is fine


def test_overlapping_windows(tmp_path, cpu_monitor):
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


def test_no_powercap_tree_is_not_measured(tmp_path, cpu_monitor):
    monitor = cpu_monitor(tmp_path / "missing")
    assert not monitor.cpu_measured
    reason = f"RAPL unavailable: no package zones under {tmp_path / 'missing'}"
    assert monitor.cpu_reason == reason
    monitor.begin_window("c1")
    window = monitor.end_window("c1")
    assert window.cpu_energy_j is None and window.cpu.reason == reason
    assert window.cpu_summary().reason == reason


def test_unreadable_counter_is_not_measured(tmp_path, powercap, monkeypatch):
    def denied(path: Path) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rapl, "read_uj", denied)
    cpu = RaplMonitor.open(tmp_path)
    assert not cpu.measured
    assert "root only" in cpu.reason and "intel-rapl:0" in cpu.reason


def test_read_failing_mid_window_gives_the_reason(tmp_path, powercap, cpu_monitor):
    monitor = cpu_monitor(tmp_path)
    monitor.begin_window("c1")
    (powercap["package-1"] / "energy_uj").unlink()
    window = monitor.end_window("c1")
    assert window.cpu_energy_j is None and window.cpu.reason.startswith("RAPL read failed")
    assert not monitor.cpu_measured


def test_this_machine_answers_either_way(cpu_monitor):
    monitor = cpu_monitor(rapl.DEFAULT_ROOT)
    monitor.begin_window("now")
    window = monitor.end_window("now")
    assert (window.cpu_energy_j is not None) == monitor.cpu_measured
    assert monitor.cpu_measured or monitor.cpu_reason.startswith("RAPL")
