"""GPU telemetry against an NVML as strict as the real one (fake pynvml): a clock that moves
while GPUs are read, calls an older driver lacks, GPUs this process may not read or that fall
off the bus, and the warnings and records that say so."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pynvml
import pytest

from harness.contract.results import WindowSummary
from harness.metrics.steady import counter_energy_j
from harness.run.runner import cell_telemetry
from harness.telemetry import nvml as nvml_module
from harness.telemetry.energy import point_energy
from harness.telemetry.monitor import EnergyMonitor

from .fake_pynvml import (
    H100_TRACE,
    H200_TRACE,
    FakeClock,
    FakeNvml,
    RealtimeClock,
    Trace,
    fake_box,
    fake_nvml,
)
from .test_nvml import NO_RAPL, open_monitor

H200_UUID = "GPU-244893c0-639e-beee-6e52-ca33c7f9a59b"


def replay(monitor: EnergyMonitor, clock: FakeClock, name: str, start: float, end: float,
           hz: float = 10.0):
    """One window over [start, end], sampled at `hz`; a clock moved by the calls themselves is
    never set back."""
    clock.set(start)
    monitor.begin_window(name)
    for tick in range(1, int(np.ceil((end - start) * hz))):
        clock.set(max(clock(), start + tick / hz))
        monitor.sample_now()
    clock.set(max(clock(), end))
    return monitor.end_window(name)


# --- the fake raises where NVML raises ---------------------------------------------------------


def test_the_fake_plays_an_older_driver_and_unreadable_gpus():
    nvml = fake_box(H200_TRACE, 3, driver="530.30.02")
    nvml.gpus[1].no_permission = True
    nvml.gpus[2].lost_at = 5.0
    nvml.gpus[0].processes = [4242]
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlSystemGetDriverVersion() == "530.30.02"
    with pytest.raises(pynvml.NVMLError_FunctionNotFound):
        nvml.nvmlDeviceGetTemperatureV(handle, pynvml.NVML_TEMPERATURE_GPU)
    with pytest.raises(pynvml.NVMLError_FunctionNotFound):
        nvml.nvmlDeviceGetCurrentClocksEventReasons(handle)
    assert nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle) >= 0
    assert nvml.nvmlDeviceGetCount() == 3  # NVML counts the GPUs it may not read
    with pytest.raises(pynvml.NVMLError_NoPermission):
        nvml.nvmlDeviceGetHandleByIndex(1)
    lost = nvml.nvmlDeviceGetHandleByIndex(2)
    nvml.clock.set(5.0)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        nvml.nvmlDeviceGetTotalEnergyConsumption(lost)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        nvml.nvmlDeviceGetHandleByIndex(2)
    (process,) = nvml.nvmlDeviceGetComputeRunningProcesses_v2(handle)
    assert process.pid == 4242
    assert nvml.nvmlDeviceGetComputeRunningProcesses_v3(handle)[0].pid == 4242
    old = FakeNvml(nvml.gpus, driver="470.82.01")
    old.nvmlInit()
    with pytest.raises(pynvml.NVMLLibraryMismatchError):
        old.nvmlDeviceGetComputeRunningProcesses(handle)


def test_the_fake_clock_moves_while_gpus_are_read():
    nvml = fake_nvml(H200_TRACE, H100_TRACE, call_s=0.004)
    with open_monitor(nvml, visible=None, count=2) as monitor:
        nvml.clock.set(8.0)
        monitor.sample_now()
        rows = monitor._nvml.samples_between(0.0, 20.0)
    assert rows["t_s"].is_unique and rows["t_s"].iloc[1] - rows["t_s"].iloc[0] > 0.02
    for _, row in rows.iterrows():  # each row's counter is the one read at its own time
        trace = next(gpu.trace for gpu in nvml.gpus if gpu.uuid == row["uuid"])
        assert row["energy_mj"] == trace.row_at(row["t_s"])["energy_mJ"]


# --- readings that depend on the driver fall back, and say which call served ----------------


@pytest.mark.parametrize(("driver", "temperature", "reasons"), [
    ("580.159.04", "nvmlDeviceGetTemperatureV", "nvmlDeviceGetCurrentClocksEventReasons"),
    ("535.104.05", "nvmlDeviceGetTemperature", "nvmlDeviceGetCurrentClocksEventReasons"),
    ("530.30.02", "nvmlDeviceGetTemperature", "nvmlDeviceGetCurrentClocksThrottleReasons"),
])
def test_an_older_driver_falls_back_at_the_first_function_not_found(driver, temperature,
                                                                   reasons):
    nvml = fake_nvml(H200_TRACE, driver=driver)
    with open_monitor(nvml) as monitor:
        window = replay(monitor, nvml.clock, "c1", 8.0, 10.0)
        cell = cell_telemetry(monitor)
    assert window.samples["temp_c"].notna().all()
    assert window.samples["clock_event_reasons"].notna().all()
    expected = {"temperature": temperature, "clock_event_reasons": reasons}
    assert window.sources == expected and window.gpu_summary().sources == expected
    assert cell.sources == expected
    # the missing symbol is tried once, not on every sample
    assert nvml.called.count("nvmlDeviceGetTemperatureV") == (temperature.endswith("V") and
                                                             len(window.samples) or 1)


def test_stored_windows_without_sources_still_read():
    stored = {"name": "c1", "duration_s": 1.0, "energy_j": 2.0, "energy_j_per_gpu": None,
              "mean_power_w": 2.0, "short_window": False, "reason": None, "notes": [],
              "samples": 10}
    assert WindowSummary.model_validate(stored).sources == {}


# --- one unreadable GPU does not turn energy off everywhere ---------------------------------


def test_gpus_this_process_may_not_read_are_left_alone():
    nvml = fake_box(H200_TRACE, 4)
    nvml.gpus[0].no_permission = True  # another tenant's, under cgroups
    nvml.gpus[3].lost_at = 0.0  # fell off the bus, not ours either
    with open_monitor(nvml, visible=None, count=2) as monitor:
        assert [gpu.index for gpu in monitor.gpus] == [1, 2]
        window = replay(monitor, nvml.clock, "c1", 8.0, 10.0)
    assert window.gpu_energy_j > 0 and set(window.samples["gpu"]) == {1, 2}
    with open_monitor(nvml, visible="2", count=1) as monitor:
        assert [gpu.index for gpu in monitor.gpus] == [2]
        assert monitor.take_warnings() == []
    nvml.called.clear()
    with open_monitor(nvml, visible=nvml.gpus[1].uuid, count=1) as monitor:
        assert [gpu.index for gpu in monitor.gpus] == [1]
    assert "nvmlDeviceGetHandleByIndex" not in nvml.called  # no other GPU was opened


def test_a_lost_gpu_of_the_cell_fails_that_cells_energy_with_the_reason():
    nvml = fake_box(H200_TRACE, 2)
    nvml.gpus[0].lost_at = 0.0
    with open_monitor(nvml, visible="0", count=1) as monitor:
        assert not monitor.gpu_measured
        assert monitor.gpu_reason == "GPU 0 lost: GPU is lost"
        assert monitor.take_warnings() == ["GPU energy not measured: GPU 0 lost: GPU is lost"]
        assert cell_telemetry(monitor).gpu_energy == "not measured: GPU 0 lost: GPU is lost"
    with open_monitor(nvml, visible="1", count=1) as monitor:  # the next cell's GPU is fine
        assert monitor.gpu_measured


def test_a_gpu_lost_mid_cell_fails_its_windows_and_says_so():
    nvml = fake_box(H200_TRACE, 2)
    second = nvml.gpus[1].uuid
    with open_monitor(nvml, visible=None, count=2) as monitor:
        before = replay(monitor, nvml.clock, "c1", 4.0, 7.0)
        nvml.gpus[1].lost_at = 8.0
        during = replay(monitor, nvml.clock, "c2", 7.5, 10.0)
        after = replay(monitor, nvml.clock, "c4", 10.0, 12.0)
        warnings = monitor.take_warnings()
        cell = cell_telemetry(monitor)
    assert before.gpu_energy_j > 0
    reason = f"{second} lost: GPU is lost"
    assert during.gpu_energy_j is None and during.gpu.reason == reason
    assert after.gpu.reason == reason
    energy = point_energy(during, before, prompt_tokens=10, output_tokens=10)
    assert energy.energy_note == f"not measured: {reason}"
    assert warnings == [f"GPU energy not measured: {reason}"]  # once, not per window
    assert cell.gpu_energy == ("measured (NVML energy counter) in 1 of 3 windows; not in "
                               f"the others: {reason}")
    assert cell.warnings == warnings
    assert during.samples.loc[during.samples.uuid == second, "energy_mj"].isna().any()


# --- energy lost without a word: now a warning and a record -----------------------------------


def test_a_cell_whose_counters_never_read_says_not_measured():
    nvml = fake_nvml(H200_TRACE, unsupported={"nvmlDeviceGetTotalEnergyConsumption"})
    with open_monitor(nvml) as monitor:
        assert cell_telemetry(monitor).gpu_energy == "measured (NVML energy counter)"
        monitor.idle_baseline(5.0)
        replay(monitor, nvml.clock, "c1", 8.0, 10.0)
        cell = cell_telemetry(monitor)
        warnings = monitor.take_warnings()
    reason = f"energy counter of {H200_UUID} unreadable: Not Supported"
    assert cell.gpu_energy == f"not measured: {reason}"
    assert warnings == [f"GPU energy not measured: {reason}"]


@pytest.mark.parametrize(("nvidia_here", "warned"), [(True, True), (False, False)])
def test_nvml_failing_to_initialise_is_a_warning_where_there_are_nvidia_gpus(
        monkeypatch, nvidia_here, warned):
    monkeypatch.setattr(nvml_module, "nvidia_devices_present", lambda: nvidia_here)
    nvml = fake_nvml(H200_TRACE, init_error=pynvml.NVMLError_LibRmVersionMismatch)
    with open_monitor(nvml) as monitor:
        reason = "NVML unavailable: RM has detected an NVML/RM version mismatch."
        assert monitor.gpu_reason == reason
        assert monitor.take_warnings() == ([f"GPU energy not measured: {reason}"] if warned
                                           else [])
    chosen_none = open_monitor(fake_nvml(H200_TRACE), visible="", count=None)
    assert chosen_none.take_warnings() == []  # no GPU was asked for: nothing lost


def test_nvidia_devices_present_reads_the_driver_and_the_device_nodes(tmp_path: Path):
    proc, dev = tmp_path / "gpus", tmp_path / "dev"
    dev.mkdir()
    assert not nvml_module.nvidia_devices_present(proc, dev)
    (dev / "nvidiactl").touch()
    assert not nvml_module.nvidia_devices_present(proc, dev)
    (dev / "nvidia0").touch()  # a container given a GPU
    assert nvml_module.nvidia_devices_present(proc, dev)
    (dev / "nvidia0").unlink()
    (proc / "0000:17:00.0").mkdir(parents=True)
    assert nvml_module.nvidia_devices_present(proc, dev)


def test_a_sampler_stopped_by_a_non_nvml_error_is_a_warning_and_a_record():
    clock = RealtimeClock(start=Trace.load(H200_TRACE).phase_s("full_load")[0])
    nvml = fake_nvml(H200_TRACE, clock=clock)

    def broken(handle):
        raise ValueError("bad struct")

    nvml.nvmlDeviceGetUtilizationRates = broken  # a binding bug, not an NVMLError
    monitor = EnergyMonitor.open("0", 1, sample_hz=100.0, nvml=nvml, clock=clock,
                                 rapl_root=NO_RAPL)
    try:
        monitor.begin_window("c1")
        deadline = time.monotonic() + 5
        while monitor._nvml._sampler.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        window = monitor.end_window("c1")
        warnings = monitor.take_warnings()
        cell = cell_telemetry(monitor)
    finally:
        monitor.close()
    note = "nvml-sampler stopped: ValueError: bad struct"
    assert warnings == [f"GPU samples not measured from here on: {note}"]
    assert window.gpu_summary().notes == [note] and window.gpu_energy_j is not None
    assert cell.warnings == warnings


# --- the steady window's energy is the counter at its edges ------------------------------------


def test_counter_samples_give_the_steady_energy_across_a_load_step():
    nvml = fake_nvml(H200_TRACE, H100_TRACE, call_s=0.004)
    traces = [gpu.trace for gpu in nvml.gpus]
    full = traces[0].phase_s("full_load")[0]
    with open_monitor(nvml, visible=None, count=2) as monitor:
        window = replay(monitor, nvml.clock, "c1", full - 2.0, full + 5.0)
    bounds = (full - 0.5, full + 1.5)  # a steady window across the step to full load
    truth = sum((trace.row_at(bounds[1])["energy_mJ"] - trace.row_at(bounds[0])["energy_mJ"])
                / 1000 for trace in traces)
    found, why = counter_energy_j(window.samples, bounds)
    assert why is None and found == pytest.approx(truth, rel=0.01)
    grid = np.linspace(*bounds, 200)  # what the ~1 s averaged power says: far too low
    averaged = sum(np.trapezoid(np.interp(grid, rows.t_s, rows.power_avg_w), grid)
                   for _, rows in window.samples.groupby("uuid"))
    assert averaged < 0.9 * truth
