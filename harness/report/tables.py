"""summary.csv and the results table: one row per (variant, batch size, load point)."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from harness.cost.model import usd_per_mtok
from harness.store import RunStore, write_atomic

LATENCIES = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
ENERGY = ("energy_j", "mean_power_w", "idle_power_w", "mean_power_above_idle_w",
          "j_per_output_token", "j_per_token", "output_tokens_per_j", "peak_temp_c",
          "throttle_reasons", "mean_gpu_util_pct", "peak_mem_used_gib", "energy_short_window",
          "energy_note")
ENGINE = ("running_mean", "running_max", "waiting_max", "kv_cache_usage_peak", "preemptions",
          "prefix_hit_rate")
STATS = ("n", "mean", "p50", "p90", "p95", "p99")
KEYS = ["variant", "max_num_seqs", "tensor_parallel_size", "concurrency"]


def point_row(result: dict, usd_per_hour: float | None) -> dict:
    m = result["metrics"]
    server = result.get("server", {})
    row = {
        "cell": result["cell"], "point": result["point"],
        **{key: result[key] for key in KEYS},
        "status": "ok",
        "requests": m["requests"], "completed": m["completed"], "errors": m["errors"],
        "duration_s": m["duration_s"],
        "request_throughput": m["request_throughput"],
        "output_throughput": m["output_throughput"],
        "total_token_throughput": m["total_token_throughput"],
        "prompt_tokens": m["prompt_tokens"], "output_tokens": m["output_tokens"],
    }
    for name in LATENCIES:
        for stat in STATS:
            row[f"{name}_{stat}"] = m[name][stat]
    energy = result.get("energy") or {}
    engine = server.get("engine") or {}
    row.update({key: energy.get(key) for key in ENERGY})
    row["cpu_energy_j"] = (result.get("cpu_energy") or {}).get("energy_j")
    row.update({f"engine_{key}": engine.get(key) for key in ENGINE})
    row["gpu_count"] = len((energy.get("window") or {}).get("energy_j_per_gpu") or {}) or None
    row.update({
        "output_length_mismatches": m["output_length_mismatches"],
        "input_length_mismatches": m.get("input_length_mismatches"),
        "server_prompt_tokens": server.get("prompt_tokens"),
        "server_generation_tokens": server.get("generation_tokens"),
        "token_check": server.get("token_check"),
        "usd_per_hour": usd_per_hour,
        "usd_per_mtok_output": usd_per_mtok(usd_per_hour, m["output_throughput"]),
        "usd_per_mtok_total": usd_per_mtok(usd_per_hour, m["total_token_throughput"]),
        "reason": None,
    })
    return row


def failed_rows(failure: dict) -> list[dict]:
    reason = failure.get("reason", "")
    return [{"cell": failure["cell"], "point": point["id"],
             **{key: failure[key] for key in KEYS[:3]}, "concurrency": point["concurrency"],
             "status": "failed", "reason": reason} for point in failure.get("points", [])]


def summary_frame(store: RunStore, usd_per_hour: float | None) -> pd.DataFrame:
    rows = [point_row(result, usd_per_hour) for result in store.points()]
    done = {(row["cell"], row["point"]) for row in rows}
    for failure in store.failures():
        rows += [r for r in failed_rows(failure) if (r["cell"], r["point"]) not in done]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(KEYS, kind="stable").reset_index(drop=True)


def write_summary(store: RunStore, usd_per_hour: float | None) -> pd.DataFrame:
    frame = summary_frame(store, usd_per_hour)
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


def results_table(frame: pd.DataFrame, title: str = "Results") -> Table:
    """The human view: throughput, latency percentiles and $/Mtok per row."""
    table = Table(title=title, header_style="bold", show_lines=False)
    columns = [("variant", "left"), ("batch", "right"), ("conc", "right"), ("ok/err", "right"),
               ("req/s", "right"), ("out tok/s", "right"), ("TTFT p50/p99 ms", "right"),
               ("TPOT p50/p99 ms", "right"), ("E2E p50/p99 ms", "right"),
               ("J/out tok", "right"), ("$/Mtok out", "right"), ("$/Mtok total", "right")]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in frame.to_dict("records"):
        if row["status"] != "ok":
            table.add_row(row["variant"], _fmt(row["max_num_seqs"]), str(row["concurrency"]),
                          "[red]failed[/red]", "", "", f"[red]{_short(row.get('reason'))}[/red]",
                          "", "", "", "", "")
            continue
        table.add_row(
            row["variant"], _fmt(row["max_num_seqs"]), str(row["concurrency"]),
            f"{row['completed']}/{row['errors']}",
            _fmt(row["request_throughput"], 2), _fmt(row["output_throughput"]),
            f"{_fmt(row['ttft_ms_p50'])}/{_fmt(row['ttft_ms_p99'])}",
            f"{_fmt(row['tpot_ms_p50'], 2)}/{_fmt(row['tpot_ms_p99'], 2)}",
            f"{_fmt(row['e2e_ms_p50'])}/{_fmt(row['e2e_ms_p99'])}",
            _fmt(row.get("j_per_output_token"), 3),
            _fmt(row["usd_per_mtok_output"], 3), _fmt(row["usd_per_mtok_total"], 3))
    notes = energy_notes(frame)
    if notes:
        table.caption = notes
    return table


def energy_notes(frame: pd.DataFrame) -> str:
    """A caption saying why energy is missing, once, instead of a column of dashes."""
    if "energy_note" not in frame:
        return ""
    reasons = sorted({str(n) for n in frame["energy_note"].dropna() if str(n).startswith("not")})
    return "; ".join(f"energy {reason}" for reason in reasons)


def _short(reason: object, limit: int = 60) -> str:
    text = str(reason or "").splitlines()[0] if reason else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
