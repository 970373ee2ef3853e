"""Fidelity in the report: per variant its score against the baseline (a table, red-flagged
where it misses the config's limits) and a chart of mean/p99 KL and top-1 agreement."""

from __future__ import annotations

import altair as alt
import pandas as pd

from harness.config.fidelity import FidelityConfig
from harness.contract.fidelity import FidelityRecord, describe
from harness.metrics.fidelity import missed
from harness.report.charts import HEIGHT, WIDTH, Figure, figure
from harness.report.page import escape, frame_table, missing_box
from harness.report.run_marks import run_bars
from harness.store.run_store import StoredRun

NO_FIDELITY = "no fidelity pass in this run (add a `fidelity:` section to the config)"
METHOD = ("KL(baseline || variant) over the baseline's top-k tokens and one bucket for the rest, "
          "teacher-forced on the baseline's greedy tokens; a variant that misses the config's "
          "limits is no like-for-like saving (docs/metrics.md, Fidelity).")


def fidelity_frame(runs: list[StoredRun]) -> pd.DataFrame:
    """One row per (run, variant) with a fidelity record."""
    rows = []
    for run in runs:
        limits = run.manifest.config.fidelity
        for record in sorted(run.fidelity.values(), key=lambda r: r.variant):
            s = record.score
            rows.append({
                "run": run.name, "variant": record.variant, "baseline": record.baseline,
                "fidelity": describe(record),
                "mean KL": s.kl_mean if s else None, "p99 KL": s.kl_p99 if s else None,
                "top-1 agreement": s.top1_agreement if s else None,
                "diverged prompts": f"{s.diverged_prompts}/{s.prompts}" if s else None,
                "misses": missed(record, limits)})
    return pd.DataFrame(rows)


def fidelity_chart(frame: pd.DataFrame) -> alt.HConcatChart | None:
    data = frame.dropna(subset=["mean KL"]) if not frame.empty else frame
    if data.empty:
        return None
    runs = list(dict.fromkeys(frame["run"]))
    data = data.rename(columns={"mean KL": "kl_mean", "p99 KL": "kl_p99",
                                "top-1 agreement": "top1"})
    x = alt.X("variant:N", title="variant", axis=alt.Axis(labelAngle=0))
    tooltip = ["run", "variant", "baseline", alt.Tooltip("kl_mean:Q", format=".3g"),
               alt.Tooltip("kl_p99:Q", format=".3g"), alt.Tooltip("top1:Q", format=".1%"),
               "misses"]
    base = alt.Chart(data).encode(x=x)
    if len(runs) > 1:  # each run's bar beside the other's, in its colour and shape
        kl = run_bars(base, "kl_mean", "mean KL (nats/token)", runs, tooltip)
        top1 = run_bars(base, "top1", "top-1 agreement", runs, tooltip)
        ticks = base.mark_tick(color="black", thickness=2).encode(
            y="kl_p99:Q", xOffset=alt.XOffset("run:N", sort=runs))
    else:
        kl = base.mark_bar().encode(
            y=alt.Y("kl_mean:Q", title="mean KL (nats/token)", axis=alt.Axis(format=".1e")),
            color=alt.condition("datum.misses !== null", alt.value("#c0392b"),
                                alt.value("#4c78a8")), tooltip=tooltip)
        top1 = base.mark_bar().encode(
            y=alt.Y("top1:Q", title="top-1 agreement", scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format="%")), tooltip=tooltip)
        ticks = base.mark_tick(color="black", thickness=2, size=30).encode(y="kl_p99:Q")
    return alt.hconcat((kl + ticks).properties(width=WIDTH // 2, height=HEIGHT,
                                               title="KL against the baseline (tick: p99)"),
                       top1.properties(width=WIDTH // 2, height=HEIGHT,
                                       title="Top-1 agreement with the baseline"))


def fidelity_figure(runs: list[StoredRun]) -> Figure:
    return figure("fidelity", "Fidelity against the baseline",
                  fidelity_chart(fidelity_frame(runs)), NO_FIDELITY)


def fidelity_html(runs: list[StoredRun]) -> str:
    frame = fidelity_frame(runs)
    if frame.empty:
        return missing_box(NO_FIDELITY)
    if frame["run"].nunique() == 1:
        frame = frame.drop(columns="run")
    table = frame_table(frame, {"mean KL": ".3g", "p99 KL": ".3g", "top-1 agreement": ".1%"})
    return f"{table}<p>{escape(METHOD)}</p>"


def fidelity_columns(record: FidelityRecord | None, fidelity: FidelityConfig | None) -> dict:
    """The summary.csv columns of a variant's fidelity (docs/metrics.md names them)."""
    s = record.score if record is not None else None
    return {"fidelity": describe(record),
            "fidelity_baseline": record.baseline if record is not None else None,
            "fidelity_kl_mean": s.kl_mean if s else None,
            "fidelity_kl_p99": s.kl_p99 if s else None,
            "fidelity_top1_agreement": s.top1_agreement if s else None,
            "fidelity_first_divergence_median": s.first_divergence_median if s else None,
            "fidelity_miss": missed(record, fidelity)}
