"""The report's charts as Vega-Lite specs (built with altair): each is drawn in the page by the
inlined Vega runtime and exported to PNG by vl-convert, from the same spec. A chart whose data
was not measured is a `Figure` with a reason instead of a spec, never a chart of zeros."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

WIDTH, HEIGHT = 560, 320
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
        .configure_legend(labelFontSize=12, titleFontSize=12, labelLimit=360) \
        .configure_title(fontSize=15, anchor="start")
    return Figure(key, title, chart.to_dict())


def series_color(data: pd.DataFrame) -> alt.Color:
    """One colour per variant and batch size, listed in the order the data has them."""
    return alt.Color("series:N", title="variant and batch size",
                     sort=list(dict.fromkeys(data["series"])))


def _series(data: pd.DataFrame, overlay: bool) -> dict:
    """Colour by line; with several runs, the run is the dash pattern and the shape."""
    encoding = {"color": series_color(data)}
    if overlay:
        runs = list(dict.fromkeys(data["run"]))
        encoding["strokeDash"] = alt.StrokeDash("run:N", sort=runs, legend=None)
        encoding["shape"] = alt.Shape("run:N", title="run (line dash and point shape)",
                                      sort=runs)
    return encoding


def pareto(points: pd.DataFrame, overlay: bool = False) -> alt.Chart | None:
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
    base = alt.Chart(data).encode(
        x=alt.X("interactivity:Q", title="interactivity: tok/s per user (1000 / TPOT p50)",
                scale=alt.Scale(zero=False)),
        y=alt.Y("output_tps_per_gpu:Q", title=f"throughput: output tok/s {unit}"),
        order=alt.Order("load:Q"), **_series(data, overlay))
    # a line joins a cell's closed-loop points (its concurrency sweep); rates, searches and
    # trace replays are offered loads on another axis of load, so they stay dots
    line = base.mark_line(strokeWidth=2, opacity=0.7).encode(
        detail=alt.Detail("run:N")).transform_filter(alt.datum.kind == "closed")
    dots = base.mark_point(size=90, filled=True).encode(
        opacity=SLO_OPACITY,
        tooltip=["run", "series", "point", "load", "slo",
                 alt.Tooltip("output_tps_per_gpu:Q", format=",.0f"),
                 alt.Tooltip("interactivity:Q", format=",.1f")])
    return (line + dots).properties(
        width=WIDTH, height=HEIGHT,
        title=alt.Title("Throughput against interactivity",
                        subtitle="lines join each cell's closed-loop points by concurrency; "
                                 "open-loop points are dots; faded points miss the run's SLO"))


def latency(lat: pd.DataFrame, slo_limits: dict[str, float],
            load_title: str) -> alt.HConcatChart | None:
    """TTFT, TPOT and E2E p50 and p99 against load, CIs as bands, the SLO's limits as rules."""
    if lat.empty:
        return None
    panels = []
    runs = list(dict.fromkeys(lat["run"])) if "run" in lat else []
    # several runs: a line per run (never one line hopping between them), a shape per run
    apart = [alt.Detail("run:N")] if len(runs) > 1 else []
    shape = {"shape": alt.Shape("run:N", sort=runs, title="run (point shape)")} \
        if len(runs) > 1 else {}
    for metric in ("TTFT", "TPOT", "E2E"):
        data = lat[lat["metric"] == metric]
        base = alt.Chart(data).encode(x=alt.X("load:Q", title=load_title),
                                      color=series_color(lat))
        band = base.mark_area(opacity=0.15).encode(
            y=alt.Y("ci_low:Q", title=f"{metric} (ms)"), y2="ci_high:Q",
            detail=[alt.Detail("stat:N"), *apart])
        lines = base.mark_line().encode(
            y="ms:Q", strokeDash=alt.StrokeDash("stat:N", title="percentile"),
            detail=[alt.Detail("stat:N"), *apart])
        dots = base.mark_point(filled=True, size=40).encode(
            y="ms:Q", detail=[alt.Detail("stat:N"), *apart], **shape,
            tooltip=["run", "series", "stat", "load", alt.Tooltip("ms:Q", format=",.1f"),
                     alt.Tooltip("ci_low:Q", format=",.1f"),
                     alt.Tooltip("ci_high:Q", format=",.1f"), "n"])
        layers = [band, lines, dots]
        limits = {k: v for k, v in slo_limits.items() if k.startswith(metric.lower() + "_")}
        if limits:
            rules = pd.DataFrame({"limit": [f"SLO {k} {v:g}" for k, v in limits.items()],
                                  "ms": list(limits.values())})
            layers.append(alt.Chart(rules).mark_rule(color="#c0392b", strokeDash=[6, 3])
                          .encode(y="ms:Q", tooltip=["limit", "ms"]))
            layers.append(alt.Chart(rules).mark_text(align="left", dx=4, dy=-6,
                                                     color="#c0392b")
                          .encode(y="ms:Q", x=alt.value(0), text=alt.Text("limit:N")))
        panels.append(alt.layer(*layers).properties(width=300, height=260,
                                                    title=f"{metric} (ms)"))
    return alt.hconcat(*panels).resolve_scale(y="independent").properties(
        title=alt.Title("Latency against load",
                        subtitle="p50 solid, p99 dashed; bands: 95% bootstrap CI; red: SLO"))


