"""Does summary.csv still say what the points say? Its rows against the rows the stored points
give now (`harness validate`): an edited summary.csv, the table people paste into a
spreadsheet, is caught."""

from __future__ import annotations

import math

import pandas as pd

from harness.report.run_report.summary import summary_frame
from harness.store.run_store import StoredRun

KEY = ["cell", "point", "phase"]
CHECKED = ("requests", "completed", "errors", "request_throughput", "output_throughput",
           "total_token_throughput", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "e2e_ms_p50",
           "e2e_ms_p99", "slo_meets")


def _same(written: object, found: object) -> bool:
    if pd.isna(written) and pd.isna(found):
        return True
    if isinstance(found, bool) or isinstance(written, bool):
        return str(written) == str(found)
    try:
        return math.isclose(float(written), float(found), rel_tol=1e-9, abs_tol=1e-9)
    except (TypeError, ValueError):
        return str(written) == str(found)


def summary_problems(run: StoredRun) -> list[str]:
    """Each row and column where summary.csv disagrees with the points (or a row missing)."""
    path = run.root / "summary.csv"
    try:
        written = pd.read_csv(path, dtype={"phase": object})
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return []  # none written yet: `harness report` writes it
    found = summary_frame(run, with_phases=True)
    if found.empty:
        return []
    keyed = {tuple(_key(row)): row for row in written.to_dict("records")}
    problems = []
    for row in found.to_dict("records"):
        label = "/".join(str(part) for part in _key(row) if part is not None)
        other = keyed.get(tuple(_key(row)))
        if other is None:
            problems.append(f"summary.csv: no row for {label}")
            continue
        problems += [f"summary.csv: {label} {column} is {_shown(other[column])}, the point "
                     f"says {_shown(row[column])}" for column in CHECKED
                     if column in row and column in other and not _same(other[column],
                                                                        row[column])]
    return problems


def _shown(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _key(row: dict) -> list:
    return [None if pd.isna(row.get(name)) else row.get(name) for name in KEY]
