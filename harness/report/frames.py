"""The tidy frames the report's charts are drawn from: one row per measured point (with its
confidence intervals), per latency statistic, per phase, per engine view, read from stored runs.
A value that was not measured stays None, never zero."""

from __future__ import annotations

import math

import pandas as pd

from harness.config.slo import Limit, Slo
from harness.contract.results import Distribution, PointResult
from harness.metrics.slo import judged_distribution
from harness.store.run_store import StoredRun

LATENCY_METRICS = {"ttft_ms": "TTFT", "tpot_ms": "TPOT", "e2e_ms": "E2E"}
LATENCY_STATS = ("mean", "p50", "p90", "p95", "p99")  # every statistic an SLO can judge


def series_label(result: PointResult) -> str:
    """'bf16 batch 16' (and 'tp 2' where the cell spans GPUs): one line of a chart."""
    label = result.variant
    if result.workload is not None:  # a named workload (matrix.workloads)
        label += f" {result.workload}"
    if result.max_num_seqs is not None:
        label += f" batch {result.max_num_seqs}"
    if result.tensor_parallel_size > 1:
        label += f" tp {result.tensor_parallel_size}"
    return label


def gpus_of(result: PointResult, has_gpu: bool) -> int:
    """What throughput is divided by: the cell's GPUs, or 1 (the machine) on a run without."""
    return result.tensor_parallel_size if has_gpu else 1


def _load(result: PointResult) -> float | None:
    return result.concurrency if result.concurrency is not None else result.rate


def point_frame(runs: list[StoredRun]) -> pd.DataFrame:
    """One row per point of every run: identity, throughput per GPU, interactivity, SLO."""
    rows = []
    for run in runs:
        has_gpu = bool(run.manifest.gpu_names)
        for result in sorted(run.points, key=lambda r: r.sort_key):
            m = result.metrics
            tpot = m.tpot_ms.p50
            rows.append({
                "run": run.name, "model": run.manifest.config.model, "variant": result.variant,
                "series": series_label(result), "max_num_seqs": result.max_num_seqs,
                "tensor_parallel_size": result.tensor_parallel_size, "point": result.point,
                "kind": result.kind, "concurrency": result.concurrency, "rate": result.rate,
                "load": _load(result),
                "output_tps_per_gpu": m.output_throughput / gpus_of(result, has_gpu),
                "per": "GPU" if has_gpu else "machine",
                "interactivity": 1000.0 / tpot if tpot else None,
                "meets_slo": None if result.slo is None else result.slo.meets,
                "slo": "no SLO" if result.slo is None else
                       ("meets the SLO" if result.slo.meets else "misses the SLO"),
                "j_per_output_token": result.energy.j_per_output_token,
                "mean_power_w": result.energy.mean_power_w})
    return pd.DataFrame(rows)


def _interval(dist: Distribution, stat: str) -> tuple[float | None, float | None]:
    ci = getattr(dist, f"{stat}_ci", None)  # a mean has no interval stored
    return (ci[0], ci[1]) if ci else (None, None)


def latency_frame(runs: list[StoredRun]) -> pd.DataFrame:
    """One row per (point, metric, statistic) with the bootstrap CI of that percentile."""
    rows = []
    for run in runs:
        for result in sorted(run.points, key=lambda r: r.sort_key):
            if result.kind == "profile":
                continue  # a profile's load changes by phase: it has no single x
            for name, metric in LATENCY_METRICS.items():
                dist: Distribution = getattr(result.metrics, name)
                for stat in LATENCY_STATS:
                    low, high = _interval(dist, stat)
                    rows.append({"run": run.name, "series": series_label(result),
                                 "kind": result.kind, "load": _load(result), "metric": metric,
                                 "stat": stat, "ms": dist.stat(stat), "ci_low": low,
                                 "ci_high": high, "n": dist.n})
    return pd.DataFrame(rows)


def judged_limit(slo: Slo | None) -> Limit:
    """The SLO's first latency limit: the statistic a chart of its verdicts draws (TTFT p95,
    with no limit, where the SLO has none)."""
    limits = slo.limits() if slo is not None else []
    return limits[0] if limits else Limit("ttft", "p95", math.nan)


def phase_frame(runs: list[StoredRun]) -> pd.DataFrame:
    """One row per phase of every profile point: its throughput, the statistic the first
    run's SLO judges (`judged`, its value and limit) and its SLO verdict."""
    rows = []
    limit = judged_limit(runs[0].manifest.config.slo if runs else None)
    for run in runs:
        for result in sorted(run.points, key=lambda r: r.sort_key):
            for order, (name, phase) in enumerate(result.phases.items()):
                m = phase.metrics
                rows.append({"run": run.name, "series": series_label(result),
                             "point": result.point, "phase": name, "order": order,
                             "output_throughput": m.output_throughput,
                             "judged": f"{limit.metric.upper()} {limit.stat}",
                             "judged_ms": judged_distribution(m, limit.metric).stat(limit.stat),
                             "limit_ms": None if math.isnan(limit.ms) else limit.ms,
                             "ttft_p95_ms": m.ttft_ms.p95, "tpot_p50_ms": m.tpot_ms.p50,
                             "slo": "no SLO" if phase.slo is None else
                                    ("meets" if phase.slo.meets else "misses")})
    return pd.DataFrame(rows)


def engine_frame(runs: list[StoredRun]) -> pd.DataFrame:
    """One row per point where the engine's /metrics were read: batch reached, queue, KV."""
    rows = []
    for run in runs:
        for result in sorted(run.points, key=lambda r: r.sort_key):
            engine = result.server.engine
            if engine is None or engine.running_max is None:
                continue
            rows.append({"run": run.name, "series": series_label(result),
                         "label": f"{series_label(result)} {result.point}",
                         "running_max": engine.running_max, "running_mean": engine.running_mean,
                         "max_num_seqs": engine.max_num_seqs or result.max_num_seqs,
                         "waiting_max": engine.waiting_max,
                         "kv_cache_usage_peak_pct": None if engine.kv_cache_usage_peak is None
                         else 100 * engine.kv_cache_usage_peak})
    return pd.DataFrame(rows)


def telemetry_frame(run: StoredRun) -> pd.DataFrame:
    """The stored NVML samples of every point that has them, time from the point's start."""
    parts = []
    for result in sorted(run.points, key=lambda r: r.sort_key):
        path = run.root / "cells" / result.cell / "points" / f"{result.point}.telemetry.parquet"
        if not path.exists():
            continue
        samples = pd.read_parquet(path)
        if samples.empty:
            continue
        samples = samples.assign(t_s=samples["t_s"] - samples["t_s"].min(),
                                 label=f"{series_label(result)} {result.point}",
                                 gpu=samples["gpu"].astype(str))
        parts.append(samples)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
