"""Each point's TTFT and ITL distributions as histograms, the point chosen from a list: every
successful request's TTFT and every gap between its token-bearing chunks (the definitions of
harness.metrics.point_metrics), binned here so that the page carries counts, not samples."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from harness.metrics.point_metrics import itl, ttft
from harness.report.charts import Figure, figure
from harness.report.frames import series_label
from harness.store.requests_file import ParquetRequests
from harness.store.run_store import StoredRun

BINS = 30
METRICS = ("TTFT", "ITL")


def _samples_ms(path) -> dict[str, np.ndarray]:
    """The point's TTFT of each successful request and ITL of each of their chunk gaps."""
    found: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}
    for batch in ParquetRequests(path).batches(chunks=True):
        ok = batch.rows.ok
        found["TTFT"].append(ttft(batch.rows)[ok])
        found["ITL"].append(itl(batch.chunks, ok))
    return {name: 1000 * np.concatenate(parts) if parts else np.empty(0)
            for name, parts in found.items()}


def _binned(values: np.ndarray) -> list[tuple[float, float, int]]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return []
    counts, edges = np.histogram(values, bins=BINS)
    return [(float(a), float(b), int(c)) for a, b, c in zip(edges[:-1], edges[1:], counts,
                                                            strict=True)]


def histogram_frame(runs: list[StoredRun]) -> pd.DataFrame:
    """One row per (point, metric, bin): its edges in ms and how many samples fell in it."""
    rows = []
    for run in runs:
        prefix = f"{run.name}: " if len(runs) > 1 else ""
        for result in sorted(run.points, key=lambda r: r.sort_key):
            path = run.root / "cells" / result.cell / "points" / f"{result.point}.requests.parquet"
            if not path.exists():
                continue
            label = f"{prefix}{series_label(result)} {result.point}"
            try:
                samples = _samples_ms(path)
            except (KeyError, ValueError, OSError):
                continue  # a requests file without per-chunk times (or unreadable): no bins
            for metric, values in samples.items():
                rows += [{"label": label, "metric": metric, "start": a, "end": b, "count": c}
                         for a, b, c in _binned(values)]
    return pd.DataFrame(rows)


def _with_limit(data: pd.DataFrame, limits: dict[str, float]) -> pd.DataFrame:
    """Each bin with the SLO's limit on its metric (`limit_ms`), where the limit falls within
    its point's range (beyond it, a rule would squeeze the bars to one side)."""
    top = data.groupby(["label", "metric"])["end"].transform("max")
    limit = data["metric"].map(limits)
    return data.assign(limit_ms=limit.where(limit <= top))


def _panel(data: pd.DataFrame, metric: str, pick: alt.Parameter) -> alt.LayerChart:
    base = alt.Chart(data[data["metric"] == metric]).transform_filter(alt.datum.label == pick)
    bars = base.mark_bar(color="#4c78a8").encode(
        x=alt.X("start:Q", bin="binned", title=f"{metric} (ms)"), x2="end:Q",
        y=alt.Y("count:Q", title="requests" if metric == "TTFT" else "token gaps"),
        tooltip=[alt.Tooltip("start:Q", format=",.1f"), alt.Tooltip("end:Q", format=",.1f"),
                 "count"])
    rule = base.mark_rule(color="#c0392b", strokeDash=[6, 3], strokeWidth=1.5).encode(
        x="max(limit_ms):Q")
    return alt.layer(bars, rule).properties(width=360, height=220,
                                            title=f"{metric} distribution")


def histograms(data: pd.DataFrame, slo_limits: dict[str, float]) -> alt.HConcatChart | None:
    """TTFT and ITL histograms of the point chosen, the SLO's limit on each a red rule (the
    SLO's first limit on that metric)."""
    if data.empty:
        return None
    limits = {}
    for key, ms in slo_limits.items():
        metric = key.split("_")[0].upper()
        if metric in METRICS and key.endswith("_ms") and ms is not None:
            limits.setdefault(metric, ms)
    data = _with_limit(data, limits)
    labels = list(dict.fromkeys(data["label"]))
    pick = alt.param(name="histogram_point", value=labels[0],
                     bind=alt.binding_select(options=labels, name="point "))
    return alt.hconcat(*(_panel(data, m, pick) for m in METRICS)).add_params(pick).properties(
        title=alt.Title("TTFT and ITL distributions of the chosen point",
                        subtitle="every successful request's TTFT; every gap between its "
                                 "token-bearing chunks; red: the SLO's limit, where it falls "
                                 "within the point's range"))


def histogram_figure(runs: list[StoredRun], slo_limits: dict[str, float]) -> Figure:
    return figure("latency-histograms", "TTFT and ITL distributions",
                  histograms(histogram_frame(runs), slo_limits),
                  "no point has a requests file to draw")
