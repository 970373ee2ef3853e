"""The latency chart: TTFT, TPOT and E2E against load, each with p50, p99 and the statistic
the SLO judges (drawn beside its limit), their 95% CIs as bands; several runs: a row per
variant and batch size, each run in its colour and shape."""

from __future__ import annotations

import altair as alt
import pandas as pd

from harness.report.charts import series_color
from harness.report.run_marks import run_color, run_marks

STAT_DASH = {"mean": [1, 3], "p50": [1, 0], "p90": [4, 2], "p95": [8, 3, 2, 3], "p99": [6, 4]}
LATENCY_SIDE = 250


def _metric_limits(slo_limits: dict[str, float], metric: str) -> dict[str, float]:
    """The SLO's limits on `metric` ('TTFT'), by statistic: {'p95': 500.0}."""
    prefix = metric.lower() + "_"
    return {key[len(prefix):].removesuffix("_ms"): ms for key, ms in slo_limits.items()
            if key.startswith(prefix) and key.endswith("_ms") and ms is not None}


def slo_rules(limits: dict[str, float], metric: str, field: str = "ms") -> list[alt.Chart]:
    """The SLO's limits as red dashed rules, each labelled with its statistic."""
    if not limits:
        return []
    rules = pd.DataFrame({"limit": [f"SLO: {metric} {stat} ≤ {ms:g} ms"
                                    for stat, ms in limits.items()],
                          field: list(limits.values())})
    return [alt.Chart(rules).mark_rule(color="#c0392b", strokeDash=[6, 3], strokeWidth=1.5)
            .encode(y=f"{field}:Q", tooltip=["limit", field]),
            alt.Chart(rules).mark_text(align="left", dx=4, dy=-6, color="#c0392b")
            .encode(y=f"{field}:Q", x=alt.value(0), text=alt.Text("limit:N"))]


def _drawn_stats(limits: dict[str, float]) -> list[str]:
    """p50, p99 and the statistics the SLO's limits judge, in STAT_DASH's order."""
    return [s for s in STAT_DASH if s in ("p50", "p99") or s in limits]


def _latency_panel(data: pd.DataFrame, metric: str, slo_limits: dict[str, float],
                   load_title: str, runs: list[str] | None, color: alt.Color) -> alt.LayerChart:
    """One metric against load: p50, p99 and the statistics the SLO judges on it, with their
    95% CIs as bands and the SLO's limits as rules (one dash per statistic in every panel)."""
    limits = _metric_limits(slo_limits, metric)
    every = _drawn_stats({stat: 0 for m in ("TTFT", "TPOT", "E2E")
                          for stat in _metric_limits(slo_limits, m)})
    data = data[(data["metric"] == metric) & data["stat"].isin(_drawn_stats(limits))]
    apart = [alt.Detail("stat:N"), *([alt.Detail("run:N")] if runs else [])]
    dash = alt.StrokeDash("stat:N", title="percentile", sort=every, scale=alt.Scale(
        domain=every, range=[STAT_DASH[s] for s in every]),
        legend=alt.Legend(symbolSize=400, symbolStrokeWidth=2))
    base = alt.Chart(data).encode(x=alt.X("load:Q", title=load_title), color=color)
    lines = base.mark_line().encode(y=alt.Y("ms:Q", title=f"{metric} (ms)"), strokeDash=dash,
                                    detail=apart)
    band = base.mark_area(opacity=0.12).encode(y="ci_low:Q", y2="ci_high:Q", detail=apart)
    dots = base.mark_point(filled=True, size=40).encode(
        y="ms:Q", detail=apart, shape=run_marks(runs)["shape"] if runs else alt.Undefined,
        tooltip=["run", "series", "stat", "load", alt.Tooltip("ms:Q", format=",.1f"),
                 alt.Tooltip("ci_low:Q", format=",.1f"),
                 alt.Tooltip("ci_high:Q", format=",.1f"), "n"])
    # the lines first: the legend's symbols are theirs, never the faint bands'
    return alt.layer(lines, band, dots, *slo_rules(limits, metric)).properties(
        width=LATENCY_SIDE, height=220, title=f"{metric} (ms)")


def latency(lat: pd.DataFrame, slo_limits: dict[str, float], load_title: str,
            runs: list[str] | None = None) -> alt.HConcatChart | alt.VConcatChart | None:
    """TTFT, TPOT and E2E against load: p50, p99 and the percentile the SLO judges (its line
    beside it), CIs as bands. Several runs: a row per variant and batch size, the run its
    colour and shape."""
    if lat.empty:
        return None
    subtitle = "p50 solid, p99 dashed, the SLO's own percentile dash-dot; bands: 95% " \
               "bootstrap CI; red: the SLO's limit"
    metrics = ("TTFT", "TPOT", "E2E")
    if not runs:
        panels = [_latency_panel(lat, m, slo_limits, load_title, None, series_color(lat))
                  for m in metrics]
        return alt.hconcat(*panels).resolve_scale(y="independent").properties(
            title=alt.Title("Latency against load", subtitle=subtitle))
    rows = []
    for series in dict.fromkeys(lat["series"]):
        panels = [_latency_panel(lat[lat["series"] == series], m, slo_limits, load_title, runs,
                                 run_color(runs)) for m in metrics]
        rows.append(alt.hconcat(*panels).resolve_scale(y="independent").properties(
            title=series))
    return alt.vconcat(*rows).properties(
        title=alt.Title("Latency against load, run by run", subtitle=subtitle))