def point_costs(costs: pd.DataFrame, apis: pd.DataFrame,
                overlay: bool = False) -> alt.LayerChart | None:
    """$/Mtok of each point, rented and owned, with the dated API prices as rules."""
    if costs.empty:
        return None
    data = costs.assign(label=lambda f: f["variant"] + " b" + f["max_num_seqs"].astype(str)
                        + " " + f["point"])
    dots = alt.Chart(data).mark_point(size=90, filled=True).encode(
        x=alt.X("label:N", title="point (variant, batch size, load)", sort=None,
                axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("usd_per_mtok:Q", title="$ per million tokens (profile's mix)",
                scale=alt.Scale(type="log")),
        color=alt.Color("side:N", title="self-hosted", scale=alt.Scale(range=["#1f77b4",
                                                                              "#ff7f0e"])),
        shape=alt.Shape("run:N", title="run") if overlay else alt.Shape("side:N"),
        opacity=SLO_OPACITY,
        tooltip=["label", "side", alt.Tooltip("usd_per_mtok:Q", format="$.4g"), "meets_slo"])
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


def monthly_bills(bills: pd.DataFrame, ranges: pd.DataFrame,
                  traffic: float | None) -> alt.VConcatChart | alt.LayerChart | None:
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
        title=alt.Title("Monthly bill against monthly traffic",
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


def energy_per_token(points: pd.DataFrame) -> alt.LayerChart | None:
    if points.empty:
        return None
    data = points.dropna(subset=["j_per_output_token"])
    data = data[data["max_num_seqs"].notna()]
    if data.empty:
        return None
    base = alt.Chart(data).encode(
        x=alt.X("max_num_seqs:Q", title="batch size (max_num_seqs)"),
        y=alt.Y("j_per_output_token:Q", title="energy (J per output token)"),
        color=alt.Color("variant:N", title="variant"), detail="point:N")
    return (base.mark_line() + base.mark_point(filled=True, size=80).encode(
        tooltip=["series", "point", alt.Tooltip("j_per_output_token:Q", format=".4f")])
    ).properties(width=WIDTH, height=HEIGHT, title="GPU energy per output token")


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


def side_by_side(data: pd.DataFrame) -> dict:
    """With several runs, each run's bar beside the other's (never stacked on it), told apart
    by its shade, with a legend; with one run, nothing."""
    runs = list(dict.fromkeys(data["run"])) if "run" in data else []
    if len(runs) < 2:
        return {}
    return {"xOffset": alt.XOffset("run:N", sort=runs),
            "opacity": alt.Opacity("run:N", sort=runs, title="run (bar shade)",
                                   scale=alt.Scale(range=[1.0, 0.45]))}


def engine_view(engine: pd.DataFrame) -> alt.HConcatChart | None:
    """The batch the engine reached against max_num_seqs, its queue and KV-cache use."""
    if engine.empty:
        return None
    x = alt.X("label:N", title="point", sort=None, axis=alt.Axis(labelAngle=-40))
    batch = alt.Chart(engine).encode(x=x)
    runs = side_by_side(engine)
    reached = alt.layer(
        batch.mark_bar().encode(
            y=alt.Y("running_max:Q", title="sequences running", stack=None), **runs,
            color=series_color(engine),
            tooltip=["run", "label", "running_max", "running_mean", "max_num_seqs"]),
        batch.mark_tick(color="black", thickness=2, size=30).encode(y="max_num_seqs:Q"),
        batch.mark_point(color="black", shape="diamond").encode(y="running_mean:Q"),
    ).properties(width=360, height=260, title=alt.Title(
        "Batch reached", subtitle="bar: peak running, diamond: mean, tick: max_num_seqs"))
    queue = batch.mark_bar(color="#e67e22").encode(
        y=alt.Y("waiting_max:Q", title="requests waiting (peak)", stack=None), **runs,
        tooltip=["run", "label", "waiting_max"]).properties(width=360, height=260, title="Queue")
    kv = batch.mark_bar(color="#8e44ad").encode(
        y=alt.Y("kv_cache_usage_peak_pct:Q", title="KV cache used (peak %)", stack=None),
        **runs,
        tooltip=["label", alt.Tooltip("kv_cache_usage_peak_pct:Q", format=".2f")]
    ).properties(width=360, height=260, title="KV cache")
    return alt.hconcat(reached, queue, kv).properties(title="The engine's own view")


def phases(frame: pd.DataFrame) -> alt.HConcatChart | None:
    """Each profile point's phases side by side (average against peak)."""
    if frame.empty:
        return None
    base = alt.Chart(frame).encode(
        x=alt.X("phase:N", title=None, sort=alt.EncodingSortField("order"),
                axis=alt.Axis(labelAngle=0)),
        color=alt.Color("phase:N", title="phase", sort=alt.EncodingSortField("order")),
        column=alt.Column("series:N", title=None, sort=list(dict.fromkeys(frame["series"]))))
    runs = side_by_side(frame)
    throughput = base.mark_bar().encode(
        y=alt.Y("output_throughput:Q", title="output tok/s", stack=None), **runs,
        tooltip=["run", "series", "phase", alt.Tooltip("output_throughput:Q", format=",.0f"), "slo"]
    ).properties(width=90, height=220, title="Throughput by phase")
    ttft = base.mark_bar().encode(
        y=alt.Y("ttft_p95_ms:Q", title="TTFT p95 (ms)", stack=None), **runs,
        tooltip=["run", "series", "phase", alt.Tooltip("ttft_p95_ms:Q", format=",.1f"), "slo"]
    ).properties(width=90, height=220, title="TTFT p95 by phase")
    return alt.vconcat(throughput, ttft)


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
