"""summary.csv and the results table: one row per (variant, batch size, load point), and in
summary.csv one more row per phase of a traffic profile."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from harness.cost.model import usd_per_mtok
from harness.store import RunStore, write_atomic

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
KEYS = ["variant", "max_num_seqs", "tensor_parallel_size", "concurrency", "rate"]
SORT = ["variant", "tensor_parallel_size", "max_num_seqs", "kind_order", "concurrency", "rate"]
KIND_ORDER = {"closed": 0, "open": 1, "profile": 2, "search": 3}


def metric_columns(m: dict) -> dict:
    row = {key: m.get(key) for key in COUNTS}
    for name in LATENCIES:
        dist = m.get(name) or {}
        for stat in STATS:
            row[f"{name}_{stat}"] = dist.get(stat)
    row["p99_low_n"] = (m.get("ttft_ms") or {}).get("p99_low_n")
    return row


def point_row(result: dict, usd_per_hour: float | None, phase: str | None = None) -> dict:
    m = result["metrics"] if phase is None else result["phases"][phase]["metrics"]
    slo = result.get("slo") if phase is None else result["phases"][phase].get("slo")
    server = result.get("server", {})
    energy = result.get("energy") or {} if phase is None else {}
    engine = server.get("engine") or {} if phase is None else {}
    row = {"cell": result["cell"], "point": result["point"], "phase": phase,
           "kind": result.get("kind", "closed"),
           **{key: result.get(key) for key in KEYS}, "status": "ok", **metric_columns(m)}
    row.update({key: energy.get(key) for key in ENERGY})
    row["cpu_energy_j"] = (result.get("cpu_energy") or {}).get("energy_j") if not phase else None
    row.update({f"engine_{key}": engine.get(key) for key in ENGINE})
    row["gpu_count"] = len((energy.get("window") or {}).get("energy_j_per_gpu") or {}) or None
    row.update({
        "slo_meets": None if slo is None else slo["meets"],
        "slo_violations": None if slo is None else "; ".join(slo["violations"]),
        "goodput_rps": None if slo is None else slo["goodput_rps"],
        "prefix_cache": result.get("prefix_cache"),
        "client_kept_up": (result.get("client") or {}).get("kept_up") if not phase else None,
        "client_loop_lag_p99_ms": ((result.get("client") or {}).get("loop_lag_ms") or {})
        .get("p99") if not phase else None,
        "server_prompt_tokens": server.get("prompt_tokens") if not phase else None,
        "server_generation_tokens": server.get("generation_tokens") if not phase else None,
        "token_check": server.get("token_check") if not phase else None,
        "usd_per_hour": usd_per_hour,
        "usd_per_mtok_output": usd_per_mtok(usd_per_hour, m["output_throughput"]),
        "usd_per_mtok_total": usd_per_mtok(usd_per_hour, m["total_token_throughput"]),
        "reason": None,
    })
    return row


def failed_rows(failure: dict) -> list[dict]:
    reason = failure.get("reason", "")
    return [{"cell": failure["cell"], "point": point["id"], "phase": None,
             "kind": "open" if point.get("rate") else "closed",
             **{key: failure[key] for key in KEYS[:3]}, "concurrency": point.get("concurrency"),
             "rate": point.get("rate"), "status": "failed", "reason": reason}
            for point in failure.get("points", [])]


def summary_frame(store: RunStore, usd_per_hour: float | None,
                  with_phases: bool = False) -> pd.DataFrame:
    """One row per point (and, with_phases, per phase of a profile after its point's row)."""
    rows = []
    for result in store.points():
        rows.append(point_row(result, usd_per_hour))
        if with_phases:
            rows += [point_row(result, usd_per_hour, name) for name in result.get("phases") or {}]
    done = {(row["cell"], row["point"]) for row in rows}
    for failure in store.failures():
        rows += [r for r in failed_rows(failure) if (r["cell"], r["point"]) not in done]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["kind_order"] = frame["kind"].map(KIND_ORDER).fillna(9)
    frame = frame.sort_values(SORT, kind="stable", na_position="first")
    return frame.drop(columns="kind_order").reset_index(drop=True)


def write_summary(store: RunStore, usd_per_hour: float | None) -> pd.DataFrame:
    frame = summary_frame(store, usd_per_hour, with_phases=True)
    write_atomic(store.summary_csv, frame.to_csv(index=False).encode())
    return frame


def _fmt(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float) and value.is_integer() and digits == 1 and abs(value) < 1e6:
        return f"{value:,.1f}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _batch(value: object) -> str:
    return "-" if value is None or pd.isna(value) else str(int(value))


def _load(row: dict) -> str:
    phase = row.get("phase")
    return f"  {phase}" if isinstance(phase, str) else str(row["point"])


def _slo(row: dict) -> str:
    meets = row.get("slo_meets")
    if meets is None or (isinstance(meets, float) and pd.isna(meets)):
        return ""
    return "[green]met[/green]" if meets else "[red]missed[/red]"


def results_table(frame: pd.DataFrame, title: str = "Results") -> Table:
    """The human view: throughput, latency percentiles, energy, SLO and $/Mtok per row."""
    table = Table(title=title, header_style="bold", show_lines=False)
    columns = [("variant", "left"), ("batch", "right"), ("load", "left"), ("ok/err", "right"),
               ("req/s", "right"), ("out tok/s", "right"), ("TTFT p50/p99 ms", "right"),
               ("TPOT p50/p99 ms", "right"), ("E2E p50/p99 ms", "right"), ("SLO", "left"),
               ("J/out tok", "right"), ("$/Mtok out", "right"), ("$/Mtok total", "right")]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in frame.to_dict("records"):
        if row["status"] != "ok":
            table.add_row(row["variant"], _batch(row["max_num_seqs"]), _load(row),
                          "[red]failed[/red]", "", "", f"[red]{_short(row.get('reason'))}[/red]",
                          "", "", "", "", "", "")
            continue
        burst = "*" if row.get("burst_delivery") is True else ""
        table.add_row(
            row["variant"], _batch(row["max_num_seqs"]), _load(row),
            f"{row['completed']}/{row['errors']}",
            _fmt(row["request_throughput"], 2), _fmt(row["output_throughput"]),
            f"{_fmt(row['ttft_ms_p50'])}/{_fmt(row['ttft_ms_p99'])}{burst}",
            f"{_fmt(row['tpot_ms_p50'], 2)}/{_fmt(row['tpot_ms_p99'], 2)}{burst}",
            f"{_fmt(row['e2e_ms_p50'])}/{_fmt(row['e2e_ms_p99'])}", _slo(row),
            _fmt(row.get("j_per_output_token"), 3),
            _fmt(row["usd_per_mtok_output"], 3), _fmt(row["usd_per_mtok_total"], 3))
    notes = table_notes(frame)
    if notes:
        table.caption = notes
    return table


def table_notes(frame: pd.DataFrame) -> str:
    """Caption lines: why energy is missing, burst delivery, thin p99s (once each)."""
    notes = []
    if "energy_note" in frame:
        reasons = sorted({str(n) for n in frame["energy_note"].dropna()
                          if str(n).startswith("not")})
        notes += [f"energy {reason}" for reason in reasons]
    if "burst_delivery" in frame and (frame["burst_delivery"] == True).any():  # noqa: E712
        notes.append("* tokens arrived in bursts: TTFT/TPOT there are not per-token timings")
    if "client_kept_up" in frame and (frame["client_kept_up"] == False).any():  # noqa: E712
        notes.append("the client fell behind on some points (client_kept_up in summary.csv): "
                     "their latencies include its own delay")
    if "p99_low_n" in frame and (frame["p99_low_n"] == True).any():  # noqa: E712
        notes.append("p99 from fewer than 100 requests is close to the maximum (see n, CI)")
    return "\n".join(notes)


def _short(reason: object, limit: int = 60) -> str:
    text = str(reason or "").splitlines()[0] if reason else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
