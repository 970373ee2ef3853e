"""summary.csv: one row per (variant, batch size, load point) of a stored run, one more row per
phase of a scenario, and a row per point a failed cell could not measure. The table
people compare in a spreadsheet; column names are documented in docs/metrics.md."""

from __future__ import annotations

import pandas as pd

from harness.contract.results import (
    KIND_ORDER,
    CellFailure,
    Distribution,
    PhaseResult,
    PointMetrics,
    PointResult,
    kind_label,
)
from harness.cost.formulas import usd_per_mtok
from harness.metrics.slo import judged_distribution
from harness.report.run_report.fidelity import fidelity_columns
from harness.store.run_store import RunStore, StoredRun

LATENCIES = ("ttft_ms", "tpot_ms", "itl_ms", "itl_per_token_ms", "e2e_ms",
             "ttft_from_intended_ms", "e2e_from_intended_ms", "dispatch_lag_ms")
STATS = ("n", "mean", "p50", "p90", "p95", "p99")
COUNTS = ("requests", "attempts", "completed", "errors", "error_rate", "failed_attempts",
          "retried_requests", "retry_prompt_tokens", "retry_output_tokens", "duration_s",
          "request_throughput", "output_throughput", "total_token_throughput", "prompt_tokens",
          "output_tokens", "output_length_mismatches", "input_length_mismatches", "burst_share",
          "burst_delivery")
ENERGY = ("energy_j", "mean_power_w", "idle_power_w", "mean_power_above_idle_w",
          "j_per_output_token", "j_per_token", "output_tokens_per_j", "peak_temp_c",
          "throttle_reasons", "mean_gpu_util_pct", "peak_mem_used_gib", "energy_short_window",
          "energy_note")
ENGINE = ("running_mean", "running_max", "waiting_max", "kv_cache_usage_peak", "preemptions",
          "prefix_hit_rate")
SORT = ["variant", "workload", "tensor_parallel_size", "max_num_seqs", "kind_order",
        "concurrency", "rate"]


def metric_columns(m: PointMetrics) -> dict:
    row = {key: getattr(m, key) for key in COUNTS}
    for name in LATENCIES:
        dist: Distribution = getattr(m, name)
        for stat in STATS:
            row[f"{name}_{stat}"] = getattr(dist, stat)
    row["p99_low_n"] = m.ttft_ms.p99_low_n
    return row


def _identity(result: PointResult, phase: str | None) -> dict:
    return {"cell": result.cell, "point": result.point, "phase": phase,
            "kind": kind_label(result.kind),
            "variant": result.variant,
            **({"workload": result.workload} if result.workload else {}),  # (named workloads)
            "max_num_seqs": result.max_num_seqs,
            "tensor_parallel_size": result.tensor_parallel_size,
            "concurrency": result.concurrency, "rate": result.rate, "status": "ok"}


def _cost(m: PointMetrics, usd_per_hour: float | None) -> dict:
    return {"usd_per_hour": usd_per_hour,
            "usd_per_mtok_output": usd_per_mtok(usd_per_hour, m.output_throughput),
            "usd_per_mtok_total": usd_per_mtok(usd_per_hour, m.total_token_throughput),
            "reason": None}


def _verdict(part: PointResult | PhaseResult) -> dict:
    """Whether the part met its SLO, and each limit's judged value (`slo_<limit>`: the
    statistic the limit names, from the intended send on open-loop points)."""
    slo = part.slo
    found = {"slo_meets": None if slo is None else slo.meets,
             "slo_violations": None if slo is None else "; ".join(slo.violations),
             "goodput_rps": None if slo is None else slo.goodput_rps}
    for limit in slo.limits.limits() if slo is not None else []:
        judged = judged_distribution(part.metrics, limit.metric).stat(limit.stat)
        found[f"slo_{limit.key}"] = judged
    return found


def point_row(result: PointResult, usd_per_hour: float | None) -> dict:
    """The point's own row: metrics, energy, engine view, client health, SLO and cost."""
    engine = result.server.engine
    row = {**_identity(result, None), **metric_columns(result.metrics)}
    row.update({key: getattr(result.energy, key) for key in ENERGY})
    row["cpu_energy_j"] = result.cpu_energy.energy_j
    row.update({f"engine_{key}": getattr(engine, key) if engine else None for key in ENGINE})
    row["gpu_count"] = result.gpu_count
    row.update(_verdict(result))
    row.update({
        "prefix_cache": result.prefix_cache,
        "client_kept_up": result.client.kept_up,
        "client_loop_lag_p99_ms": result.client.loop_lag_ms.p99,
        "server_prompt_tokens": result.server.prompt_tokens,
        "server_generation_tokens": result.server.generation_tokens,
        "token_check": result.server.token_check})
    row.update(_cost(result.metrics, usd_per_hour))
    return row


def phase_row(result: PointResult, name: str, usd_per_hour: float | None) -> dict:
    """One phase of a profile point: its metrics, SLO and cost (energy is the point's)."""
    phase = result.phases[name]
    return {**_identity(result, name), **metric_columns(phase.metrics), **_verdict(phase),
            "prefix_cache": result.prefix_cache, **_cost(phase.metrics, usd_per_hour)}


def failed_rows(failure: CellFailure) -> list[dict]:
    return [{"cell": failure.cell, "point": point.id, "phase": None,
             "kind": kind_label(point.kind),
             "variant": failure.variant, "max_num_seqs": failure.max_num_seqs,
             "tensor_parallel_size": failure.tensor_parallel_size,
             "concurrency": point.concurrency, "rate": point.rate, "status": "failed",
             "reason": failure.reason}
            for point in failure.points]


def summary_frame(run: StoredRun, with_phases: bool = False) -> pd.DataFrame:
    """One row per point (and, with_phases, per phase of a profile after its point's row)."""
    price = run.manifest.config.cost.usd_per_hour
    rows = []
    for result in run.points:
        rows.append(point_row(result, price))
        if with_phases:
            rows += [phase_row(result, name, price) for name in result.phases]
    done = {(row["cell"], row["point"]) for row in rows}
    for failure in run.failures:
        rows += [r for r in failed_rows(failure) if (r["cell"], r["point"]) not in done]
    if run.fidelity:  # a variant's fidelity on each of its rows
        for row in rows:
            row.update(fidelity_columns(run.fidelity.get(row["variant"]),
                                        run.manifest.config.fidelity))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["kind_order"] = frame["kind"].map(KIND_ORDER).fillna(9)
    frame = frame.sort_values([c for c in SORT if c in frame], kind="stable",
                              na_position="first")
    return frame.drop(columns="kind_order").reset_index(drop=True)


def write_summary(store: RunStore) -> pd.DataFrame:
    """Rewrite summary.csv from the stored points (with a row per phase), and return it."""
    frame = summary_frame(store.load(), with_phases=True)
    store.save_summary(frame)
    return frame
