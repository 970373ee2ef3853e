"""A tuned run's study (tune/trials.json): the space, every trial with its capacity, cost and
state, the best trial (or the Pareto front), each parameter's importance, and a chart of the
trials in the order they ran. In the terminal and in report.html."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
from rich.table import Table

from harness.contract.tune import TuneRecord
from harness.report.charts import Figure, figure
from harness.report.output import columns_to_fit
from harness.report.page import escape, facts_table, frame_table
from harness.store.run_store import RunStore, StoredRun

OBJECTIVES = {"cost": "the lowest $/Mtok at the SLO (capacity per dollar-hour)",
              "capacity": "the highest sustained capacity at the SLO",
              "pareto": "output tok/s per GPU against tok/s per user (a Pareto front)"}


def tune_record(run: StoredRun) -> TuneRecord | None:
    return RunStore(run.root).read_tune()


def shown(value: Any) -> str:
    if isinstance(value, dict):
        scale = " log" if value.get("log") else ""
        step = f" step {value['step']:g}" if value.get("step") not in (None, 1) else ""
        return f"{value['low']:g} .. {value['high']:g}{step}{scale}"
    if isinstance(value, list):
        return ", ".join(shown(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def space_table(space: dict[str, Any]) -> Table:
    table = Table(title="tune space")
    table.add_column("parameter")
    table.add_column("values")
    for name, values in space.items():
        table.add_row(name, shown(values))
    return table


def trials_frame(record: TuneRecord) -> pd.DataFrame:
    """One row per trial, in the order they ran; the best marked."""
    rows, first = [], {}
    for t in record.trials:
        first.setdefault(t.cell, t.number)
        mark = "best" if t.number in record.best and len(record.best) == 1 else \
            "front" if t.number in record.best else ""
        rows.append({"trial": t.number, "": mark, "cell": t.cell, "state": t.state,
                     "capacity req/s": t.capacity_rps,
                     "out tok/s": t.output_throughput,
                     "$/Mtok out": t.usd_per_mtok,
                     "tok/s per user": t.tokens_per_s_per_user,
                     "launched": "yes" if t.launched else
                     f"no: as trial {first[t.cell]}" if first[t.cell] != t.number else "no",
                     "min": t.minutes, "why": t.reason or ""})
    return pd.DataFrame(rows)


FORMATS = {"trial": "d", "capacity req/s": ",.3g", "out tok/s": ",.1f", "$/Mtok out": "$,.4f",
           "tok/s per user": ",.1f", "min": ",.1f"}


DROP_ORDER = ("tok/s per user", "min", "launched", "$/Mtok out", "why")  # first to go
WHY_FOLDED = 24  # the `why` column folds its text: it needs this much, not its longest line


def trials_table(record: TuneRecord, width: int | None = None) -> Table:
    """The trials as a terminal table: in a narrow terminal, columns are left out (DROP_ORDER)
    rather than numbers or names cut."""
    frame = trials_frame(record)
    text = pd.DataFrame({c: [cell_text(v, FORMATS.get(c)) for v in frame[c]]
                         for c in frame.columns})
    measured = text.assign(why=text["why"].str.slice(0, WHY_FOLDED))
    shown = columns_to_fit(measured, width, DROP_ORDER)
    table = Table(title=f"tune: {len(record.trials)} trials, objective {record.objective}")
    for column in shown:
        table.add_column(column, justify="right" if column in FORMATS else "left",
                         overflow="fold", no_wrap=column != "why",
                         min_width=WHY_FOLDED if column == "why" else None)
    for row in text[shown].itertuples(index=False):
        table.add_row(*row)
    left_out = [c for c in frame.columns if c not in shown]
    if left_out:
        table.caption = f"left out at this width: {', '.join(left_out)} (tune/trials.json has all)"
    return table


def cell_text(value: Any, spec: str | None) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if spec and isinstance(value, int | float):
        return "$" + format(value, spec[1:]) if spec.startswith("$") else format(value, spec)
    return str(value)


def importance_table(record: TuneRecord) -> Table:
    table = Table(title="what mattered (Optuna's parameter importance)")
    table.add_column("parameter")
    table.add_column("importance", justify="right")
    for name, value in record.importance.items():
        table.add_row(name, f"{value:.0%}")
    return table


def tune_summary(record: TuneRecord) -> str:
    """'tuned over N trials (M launches); best: trial K (cell)' for the answer's notes."""
    best = record.best_trial
    head = f"tuned over {len(record.trials)} trials ({record.launches} server launches)"
    return head + (f"; best: trial {best.number} ({best.cell})" if best else "; none met the SLO")


