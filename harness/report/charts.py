"""The report's charts as Vega-Lite specs (built with altair): each is drawn in the page by the
inlined Vega runtime and exported to PNG by vl-convert, from the same spec. A chart whose data
was not measured is a `Figure` with a reason instead of a spec, never a chart of zeros."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from harness.report.run_marks import run_bars, run_color, run_fill, run_marks

WIDTH, HEIGHT = 560, 320
LEGEND_LIMIT = 1000   # px: a legend entry is never cut (a chart wider than its box scrolls)
SLO_OPACITY = alt.condition("datum.meets_slo === false", alt.value(0.3), alt.value(1.0))


@dataclass
class Figure:
    key: str                   # file name of its PNG, id in the page
    title: str
    spec: dict | None = None   # Vega-Lite, or None with the reason
    reason: str | None = None


def figure(key: str, title: str, chart: alt.TopLevelMixin | None,
           reason: str | None = None) -> Figure:
    if chart is None:
        return Figure(key, title, reason=reason)
    chart = chart.configure_axis(labelFontSize=12, titleFontSize=13) \
        .configure_legend(labelFontSize=12, titleFontSize=12, labelLimit=LEGEND_LIMIT,
                          titleLimit=LEGEND_LIMIT) \
        .configure_title(fontSize=15, anchor="start")
    return Figure(key, title, chart.to_dict())


def series_color(data: pd.DataFrame) -> alt.Color:
    """One colour per variant and batch size, listed in the order the data has them."""
    return alt.Color("series:N", title="variant and batch size",
                     sort=list(dict.fromkeys(data["series"])))


def _series(data: pd.DataFrame, runs: list[str] | None) -> dict:
    """Colour by line; with several runs, the run is the colour and the shape (as in every
    chart of the page) and the variant and batch size the line's dash."""
    if not runs:
        return {"color": series_color(data)}
    return {**run_marks(runs), "strokeDash": alt.StrokeDash(
        "series:N", title="variant and batch size (line dash)",
        sort=list(dict.fromkeys(data["series"])))}


def pareto(points: pd.DataFrame, runs: list[str] | None = None) -> alt.Chart | None:
    """Output tok/s per GPU against tok/s per user, one line per (run,) variant and batch."""
    if points.empty:
        return None
    data = points.dropna(subset=["interactivity"])
    data = data[data["kind"] != "profile"]
    if data.empty:
        return None
    per = sorted(set(data["per"]))
    unit = "per GPU" if per == ["GPU"] else "per machine" if per == ["machine"] else \
        "per GPU (per machine on runs without one)"
    x = alt.X("interactivity:Q", title="interactivity: tok/s per user (1000 / TPOT p50)",
              scale=alt.Scale(zero=False))
    y = alt.Y("output_tps_per_gpu:Q", title=f"throughput: output tok/s {unit}")
    encoding = _series(data, runs)
    shape = encoding.pop("shape", alt.Undefined)
    base = alt.Chart(data).encode(x=x, y=y, order=alt.Order("load:Q"), **encoding)
    # a line joins a cell's closed-loop points (its concurrency sweep); rates, searches and
    # trace replays are offered loads on another axis of load, so they stay dots
    line = base.mark_line(strokeWidth=2, opacity=0.7).encode(
        detail=alt.Detail("run:N")).transform_filter(alt.datum.kind == "closed")
    dots = base.mark_point(size=90, filled=True).encode(
        opacity=SLO_OPACITY, shape=shape, strokeDash=alt.Undefined,
        tooltip=["run", "series", "point", "load", "slo",
                 alt.Tooltip("output_tps_per_gpu:Q", format=",.0f"),
                 alt.Tooltip("interactivity:Q", format=",.1f")])
    edge = alt.Chart(frontier(data[data["meets_slo"] != False])).mark_line(  # noqa: E712
        strokeWidth=3, opacity=0.35).encode(
        x=x, y=y, order=alt.Order("interactivity:Q"), detail=alt.Detail("run:N"),
        color=run_color(runs) if runs else alt.value("#333"))
    return (edge + line + dots).properties(
        width=WIDTH, height=HEIGHT,
        title=alt.Title("Throughput against interactivity",
                        subtitle=["wide line: the frontier of the points that meet the SLO (no "
                                  "other is both faster per user and higher in throughput);",
                                  "thin lines join each cell's closed-loop points; open-loop "
                                  "points are dots; faded points miss the run's SLO"]))


