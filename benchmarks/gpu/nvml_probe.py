"""NVML on a real GPU, before the harness trusts it: run first on a lent GPU machine (about 90 s).

    python3 benchmarks/gpu/nvml_probe.py [OUT.json]

It checks, on GPU 0 (the first of CUDA_VISIBLE_DEVICES):
  - each NVML call the harness makes: supported on this driver or not (which exception), and its
    latency;
  - how often the total-energy counter moves (the harness takes energy only from it);
  - the idle baseline (counter energy over 5 s);
  - counter energy against integrated averaged power and integrated instantaneous power over a
    short bf16 matmul burn (the averaged power lags: it under-counts a short window);
  - the harness's own sampler: its real rate, and the event-loop lag it costs a 5 ms ticker;
  - the UUID torch sees on cuda:0 against the one the harness measures;
  - non-empty temperature and clock-event (throttle) readings in the harness's samples.
It writes one JSON and prints PASS or FAIL for each expectation; the exit code is the number of
failures (0: every expectation held).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import pynvml

BURN_S = 6.0
IDLE_S = 5.0
COUNTER_POLL_S = 2.0


def timed_call(name: str, fn, *args, repeats: int = 20) -> dict:
    """Is the call supported here, what does it return, and how long does it take."""
    try:
        value = fn(*args)
    except pynvml.NVMLError as err:
        return {"call": name, "supported": False, "error": f"{type(err).__name__}: {err}"}
    except AttributeError as err:  # the binding lacks the symbol
        return {"call": name, "supported": False, "error": f"AttributeError: {err}"}
    took = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn(*args)
        took.append((time.perf_counter() - began) * 1e6)
    return {"call": name, "supported": True, "value": repr(value)[:200],
            "latency_us_median": statistics.median(took), "latency_us_max": max(took)}


def probe_calls(handle) -> list[dict]:
    nv = pynvml
    calls = [
        ("nvmlDeviceGetTotalEnergyConsumption", nv.nvmlDeviceGetTotalEnergyConsumption, handle),
        ("nvmlDeviceGetPowerUsage", nv.nvmlDeviceGetPowerUsage, handle),
        ("nvmlDeviceGetFieldValues(POWER_INSTANT)", nv.nvmlDeviceGetFieldValues, handle,
         [nv.NVML_FI_DEV_POWER_INSTANT]),
        ("nvmlDeviceGetTemperature", nv.nvmlDeviceGetTemperature, handle,
         nv.NVML_TEMPERATURE_GPU),
        ("nvmlDeviceGetCurrentClocksEventReasons",
         getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None), handle),
        ("nvmlDeviceGetCurrentClocksThrottleReasons",
         getattr(nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None), handle),
        ("nvmlDeviceGetUtilizationRates", nv.nvmlDeviceGetUtilizationRates, handle),
        ("nvmlDeviceGetMemoryInfo", nv.nvmlDeviceGetMemoryInfo, handle),
        ("nvmlDeviceGetEnforcedPowerLimit", nv.nvmlDeviceGetEnforcedPowerLimit, handle),
        ("nvmlDeviceGetClockInfo(SM)", nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_SM),
        ("nvmlDeviceGetMaxClockInfo(SM)", nv.nvmlDeviceGetMaxClockInfo, handle,
         nv.NVML_CLOCK_SM),
        ("nvmlDeviceGetEccMode", nv.nvmlDeviceGetEccMode, handle),
        ("nvmlDeviceGetComputeRunningProcesses", nv.nvmlDeviceGetComputeRunningProcesses,
         handle),
        ("nvmlDeviceGetNvLinkState(0)", getattr(nv, "nvmlDeviceGetNvLinkState", None), handle, 0),
        ("nvmlSystemGetDriverVersion", nv.nvmlSystemGetDriverVersion),
    ]
    if hasattr(nv, "nvmlDeviceGetTemperatureV"):
        calls.append(("nvmlDeviceGetTemperatureV", nv.nvmlDeviceGetTemperatureV, handle,
                      nv.NVML_TEMPERATURE_GPU))
    found = []
    for name, fn, *args in calls:
        if fn is None:
            found.append({"call": name, "supported": False, "error": "not in the binding"})
        else:
            found.append(timed_call(name, fn, *args))
    return found


def counter_movement(handle) -> dict:
    """How often the energy counter changes, polled as fast as possible for a while."""
    changes, last, began = [], pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.monotonic()
    reads = 0
    while time.monotonic() - began < COUNTER_POLL_S:
        value = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        reads += 1
        if value != last:
            changes.append(time.monotonic())
            last = value
    gaps = [b - a for a, b in zip(changes, changes[1:], strict=False)]
    return {"reads": reads, "changes": len(changes),
            "median_ms_between_changes": statistics.median(gaps) * 1000 if gaps else None}


def idle_baseline(handle) -> dict:
    start = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    time.sleep(IDLE_S)
    joules = (pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) - start) / 1000
    return {"seconds": IDLE_S, "energy_j": joules, "mean_w": joules / IDLE_S}


def burn(seconds: float) -> None:
    import torch

    a = torch.randn(8192, 8192, device="cuda:0", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda:0", dtype=torch.bfloat16)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()
    del a, b
    torch.cuda.empty_cache()


def counter_against_power(handle) -> dict:
    """Counter energy over a burn against the two power readings integrated at 20 Hz."""
    readings, stop = [], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            avg = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000
            field = pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_POWER_INSTANT])[0]
            instant = field.value.uiVal / 1000 if field.nvmlReturn == 0 else None
            readings.append((time.monotonic(), avg, instant))
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    start_j = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000
    began = time.monotonic()
    thread.start()
    burn(BURN_S)
    stop.set()
    thread.join()
    counter_j = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000 - start_j
    duration = time.monotonic() - began

    def integrate(column: int) -> float | None:
        points = [(row[0], row[column]) for row in readings if row[column] is not None]
        if len(points) < 2:
            return None
        return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1)
                   in zip(points, points[1:], strict=False))

    averaged, instant = integrate(1), integrate(2)
    return {"seconds": duration, "counter_j": counter_j, "averaged_power_j": averaged,
            "instant_power_j": instant, "samples": len(readings),
            "averaged_over_counter": averaged / counter_j if averaged and counter_j else None,
            "instant_over_counter": instant / counter_j if instant and counter_j else None}


async def loop_lag(seconds: float, tick_s: float = 0.005) -> float:
    """p99 of how late a 5 ms ticker wakes, in ms."""
    lags, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        due = time.monotonic() + tick_s
        await asyncio.sleep(tick_s)
        lags.append((time.monotonic() - due) * 1000)
    lags.sort()
    return lags[int(0.99 * (len(lags) - 1))]


def harness_sampler() -> dict:
    """The harness's own monitor on GPU 0: its sampler's real rate over a burn, the loop lag
    it costs, and what its samples and static facts say."""
    from harness.telemetry.monitor import EnergyMonitor

    without = asyncio.run(loop_lag(3.0))
    monitor = EnergyMonitor.open(os.environ.get("CUDA_VISIBLE_DEVICES"), 1, sample_hz=10)
    try:
        monitor.begin_window("burn")
        burner = threading.Thread(target=burn, args=(4.0,), daemon=True)
        burner.start()
        with_sampler = asyncio.run(loop_lag(4.0))
        burner.join()
        window = monitor.end_window("burn")
        samples = window.samples
        uuid = monitor.gpus[0].uuid if monitor.gpus else None
    finally:
        monitor.close()
    return {"window_s": window.duration_s, "samples": len(samples),
            "rate_hz": len(samples) / window.duration_s if window.duration_s else None,
            "counter_j": window.gpu_energy_j, "measured_uuid": uuid,
            "loop_lag_p99_ms_without": without, "loop_lag_p99_ms_with": with_sampler,
            "temperature_readings": int(samples["temp_c"].notna().sum()),
            "clock_event_readings": int(samples["clock_event_reasons"].notna().sum()),
            "notes": list(window.notes)}


def torch_uuid() -> str | None:
    import torch

    uuid = getattr(torch.cuda.get_device_properties(0), "uuid", None)
    return f"GPU-{uuid}" if uuid is not None and not str(uuid).startswith("GPU-") else uuid


def expectations(found: dict) -> dict[str, tuple[bool, str]]:
    calls = {c["call"]: c for c in found["calls"]}
    burn_ = found["burn"]
    sampler = found["sampler"]
    moved = found["counter"]["median_ms_between_changes"]
    return {
        "energy counter supported": (calls["nvmlDeviceGetTotalEnergyConsumption"]["supported"],
                                     str(calls["nvmlDeviceGetTotalEnergyConsumption"])),
        "counter moves at least every 200 ms": (moved is not None and moved <= 200,
                                                f"{moved} ms"),
        "idle baseline measured": (found["idle"]["energy_j"] > 0, f"{found['idle']['mean_w']} W"),
        "burn draws well above idle": (burn_["counter_j"] / burn_["seconds"]
                                       > 1.5 * found["idle"]["mean_w"],
                                       f"{burn_['counter_j'] / burn_['seconds']:.0f} W"),
        "averaged power under-counts a short burn (use the counter)": (
            burn_["averaged_over_counter"] is not None and burn_["averaged_over_counter"] < 1.0,
            f"averaged/counter {burn_['averaged_over_counter']}"),
        "instant power within 10% of the counter": (
            burn_["instant_over_counter"] is not None
            and abs(burn_["instant_over_counter"] - 1) <= 0.10,
            f"instant/counter {burn_['instant_over_counter']}"),
        "sampler within 20% of 10 Hz": (sampler["rate_hz"] is not None
                                        and abs(sampler["rate_hz"] - 10) <= 2,
                                        f"{sampler['rate_hz']} Hz"),
        "sampler costs the loop under 2 ms of p99 lag": (
            sampler["loop_lag_p99_ms_with"] - sampler["loop_lag_p99_ms_without"] < 2.0,
            f"{sampler['loop_lag_p99_ms_without']:.2f} -> "
            f"{sampler['loop_lag_p99_ms_with']:.2f} ms"),
        "torch's cuda:0 is the measured GPU": (found["torch_uuid"] == sampler["measured_uuid"],
                                               f"{found['torch_uuid']} vs "
                                               f"{sampler['measured_uuid']}"),
        "temperature readings in the samples": (sampler["temperature_readings"] > 0,
                                                str(sampler["temperature_readings"])),
        "clock-event readings in the samples": (sampler["clock_event_readings"] > 0,
                                                str(sampler["clock_event_readings"])),
    }


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else
               os.path.join(os.environ.get("OUT", "/tmp"), "nvml-probe.json"))
    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)  # (CUDA_VISIBLE_DEVICES unset: GPU 0)
        found = {"driver": pynvml.nvmlSystemGetDriverVersion(),
                 "name": pynvml.nvmlDeviceGetName(handle),
                 "calls": probe_calls(handle), "counter": counter_movement(handle),
                 "idle": idle_baseline(handle), "burn": counter_against_power(handle)}
    finally:
        pynvml.nvmlShutdown()
    found["sampler"] = harness_sampler()
    found["torch_uuid"] = torch_uuid()
    verdicts = expectations(found)
    found["expectations"] = {name: {"pass": ok, "detail": detail}
                             for name, (ok, detail) in verdicts.items()}
    out.write_text(json.dumps(found, indent=2, default=str))
    for name, (ok, detail) in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    print(f"wrote {out}")
    return sum(not ok for ok, _ in verdicts.values())


if __name__ == "__main__":
    sys.exit(main())
