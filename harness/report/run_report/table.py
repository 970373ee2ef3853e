"""The results table people read in a terminal: throughput, latency percentiles, energy, SLO
and $/Mtok per (variant, batch size, load point), from the summary frame."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text


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


def _workload(row: dict) -> str:
    """The named workload (matrix.workloads), '' where the run has none."""
    value = row.get("workload")
    return value if isinstance(value, str) else ""


def _cell(row: dict) -> str:
    """Variant (workload) and batch size in one column, for narrow terminals: bf16-b16."""
    batch = _batch(row["max_num_seqs"])
    name = f"{row['variant']}-{_workload(row)}" if _workload(row) else row["variant"]
    return name if batch == "-" else f"{name}-b{batch}"


def _load(row: dict) -> str:
    """The point, or a phase of the scenario above it (never confused with the scenario)."""
    phase = row.get("phase")
    return f"  ↳ {phase}" if isinstance(phase, str) else str(row["point"])


def _slo(row: dict) -> str:
    meets = row.get("slo_meets")
    if meets is None or (isinstance(meets, float) and pd.isna(meets)):
        return ""
    return "[green]met[/green]" if meets else "[red]missed[/red]"


# Terminals narrower than these get fewer columns (summary.csv always has every one):
MEDIUM, MEDIUM_DROPS = 150, ("TPOT p50/p99 ms", "$/Mtok total", "fidelity KL mean/p99")
NARROW, NARROW_DROPS = 100, (*MEDIUM_DROPS, "variant", "workload", "batch", "req/s",
                             "E2E p50/p99 ms")


def _slo_columns(frame: pd.DataFrame) -> list[tuple[str, str, Callable[[dict], str]]]:
    """A column for each SLO limit, its judged value (the percentile the SLO names, from the
    intended send on open-loop points), beside the SLO's verdict."""
    found = []
    for column in frame.columns:
        if column.startswith("slo_") and column.endswith("_ms"):
            metric, stat = column.removeprefix("slo_").removesuffix("_ms").split("_")
            found.append((f"{metric.upper()} {stat} ms (SLO)", "right",
                          lambda row, column=column: _fmt(row.get(column))))
    return found


def _columns(fidelity: bool, slo: list | None = None
             ) -> list[tuple[str, str, Callable[[dict], str]]]:
    """(header, justify, cell of an ok row) of every column."""
    burst = lambda row: "*" if row.get("burst_delivery") is True else ""  # noqa: E731
    columns = [
        ("cell", "left", _cell),
        ("variant", "left", lambda row: row["variant"]),
        ("workload", "left", _workload),
        ("batch", "right", lambda row: _batch(row["max_num_seqs"])),
        ("load", "left", _load),
        ("ok/err", "right", lambda row: f"{row['completed']}/{row['errors']}"),
        ("req/s", "right", lambda row: _fmt(row["request_throughput"], 2)),
        ("out tok/s", "right", lambda row: _fmt(row["output_throughput"])),
        ("TTFT p50/p99 ms", "right",
         lambda row: f"{_fmt(row['ttft_ms_p50'])}/{_fmt(row['ttft_ms_p99'])}{burst(row)}"),
        ("TPOT p50/p99 ms", "right",
         lambda row: f"{_fmt(row['tpot_ms_p50'], 2)}/{_fmt(row['tpot_ms_p99'], 2)}{burst(row)}"),
        ("E2E p50/p99 ms", "right",
         lambda row: f"{_fmt(row['e2e_ms_p50'])}/{_fmt(row['e2e_ms_p99'])}"),
        *(slo or []),
        ("SLO", "left", _slo),
        ("J/out tok", "right", lambda row: _fmt(row.get("j_per_output_token"), 3)),
        ("$/Mtok out", "right", lambda row: _fmt(row["usd_per_mtok_output"], 3)),
        ("$/Mtok total", "right", lambda row: _fmt(row["usd_per_mtok_total"], 3)),
    ]
    if fidelity:
        columns.append(("fidelity KL mean/p99", "left", _fidelity))
    return columns


def table_columns(frame: pd.DataFrame) -> list[tuple[str, str, Callable[[dict], str]]]:
    """The columns worth showing: every one with something in some row (energy on a CPU,
    $/Mtok without a price are left out)."""
    ok_rows = [row for row in frame.to_dict("records") if row["status"] == "ok"]
    columns = _columns("fidelity" in frame, _slo_columns(frame))
    return [(name, justify, cell) for name, justify, cell in columns
            if name in _ALWAYS or any(cell(row) not in ("-", "") for row in ok_rows)]


