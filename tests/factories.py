"""Typed results for tests: valid PointResults, manifests and run directories built from the
few numbers a test is about (everything else a plausible constant), written through the store
as `harness run` writes them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.config import ExperimentConfig
from harness.contract.manifest import GpuDevice, GpuInventory, Host, RunManifest
from harness.contract.results import (
    CapacityRecord,
    CellFailure,
    ClientHealth,
    CpuEnergy,
    Distribution,
    Energy,
    LagStats,
    Planned,
    PointMetrics,
    PointRef,
    PointResult,
    ServerView,
    WindowSummary,
)
from harness.store.run_store import RunStore, write_model

DATE = "2026-11-20T10:00:00+00:00"


def dist(n: int = 100, value: float = 10.0, **stats: float) -> Distribution:
    """A distribution of `n` samples whose every statistic is `value` unless named."""
    base = {name: value for name in ("mean", "p50", "p90", "p95", "p99")}
    return Distribution(n=n, p99_low_n=n < 100, **{**base, **stats})


def metrics(total: float = 5000.0, output: float = 1250.0, *, requests: int = 100,
            errors: int = 0, duration_s: float = 10.0, ttft_p95: float = 10.0,
            **latencies: Distribution) -> PointMetrics:
    """Throughput `total` and `output` tok/s over `duration_s`, the tokens that implies."""
    completed = requests - errors
    fields = {name: dist(completed) for name in (
        "ttft_ms", "tpot_ms", "itl_ms", "itl_per_token_ms", "e2e_ms")}
    fields["ttft_ms"] = dist(completed, p95=ttft_p95)
    fields |= {name: dist(0) for name in ("ttft_from_intended_ms", "e2e_from_intended_ms",
                                          "dispatch_lag_ms")}
    fields |= latencies
    return PointMetrics(
        requests=requests, attempts=requests, completed=completed, errors=errors,
        error_rate=errors / requests, failed_attempts=errors, retried_requests=0,
        retry_prompt_tokens=0, retry_output_tokens=0, duration_s=duration_s,
        prompt_tokens=round((total - output) * duration_s),
        output_tokens=round(output * duration_s), request_throughput=completed / duration_s,
        output_throughput=output, total_token_throughput=total, output_length_mismatches=0,
        input_length_mismatches=0, burst_share=0.0, burst_delivery=False, **fields)


def window(name: str, energy_j: float | None = None, gpus: int = 0,
           duration_s: float = 10.0) -> WindowSummary:
    per_gpu = {f"GPU-{i}": energy_j / gpus for i in range(gpus)} if energy_j and gpus else None
    return WindowSummary(name=name, duration_s=duration_s, energy_j=energy_j,
                         energy_j_per_gpu=per_gpu,
                         mean_power_w=energy_j / duration_s if energy_j else None,
                         short_window=False, reason=None if energy_j else "NVML unavailable",
                         notes=[], samples=0)


def energy(name: str, mean_power_w: float | None = None, gpus: int = 0,
           duration_s: float = 10.0) -> Energy:
    joules = mean_power_w * duration_s if mean_power_w is not None else None
    return Energy(energy_j=joules, mean_power_w=mean_power_w, idle_power_w=None,
                  mean_power_above_idle_w=None, j_per_output_token=None, j_per_token=None,
                  output_tokens_per_j=None, peak_temp_c=None, throttle_reasons=None,
                  mean_gpu_util_pct=None, peak_mem_used_gib=None, energy_short_window=False,
                  energy_note=None if joules else "not measured: NVML unavailable",
                  window=window(name, joules, gpus, duration_s), idle=window("idle-baseline"))


def point_result(cell: str, variant: str, batch: int | None, conc: int | None,
                 m: PointMetrics | None = None, *, point: str | None = None, tp: int = 1,
                 kind: str = "closed", rate: float | None = None,
                 mean_power_w: float | None = None, gpus: int = 0, **changes) -> PointResult:
    point = point or (f"c{conc}" if conc is not None else f"r{rate:g}")
    m = m or metrics()
    result = PointResult(
        run="test", cell=cell, point=point, kind=kind, engine="vllm", variant=variant,
        max_num_seqs=batch, tensor_parallel_size=tp, concurrency=conc, rate=rate,
        planned=Planned(phases=[], input_tokens="1500", output_tokens="500",
                        request_timeout_s=600.0),
        metrics=m, slo=None,
        server=ServerView(prompt_tokens=m.prompt_tokens, generation_tokens=m.output_tokens,
                          client_prompt_tokens=m.prompt_tokens,
                          client_generation_tokens=m.output_tokens, token_check="match"),
        client=ClientHealth(kept_up=True, problems=[], limit_ms=5.0,
                            loop_lag_ms=LagStats(n=10, p50=0.1, p99=0.5, max=1.0)),
        energy=energy(point, mean_power_w, gpus, m.duration_s),
        cpu_energy=CpuEnergy(name=point, duration_s=m.duration_s, energy_j=None,
                             energy_j_per_zone=None, reason="RAPL unavailable"),
        started_at=DATE, ended_at=DATE, prefix_cache="reset")
    return result.model_copy(update=changes)


CONFIG = {"model": "meta-llama/Llama-3.1-8B-Instruct",
          "workload": {"input_tokens": 1500, "output_tokens": 500},
          "load": {"concurrency": [1], "requests": 1}}


def manifest(*, model: str = CONFIG["model"], usd_per_hour: float | None = 3.0,
             gpus: list[str] | None = None, config: dict | None = None) -> RunManifest:
    raw = {**CONFIG, **(config or {}), "model": model, "cost": {"usd_per_hour": usd_per_hour}}
    experiment = ExperimentConfig.model_validate(raw)
    devices = [GpuDevice(index=i, name=name, uuid=f"GPU-{i}")
               for i, name in enumerate(gpus or [])]
    host = Host(hostname="test", platform="Linux", python="3.11", cpu="Test CPU", cpu_count=2,
                memory_gib=24.0, gpus=GpuInventory(available=bool(devices), devices=devices))
    return RunManifest(run="test", config_file="configs/test.yaml", config=experiment,
                       config_hash=experiment.hash(), harness_version="0.1.0",
                       harness_git_sha=None, engine_package=None, host=host, started_at=DATE,
                       status="complete")


def failure(cell: str, variant: str, batch: int, points: list[tuple[str, int]],
            reason: str = "server exited with code 2") -> CellFailure:
    return CellFailure(cell=cell, variant=variant, max_num_seqs=batch, tensor_parallel_size=1,
                       reason=reason, log_tail="", failed_at=DATE,
                       points=[PointRef(id=name, kind="closed", concurrency=conc, rate=None)
                               for name, conc in points])


def write_run(root: Path, points: list[PointResult], run: RunManifest | None = None,
              capacities: dict[str, CapacityRecord] | None = None,
              failures: list[CellFailure] = ()) -> Path:
    """A results directory as `harness run` leaves it, through the store."""
    store = RunStore(root)
    write_model(store.run_json, run or manifest())
    for result in points:
        store.save_point(result, pd.DataFrame({"index": [0]}))
    for cell, record in (capacities or {}).items():
        store.save_capacity(cell, record)
    for item in failures:
        store.record_failure(item)
    return root
