"""The results table people read in a terminal: throughput, latency percentiles, energy, SLO
and $/Mtok per (variant, batch size, load point), from the summary frame."""

from __future__ import annotations

import pandas as pd
from rich.table import Table


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
    fidelity = "fidelity" in frame
    if fidelity:
        columns.append(("fidelity KL mean/p99", "left"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in frame.to_dict("records"):
        extra = [_fidelity(row)] if fidelity else []
        if row["status"] != "ok":
            table.add_row(row["variant"], _batch(row["max_num_seqs"]), _load(row),
                          "[red]failed[/red]", "", "", f"[red]{_short(row.get('reason'))}[/red]",
                          "", "", "", "", "", "", *extra)
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
            _fmt(row["usd_per_mtok_output"], 3), _fmt(row["usd_per_mtok_total"], 3), *extra)
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
    if "fidelity_baseline" in frame:
        baselines = sorted({str(b) for b in frame["fidelity_baseline"].dropna()})
        notes += [f"fidelity: KL (nats/token) and top-1 agreement against {b}'s distributions "
                  "on its greedy tokens; misses: outside the config's limits (docs/metrics.md)"
                  for b in baselines]
    if "p99_low_n" in frame and (frame["p99_low_n"] == True).any():  # noqa: E712
        notes.append("p99 from fewer than 100 requests is close to the maximum (see n, CI)")
    return "\n".join(notes)


def _fidelity(row: dict) -> str:
    """The variant's fidelity against the baseline, red where it misses the limits."""
    text = str(row.get("fidelity") or "-")
    if isinstance(row.get("fidelity_miss"), str):
        return f"[red]{text} misses[/red]"
    return text


def _short(reason: object, limit: int = 60) -> str:
    text = str(reason or "").splitlines()[0] if reason else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