def results_table(frame: pd.DataFrame, title: str = "Results", width: int | None = None
                  ) -> Table:
    """The human view: throughput, latency percentiles, energy, SLO and $/Mtok per row.
    A column with nothing in any row (energy on a CPU, $/Mtok without a price) is left out;
    in a terminal narrower than NARROW, so are NARROW_DROPS (summary.csv has them all)."""
    rows = frame.to_dict("records")
    columns = table_columns(frame)
    drops = ("cell",)
    if width is not None and width < MEDIUM:
        drops = NARROW_DROPS if width < NARROW else (*MEDIUM_DROPS, "cell")
    columns = [column for column in columns if column[0] not in drops]
    if width is not None:
        ok_rows = [row for row in rows if row["status"] == "ok"]
        more = _to_fit(ok_rows, columns, width)
        if {"variant", "batch"} & set(more):  # one "cell" column names them in less room
            every = table_columns(frame)
            columns = [every[0], *(c for c in columns if c[0] not in ("variant", "batch"))]
            drops = (*drops, "variant", "batch")
            more = _to_fit(ok_rows, columns, width)
        drops = (*dict.fromkeys((*drops, *more)),)
        columns = [column for column in columns if column[0] not in more]
    compact = len(drops) > 1
    table = Table(title=title, header_style="bold", show_lines=False,
                  box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD, pad_edge=not compact)
    for name, justify, _cell in columns:
        # numbers whole, never cut: a narrow terminal wraps the names instead
        table.add_column(name, justify=justify, no_wrap=justify == "right", overflow="fold")
    for row in rows:
        if row["status"] == "ok":
            table.add_row(*(cell(row) for _name, _justify, cell in columns))
        else:
            table.add_row(*_failed_cells(row, [name for name, _, _ in columns]))
    notes = table_notes(frame)
    if compact:
        left_out = ", ".join(name.split(" p50")[0].replace(" KL mean/p99", "")
                             for name in drops if name not in ("cell", "variant", "batch"))
        notes = "\n".join(filter(None, [notes, f"(a narrow terminal: {left_out} left out; "
                                         "summary.csv has every column)"]))
    if notes:
        table.caption = notes
    return table


# What goes first where the columns left still do not fit: never a number cut or wrapped
FIT_DROPS = ("J/out tok", "$/Mtok total", "TPOT p50/p99 ms", "fidelity KL mean/p99",
             "E2E p50/p99 ms", "req/s", "variant", "batch", "$/Mtok out", "TTFT p50/p99 ms")


def _to_fit(rows: list[dict], columns: list, width: int) -> list[str]:
    """The columns to leave out (in FIT_DROPS order) until the rest fit in `width`."""
    def needed(name: str, cell) -> int:
        longest = max((len(Text.from_markup(cell(row)).plain) for row in rows), default=0)
        return max(longest, len(name)) + 3  # (its padding and rule; no_wrap: its header too)

    widths = {name: needed(name, cell) for name, _, cell in columns}
    dropped = []
    for name in FIT_DROPS:
        if sum(widths.values()) <= width:
            break
        if name in widths and not (name in ("variant", "batch") and "cell" in widths):
            dropped.append(name)
            del widths[name]
    return dropped


_ALWAYS = ("cell", "variant", "batch", "load", "ok/err", "req/s", "out tok/s", "TTFT p50/p99 ms",
           "TPOT p50/p99 ms", "E2E p50/p99 ms")


def _failed_cells(row: dict, names: list[str]) -> list[str]:
    """A failed cell's row: where it ran, "failed" and the reason (in the TTFT column)."""
    cells = {"cell": _cell(row), "variant": row["variant"],
             "batch": _batch(row["max_num_seqs"]), "load": _load(row),
             "ok/err": "[red]failed[/red]",
             "TTFT p50/p99 ms": f"[red]{_short(row.get('reason'))}[/red]"}
    if "fidelity KL mean/p99" in names:
        cells["fidelity KL mean/p99"] = _fidelity(row)
    return [cells.get(name, "") for name in names]


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
    if "usd_per_hour" in frame:
        notes += [f"$/Mtok at ${price:,.2f}/h, the run's cost.usd_per_hour (`harness cost` with a "
                  "profile's `gpu:` prices that GPU's listed row instead)"
                  for price in sorted({float(p) for p in frame["usd_per_hour"].dropna()})]
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