def tune_html(run: StoredRun, record: TuneRecord) -> str:
    best = record.best_trial
    facts = [("objective", OBJECTIVES[record.objective]), ("sampler", record.sampler),
             ("space", "; ".join(f"{k}: {shown(v)}" for k, v in record.space.items())),
             ("trials", f"{len(record.trials)} ({record.launches} server launches, "
                        f"{record.minutes:.1f} min)"),
             ("best", f"trial {best.number}: {best.cell} (config: tune/best.yaml; server: "
                      "tune/best-serve.sh)" if best else "no trial met the SLO")]
    if record.importance:
        facts.append(("what mattered", ", ".join(f"{k} {v:.0%}"
                                                 for k, v in record.importance.items())))
    table = frame_table(trials_frame(record), FORMATS)
    return (facts_table(facts) + f"<div style='overflow-x:auto'>{table}</div>"
            + f"<p class=sub>{escape(run.name)}: every trial is a cell of this run; the "
            "tables and charts below show them all.</p>")


def tune_figure(run: StoredRun, record: TuneRecord) -> Figure:
    """The trials in the order they ran: each one's capacity (or, for a Pareto study, its
    two objectives), coloured by state, the best ringed."""
    frame = trials_frame(record)
    key, title = f"tune-{run.name}", f"Tuning trials ({run.name})"
    if frame.empty or frame["out tok/s"].isna().all():
        return figure(key, title, None, "no trial measured a capacity")
    # a trial without a capacity (failed, or pruned at its first probe) sits on the axis
    frame = frame.assign(best=frame[""].ne(""), drawn=frame["out tok/s"].fillna(0.0))
    tooltip = ["trial", "cell", "state", "capacity req/s", "out tok/s", "$/Mtok out", "why"]
    state = alt.Color("state:N", title="trial", scale=alt.Scale(
        domain=["complete", "pruned", "failed", "infeasible"],
        range=["#1f77b4", "#bbbbbb", "#d62728", "#ff7f0e"]))
    if record.objective == "pareto":
        x = alt.X("tok/s per user:Q", title="tokens/s per user (1000 / median TPOT)")
        y = alt.Y("out tok/s:Q", title="output tokens/s at the capacity")
    else:
        x = alt.X("trial:O", title="trial (in the order they ran)",
                  axis=alt.Axis(labelAngle=0))
        y = alt.Y("drawn:Q", title="output tokens/s at the sustained capacity (0: none)")
    points = alt.Chart(frame).mark_point(filled=True, size=90).encode(
        x=x, y=y, color=state, shape=alt.Shape("best:N", title="best",
                                                 scale=alt.Scale(domain=[False, True],
                                                                 range=["circle", "diamond"])),
        tooltip=tooltip)
    return figure(key, title, points.properties(width=640, height=280))


def tune_sections(runs: list[StoredRun], figures: list[Figure]) -> list[tuple[str, str]]:
    """The "Tuning" section of the runs that were tuned (none otherwise); their charts are
    added to `figures`."""
    from harness.report.page import figures_html

    parts = []
    for run in runs:
        record = tune_record(run)
        if record is None:
            continue
        chart = tune_figure(run, record)
        figures.append(chart)
        parts.append(tune_html(run, record) + figures_html([chart], chart.key))
    return [("Tuning", "".join(parts))] if parts else []
