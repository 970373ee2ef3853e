"""The capacity search, seen: per cell, the SLO's judged percentile against the offered rate
(with the SLO's line and the capacity found) and, beside it, what the server achieved against
what was offered (the diagonal is a server that kept up). Points that were not sustained are
marked: they missed whatever their percentile says."""

from __future__ import annotations

import altair as alt
import pandas as pd

from harness.metrics.slo import judged_distribution
from harness.report.charts import Figure, figure
from harness.store.run_store import StoredRun

SIDE = 260
OUTCOMES = ["met", "missed", "not sustained"]
OUTCOME_COLORS = ["#2ca02c", "#d62728", "#9467bd"]


def search_frame(run: StoredRun) -> pd.DataFrame:
    """One row per capacity-search point: its offered and achieved rate, the judged value of
    the SLO's first latency limit, and how it came out."""
    slo = run.manifest.config.slo
    limit = slo.limits()[0] if slo is not None and slo.limits() else None
    chosen = {cell: record.rate_rps for cell, record in run.capacities.items()}
    rows = []
    for point in sorted(run.points, key=lambda p: p.sort_key):
        if point.kind != "search":
            continue
        sustained = point.sustained
        value = (judged_distribution(point.metrics, limit.metric).stat(limit.stat)
                 if limit else None)
        outcome = ("not sustained" if sustained is not None and not sustained.sustained
                   else "met" if point.slo is not None and point.slo.meets else "missed")
        rows.append({
            "cell": point.cell, "rate": point.rate, "value_ms": value,
            "achieved": sustained.achieved_rps if sustained and sustained.achieved_rps
            is not None else point.metrics.request_throughput,
            "outcome": outcome, "capacity": chosen.get(point.cell),
            "why": "; ".join(point.slo.violations) if point.slo else "",
            "limit": limit.key if limit else None, "limit_ms": limit.ms if limit else None})
    return pd.DataFrame(rows)


def _cell_charts(data: pd.DataFrame, cell: str) -> alt.HConcatChart:
    color = alt.Color("outcome:N", scale=alt.Scale(domain=OUTCOMES, range=OUTCOME_COLORS),
                      title="step")
    rate = alt.X("rate:Q", title="offered rate (req/s)", scale=alt.Scale(type="log"))
    tooltip = ["rate", alt.Tooltip("value_ms:Q", format=",.1f"),
               alt.Tooltip("achieved:Q", format=",.2f"), "outcome", "why"]
    base = alt.Chart(data)
    limit = data["limit"].iloc[0]
    latency = base.mark_point(size=80, filled=True).encode(
        x=rate, y=alt.Y("value_ms:Q", title=limit or "ms"),
        color=color, shape=alt.Shape("outcome:N", scale=alt.Scale(
            domain=OUTCOMES, range=["circle", "circle", "cross"]), legend=None),
        tooltip=tooltip)
    layers = [latency]
    if data["limit_ms"].notna().any():
        layers.append(base.mark_rule(strokeDash=[4, 3], color="#555").encode(
            y="mean(limit_ms):Q"))
    if data["capacity"].notna().any():
        layers.append(base.mark_rule(color="#2ca02c").encode(x="mean(capacity):Q"))
    kept_up = alt.Chart(pd.DataFrame({"rate": [data["rate"].min(), data["rate"].max()]})) \
        .mark_line(strokeDash=[2, 2], color="#999").encode(
            x=alt.X("rate:Q", scale=alt.Scale(type="log")), y="rate:Q")
    achieved = base.mark_point(size=80, filled=True).encode(
        x=rate, y=alt.Y("achieved:Q", title="achieved (req/s)"), color=color,
        tooltip=tooltip)
    return alt.hconcat(
        alt.layer(*layers).properties(width=SIDE, height=SIDE * 0.6,
                                      title=f"{cell}: the SLO against the offered rate"),
        alt.layer(kept_up, achieved).properties(width=SIDE, height=SIDE * 0.6,
                                                title=f"{cell}: achieved against offered"))


def search_figure(runs: list[StoredRun]) -> Figure:
    """The capacity search of every cell of the first run that has one."""
    for run in runs:
        data = search_frame(run)
        if data.empty:
            continue
        cells = [_cell_charts(data[data["cell"] == cell], cell)
                 for cell in dict.fromkeys(data["cell"])]
        chart = alt.vconcat(*cells).properties(title=alt.Title(
            f"Capacity search ({run.name})", subtitle=[
                "steps: green met the SLO, red missed it, purple crosses were not sustained "
                "(they miss whatever their percentile); green line: the capacity found;",
                "dashed: the SLO's limit; right: the diagonal is a server that served all it "
                "was offered"]))
        return figure("capacity-search", "Capacity search", chart)
    return figure("capacity-search", "Capacity search", None,
                  "no capacity search in this run (add slo: and capacity: to the config)")