def frontier(data: pd.DataFrame) -> pd.DataFrame:
    """Each run's Pareto frontier: the points no other point of the run beats on both
    interactivity and throughput, in order of interactivity."""
    columns = ["run", "interactivity", "output_tps_per_gpu"]
    parts = []
    for _, run in data.groupby("run", sort=False):
        ordered = run.sort_values(["interactivity", "output_tps_per_gpu"], ascending=False)
        best = ordered["output_tps_per_gpu"].cummax()
        kept = ordered[ordered["output_tps_per_gpu"] >= best]
        parts.append(kept.drop_duplicates("interactivity"))
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(
        columns=columns)


def point_costs(costs: pd.DataFrame, apis: pd.DataFrame,
                runs: list[str] | None = None) -> alt.LayerChart | None:
    """$/Mtok of each point, rented and owned, with the dated API prices as rules. Several
    runs: the run is the colour and shape, side by side; owned points are hollow."""
    if costs.empty:
        return None
    data = costs.assign(label=lambda f: f["variant"] + " b" + f["max_num_seqs"].astype(str)
                        + " " + f["point"])
    if runs:
        marks = {**run_marks(runs), "xOffset": alt.XOffset("run:N", sort=runs),
                 "fill": alt.condition("datum.side === 'owned'", alt.value("white"),
                                       run_fill(runs))}
    else:
        marks = {"color": alt.Color("side:N", title="self-hosted", scale=alt.Scale(
            range=["#1f77b4", "#ff7f0e"])), "shape": alt.Shape("side:N")}
    dots = alt.Chart(data).mark_point(size=90, filled=not runs, strokeWidth=2).encode(
        x=alt.X("label:N", title="point (variant, batch size, load)", sort=None,
                axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("usd_per_mtok:Q", title="$ per million tokens (profile's mix)",
                scale=alt.Scale(type="log")),
        opacity=SLO_OPACITY, **marks,
        tooltip=["run", "label", "side", alt.Tooltip("usd_per_mtok:Q", format="$.4g"),
                 "meets_slo"])
    layers = [dots]
    if not apis.empty:
        layers.append(alt.Chart(apis).mark_rule(strokeDash=[5, 3], strokeWidth=1.5).encode(
            y="api_usd_per_mtok:Q", tooltip=["label"],
            color=alt.Color("label:N", title="hosted API, $/Mtok (date of its price data)",
                            scale=alt.Scale(scheme="tableau20"),
                            sort=alt.EncodingSortField("api_usd_per_mtok", order="descending"))))
    return alt.layer(*layers).resolve_scale(color="independent", shape="independent").properties(
        width=WIDTH, height=HEIGHT,
        title=alt.Title("Cost per point against the APIs",
                        subtitle="dashed: hosted APIs at this traffic's mix, with the date "
                                 "of their price data; faded points miss the profile's SLO"))


def monthly_bills(bills: pd.DataFrame, ranges: pd.DataFrame, traffic: float | None,
                  run: str | None = None) -> alt.VConcatChart | alt.LayerChart | None:
    """The monthly bill against monthly traffic, self-hosted steps against API lines; under
    it, the Answer's break-even ranges: where each self-hosted option costs less than the
    cheapest API, one lane per variant and side."""
    if bills.empty:
        return None
    x = alt.X("mtok_month:Q", title="traffic (million tokens a month)",
              scale=alt.Scale(type="log", nice=False))
    y = alt.Y("usd_month:Q", title="bill ($ a month)", scale=alt.Scale(type="log"))
    lines = alt.Chart(bills).mark_line(interpolate="step-after", strokeWidth=2).encode(
        x=x, y=y, color=alt.Color("who:N", title="bill of", scale=alt.Scale(scheme="tableau20")),
        strokeDash=alt.StrokeDash("kind:N", title="kind", scale=alt.Scale(
            domain=["self-hosted", "API"], range=[[1, 0], [5, 3]])),
        tooltip=["who", alt.Tooltip("mtok_month:Q", format=",.0f"),
                 alt.Tooltip("usd_month:Q", format="$,.0f")])
    layers = [lines, *_traffic_marker(traffic, "mtok_month:Q")]
    bill = alt.layer(*layers).properties(
        width=WIDTH, height=HEIGHT,
        title=alt.Title("Monthly bill against monthly traffic"
                        + (f": run {run}" if run else ""),
                        subtitle="self-hosted: steps of replicas provisioned for the profile's "
                                 "peak; dashed: hosted APIs"))
    lanes = break_even_lanes(ranges, bills["mtok_month"].min(), bills["mtok_month"].max(),
                             traffic)
    if lanes is None:
        return bill
    return alt.vconcat(bill, lanes).resolve_scale(x="shared", color="independent",
                                                  strokeDash="independent")


def _traffic_marker(traffic: float | None, field: str) -> list[alt.Chart]:
    if not traffic:
        return []
    marker = pd.DataFrame({"mtok_month": [traffic], "label": ["the profile's traffic"]})
    return [alt.Chart(marker).mark_rule(color="black").encode(x=field),
            alt.Chart(marker).mark_text(align="left", dx=4, y=8).encode(x=field,
                                                                         text="label:N")]


def break_even_lanes(ranges: pd.DataFrame, low: float, high: float,
                     traffic: float | None) -> alt.LayerChart | None:
    """Each range of monthly traffic where self-hosting wins, clipped to the chart's span
    (an open-ended range runs to its right edge)."""
    if ranges.empty:
        return None
    data = ranges.assign(
        start=ranges["from_mtok_month"].clip(lower=low, upper=high),
        end=ranges["to_mtok_month"].fillna(high).clip(lower=low, upper=high),
        span=[f"{a:,.0f}+" if pd.isna(b) else f"{a:,.0f}-{b:,.0f}"
              for a, b in zip(ranges["from_mtok_month"], ranges["to_mtok_month"], strict=True)])
    data = data[data["end"] > data["start"]]
    if data.empty:
        return None
    api = data["api"].iloc[0]
    x = alt.X("start:Q", title="traffic (million tokens a month)",
              scale=alt.Scale(type="log", nice=False))
    bars = alt.Chart(data).mark_bar(color="#2ecc71", opacity=0.75, height=14).encode(
        x=x, x2="end:Q", y=alt.Y("who:N", title=None),
        tooltip=["who", "api", alt.Tooltip("span:N", title="Mtok a month"),
                 alt.Tooltip("contains_this_traffic:N", title="this traffic in it")])
    rule = [alt.Chart(pd.DataFrame({"start": [traffic]})).mark_rule(color="black")
            .encode(x="start:Q")] if traffic else []
    return alt.layer(bars, *rule).properties(
        width=WIDTH, height=28 * data["who"].nunique() + 10,
        title=alt.Title("Break-even ranges", subtitle=f"green: where self-hosting costs less "
                        f"than {api} (the cheapest API at this traffic)"))


def energy_per_token(points: pd.DataFrame, runs: list[str] | None = None
                     ) -> alt.LayerChart | None:
    """J per output token against batch size; several runs: the run is the colour and shape,
    the variant the line's dash."""
    if points.empty:
        return None
    data = points.dropna(subset=["j_per_output_token"])
    data = data[data["max_num_seqs"].notna()]
    if data.empty:
        return None
    marks = ({"color": run_color(runs), "strokeDash": alt.StrokeDash("variant:N",
                                                                     title="variant")}
             if runs else {"color": alt.Color("variant:N", title="variant")})
    base = alt.Chart(data).encode(
        x=alt.X("max_num_seqs:Q", title="batch size (max_num_seqs)"),
        y=alt.Y("j_per_output_token:Q", title="energy (J per output token)"),
        detail=["point:N", "run:N"], **marks)
    dots = base.mark_point(filled=True, size=80).encode(
        shape=run_marks(runs)["shape"] if runs else alt.Undefined,
        tooltip=["run", "series", "point", alt.Tooltip("j_per_output_token:Q", format=".4f")])
    return (base.mark_line() + dots).properties(width=WIDTH, height=HEIGHT,
                                                title="GPU energy per output token")


def telemetry(samples: pd.DataFrame) -> alt.VConcatChart | None:
    """Power, utilization, SM clock and temperature over time, for the point chosen."""
    if samples.empty:
        return None
    labels = sorted(samples["label"].unique())
    pick = alt.param(name="telemetry_point", value=labels[0],
                     bind=alt.binding_select(options=labels, name="point "))
    panels = []
    for column, title in (("power_instant_w", "power (W)"), ("util_gpu_pct", "utilization (%)"),
                          ("sm_clock_mhz", "SM clock (MHz)"), ("temp_c", "temperature (°C)")):
        panels.append(alt.Chart(samples).mark_line().encode(
            x=alt.X("t_s:Q", title="time from the point's start (s)"),
            y=alt.Y(f"{column}:Q", title=title), color=alt.Color("gpu:N", title="GPU"))
            .transform_filter(alt.datum.label == pick).properties(width=WIDTH, height=110))
    return alt.vconcat(*panels).add_params(pick).properties(
        title="GPU telemetry over the chosen point")


ENGINE_SIDE = 220   # each panel's width; the points are its rows, so labels stay level


def _engine_panel(engine: pd.DataFrame, field: str, title: str, color: str | alt.Color,
                  runs: list[str] | None, labels: bool) -> alt.LayerChart | alt.Chart:
    y = alt.Y("label:N", title=None, sort=list(dict.fromkeys(engine["label"])),
              axis=alt.Axis(labelLimit=220) if labels else None)
    base = alt.Chart(engine).encode(y=y)
    tooltip = ["run", "label", alt.Tooltip(f"{field}:Q", format=",.2f")]
    if runs:
        return run_bars(base, field, title, runs, tooltip, horizontal=True)
    paint = {"color": color} if isinstance(color, alt.Color) else {}
    return base.mark_bar(**({} if paint else {"color": color})).encode(
        x=alt.X(f"{field}:Q", title=title, stack=None), tooltip=tooltip, **paint)


def engine_view(engine: pd.DataFrame, runs: list[str] | None = None
                ) -> alt.HConcatChart | None:
    """The batch the engine reached against max_num_seqs, its queue and KV-cache use; a row
    per point (several runs: a bar per run, side by side, in the run's colour)."""
    if engine.empty:
        return None
    rows = engine["label"].nunique() * (len(runs) if runs else 1)
    height = max(120, 14 * rows)
    reached = alt.layer(
        _engine_panel(engine, "running_max", "sequences running (peak)",
                      series_color(engine), runs, True),
        alt.Chart(engine).mark_tick(color="black", thickness=2).encode(
            y=alt.Y("label:N", sort=list(dict.fromkeys(engine["label"]))), x="max_num_seqs:Q"),
        alt.Chart(engine).mark_point(color="black", shape="diamond").encode(
            y=alt.Y("label:N", sort=list(dict.fromkeys(engine["label"]))),
            x="running_mean:Q"),
    ).properties(width=ENGINE_SIDE, height=height, title=alt.Title(
        "Batch reached", subtitle="bar: peak running, diamond: mean, tick: max_num_seqs"))
    queue = _engine_panel(engine, "waiting_max", "requests waiting (peak)", "#e67e22", runs,
                          False).properties(width=ENGINE_SIDE, height=height, title="Queue")
    kv = _engine_panel(engine, "kv_cache_usage_peak_pct", "KV cache used (peak %)", "#8e44ad",
                       runs, False).properties(width=ENGINE_SIDE, height=height,
                                               title="KV cache")
    return alt.hconcat(reached, queue, kv).resolve_scale(y="shared").properties(
        title="The engine's own view")


def phases(frame: pd.DataFrame, runs: list[str] | None = None) -> alt.VConcatChart | None:
    """Each profile point's phases side by side (average against peak): throughput, and the
    statistic the SLO judges with the SLO's limit as a red rule."""
    if frame.empty:
        return None
    judged = frame["judged"].iloc[0]
    x = alt.X("phase:N", title=None, sort=alt.EncodingSortField("order"),
              axis=alt.Axis(labelAngle=0))
    column = alt.Column("series:N", title=None, sort=list(dict.fromkeys(frame["series"])),
                        header=alt.Header(labelLimit=150))

    def panel(field: str, title: str) -> alt.FacetChart:
        base = alt.Chart(frame).encode(x=x)
        tooltip = ["run", "series", "phase", alt.Tooltip(f"{field}:Q", format=",.1f"), "slo"]
        if runs:
            bars = run_bars(base, field, title, runs, tooltip)
        else:
            bars = base.mark_bar().encode(
                y=alt.Y(f"{field}:Q", title=title, stack=None), tooltip=tooltip,
                color=alt.Color("phase:N", title="phase", sort=alt.EncodingSortField("order")))
        layers = [bars]
        if field == "judged_ms" and frame["limit_ms"].notna().any():
            layers.append(alt.Chart(frame).mark_rule(color="#c0392b", strokeDash=[6, 3],
                                                     strokeWidth=1.5).encode(y="max(limit_ms):Q"))
        return alt.layer(*layers).properties(width=100, height=200).facet(column=column)

    throughput = panel("output_throughput", "output tok/s").properties(
        title="Throughput by phase")
    latency = panel("judged_ms", f"{judged} (ms)").properties(title=alt.Title(
        f"{judged} by phase", subtitle="red: the SLO's limit" if frame["limit_ms"].notna().any()
        else "no SLO on this statistic"))
    return alt.vconcat(throughput, latency)


def closeness(frame: pd.DataFrame) -> alt.Chart | None:
    """Each point's decode speed per sequence as a fraction of the memory-bandwidth floor's."""
    if frame.empty:
        return None
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("point:N", title="point", sort=None),
        y=alt.Y("fraction:Q", title="decode speed / bandwidth-floor speed",
                axis=alt.Axis(format="%")),
        color=series_color(frame), xOffset="series:N",
        tooltip=["series", "point", alt.Tooltip("measured_tps_per_seq:Q", format=",.1f"),
                 alt.Tooltip("floor_tps_per_seq:Q", format=",.1f"), "bandwidth_source"]
    ).properties(width=WIDTH, height=HEIGHT, title="How close to the hardware")
