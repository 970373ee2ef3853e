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
    overlay = data["run"].nunique() > 1
    data = data.assign(label=data["run"] + " " + data["variant"] if overlay else data["variant"])
    kl = alt.Chart(data).mark_bar().encode(
        x=alt.X("label:N", title="variant"),
        y=alt.Y("mean KL:Q", title="mean KL (nats/token)", axis=alt.Axis(format=".1e")),
        color=alt.condition("datum.misses !== null", alt.value("#c0392b"), alt.value("#4c78a8")),
        tooltip=["variant", "baseline", alt.Tooltip("mean KL:Q", format=".3g"),
                 alt.Tooltip("p99 KL:Q", format=".3g"), "misses"])
    p99 = alt.Chart(data).mark_tick(color="black", thickness=2, size=30).encode(
        x="label:N", y="p99 KL:Q")
    top1 = alt.Chart(data).mark_bar().encode(
        x=alt.X("label:N", title="variant"),
        y=alt.Y("top-1 agreement:Q", title="top-1 agreement", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        tooltip=["variant", alt.Tooltip("top-1 agreement:Q", format=".1%")])
    return alt.hconcat((kl + p99).properties(width=WIDTH // 2, height=HEIGHT,
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
