"""How a chart of several runs tells them apart: every run has one colour and one shape, the
same in every chart of the page (its place among the runs compared picks both), and one legend
names it. Bars stand side by side (xOffset), never stacked, each topped by the run's shape."""

from __future__ import annotations

import altair as alt

RUN_COLORS = ["#1f77b4", "#e6550d", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
              "#bcbd22"]
RUN_SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down",
              "triangle-left", "triangle-right"]
TITLE = "run"


def _pick(values: list[str], runs: list[str]) -> list[str]:
    return [values[k % len(values)] for k in range(len(runs))]


def run_color(runs: list[str]) -> alt.Color:
    """The run's colour; its legend's symbols opaque whatever the marks' opacity."""
    return alt.Color("run:N", title=TITLE, sort=runs, legend=alt.Legend(symbolOpacity=1),
                     scale=alt.Scale(domain=runs, range=_pick(RUN_COLORS, runs)))


def run_fill(runs: list[str]) -> alt.Fill:
    """The run's colour as a fill (its legend is the colour's)."""
    return alt.Fill("run:N", legend=None, sort=runs,
                    scale=alt.Scale(domain=runs, range=_pick(RUN_COLORS, runs)))


def run_shape(runs: list[str]) -> alt.Shape:
    return alt.Shape("run:N", title=TITLE, sort=runs,
                     scale=alt.Scale(domain=runs, range=_pick(RUN_SHAPES, runs)))


def run_marks(runs: list[str]) -> dict:
    """The run's colour and shape, for point marks."""
    return {"color": run_color(runs), "shape": run_shape(runs)}


def run_bars(base: alt.Chart, field: str, title: str, runs: list[str], tooltip: list,
             horizontal: bool = False) -> alt.LayerChart:
    """Each run's bar beside the others' (never stacked on them) in its colour, topped by its
    shape, so that the bars read as the points' own values."""
    value = (alt.X if horizontal else alt.Y)(f"{field}:Q", title=title, stack=None)
    offset = (alt.YOffset if horizontal else alt.XOffset)("run:N", sort=runs,
                                                          scale=alt.Scale(domain=runs))
    where = {"x" if horizontal else "y": value,
             "yOffset" if horizontal else "xOffset": offset}
    bars = base.mark_bar().encode(color=run_color(runs), tooltip=tooltip, **where)
    tops = base.mark_point(filled=True, size=45, opacity=1).encode(
        tooltip=tooltip, **where, **run_marks(runs))
    return alt.layer(bars, tops)
