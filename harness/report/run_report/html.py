"""The report of one or more stored runs: the headline, the charts, provenance and warnings,
as one self-contained page (harness.report.page) and its charts as figures for PNG export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.report import charts, frames
from harness.report.answer.html import headline_html
from harness.report.answer.view import CostView, cost_view
from harness.report.charts import Figure, figure
from harness.report.comparison.deltas import distinct_names
from harness.report.distributions import histogram_figure
from harness.report.latency_chart import latency
from harness.report.page import figures_html, page
from harness.report.run_report.fidelity import fidelity_figure, fidelity_html
from harness.report.run_report.hardware import hardware_frame
from harness.report.run_report.search import search_figure
from harness.report.run_report.sections import provenance_html, warnings_html
from harness.report.run_report.tune import tune_sections
from harness.store.run_store import StoredRun


@dataclass
class Report:
    html: str
    figures: list[Figure]


def latency_against_load(runs: list[StoredRun], slo: dict):
    """Closed-loop points against concurrency; where a run has none, open-loop against rate
    (one x axis: the two kinds of load are not mixed)."""
    lat = frames.latency_frame(runs)
    if lat.empty:
        return None
    names = compared(runs)
    if (lat["kind"] == "closed").any():
        return latency(lat[lat["kind"] == "closed"], slo, "concurrency (requests in flight)",
                       names)
    return latency(lat, slo, "rate (requests/s)", names)


def compared(runs: list[StoredRun]) -> list[str] | None:
    """The runs' names where several are drawn together (each its colour and shape)."""
    return [run.name for run in runs] if len(runs) > 1 else None


def _energy_reason(runs: list[StoredRun]) -> str:
    notes = sorted({p.energy.energy_note for run in runs for p in run.points
                    if p.energy.energy_note})
    return "; ".join(notes) or "not measured: no point has GPU energy"


def _telemetry_reason(runs: list[StoredRun]) -> str:
    if not any(run.manifest.gpu_names for run in runs):
        return f"not measured: no GPU telemetry ({_energy_reason(runs)})"
    return "not measured: no point stored NVML samples (*.telemetry.parquet)"


def cost_figures(runs: list[StoredRun], views: list[CostView]) -> list[Figure]:
    overlay = len(runs) > 1
    costs = pd.concat([v.points.assign(run=r.name) for r, v in zip(runs, views, strict=True)
                       if not v.points.empty] or [pd.DataFrame()], ignore_index=True)
    apis = next((v.apis for v in views if not v.apis.empty), pd.DataFrame())
    reason = "; ".join(f"{r.name}: {v.reason}" for r, v in zip(runs, views, strict=True)
                       if v.reason)
    reason = reason or "not measured: no point has a price (cost.usd_per_hour or a profile GPU)"
    found = [figure("cost-per-point", "Cost per point",
                    charts.point_costs(costs, apis, compared(runs)), reason)]
    for run, view in zip(runs, views, strict=True):
        suffix = f"-{run.name}" if overlay else ""
        chart = charts.monthly_bills(view.bills, view.break_even,
                                     view.traffic_mtok_month, run.name if overlay else None)
        found.append(figure(f"monthly-bill{suffix}", f"Monthly bill ({run.name})", chart,
                            view.reason or "no traffic in the profile: no monthly volume"))
    return found


def run_figures(runs: list[StoredRun], views: list[CostView]) -> list[Figure]:
    points = frames.point_frame(runs)
    overlay = len(runs) > 1
    slo = runs[0].manifest.config.slo
    slo = slo.model_dump() if slo is not None else {}
    found = [
        figure("pareto", "Throughput against interactivity",
               charts.pareto(points, compared(runs)),
               "no point measured yet" if points.empty else "no measured point has a TPOT"),
        figure("latency", "Latency against load", latency_against_load(runs, slo),
               "no closed- or open-loop point measured"),
        histogram_figure(runs, slo),
        search_figure(runs),
        *cost_figures(runs, views),
        figure("energy-per-token", "GPU energy per output token",
               charts.energy_per_token(points, compared(runs)), _energy_reason(runs)),
        figure("telemetry", "GPU telemetry over a point",
               charts.telemetry(pd.concat([frames.telemetry_frame(r) for r in runs]
                                          or [pd.DataFrame()], ignore_index=True)),
               _telemetry_reason(runs)),
        figure("engine", "The engine's own view",
               charts.engine_view(frames.engine_frame(runs), compared(runs)),
               "not measured: the engine's /metrics were not read"),
        figure("phases", "Phases of the scenarios",
               charts.phases(frames.phase_frame(runs), compared(runs)),
               "no scenario point in this run"),
        fidelity_figure(runs),
    ]
    for run in runs:
        suffix = f"-{run.name}" if overlay else ""
        frame, reason = hardware_frame(run)
        found.append(figure(f"hardware{suffix}", f"How close to the hardware ({run.name})",
                            charts.closeness(frame), reason))
    return found


def build_report(runs: list[StoredRun], extra: list[tuple[str, str]] | None = None,
                 views: list[CostView] | None = None) -> Report:
    """The page of `runs` (several: their charts overlaid), with `extra` sections first;
    `views`: the runs' answers where they are already built."""
    runs = distinct_names(runs)
    views = views or [cost_view(run) for run in runs]
    figures = run_figures(runs, views)
    keys = lambda prefix: [f.key for f in figures if f.key.startswith(prefix)]  # noqa: E731
    sections = list(extra or [])
    sections += [
        ("Build or buy", "".join(headline_html(r, v) for r, v in zip(runs, views, strict=True))),
        *tune_sections(runs, figures),
        ("Throughput against interactivity", figures_html(figures, "pareto")),
        ("Latency against load", figures_html(figures, "latency", "latency-histograms")),
        ("Capacity search", figures_html(figures, "capacity-search")),
        ("Cost", figures_html(figures, *keys("cost"), *keys("monthly"))),
        ("Energy and the engine", figures_html(figures, "energy-per-token", "telemetry",
                                               "engine")),
        ("Phases", figures_html(figures, "phases")),
        ("Fidelity", fidelity_html(runs) + figures_html(figures, "fidelity")),
        ("How close to the hardware", figures_html(figures, *keys("hardware"))),
        ("Provenance", "".join(provenance_html(r, v) for r, v in zip(runs, views, strict=True))),
        ("Warnings", "".join(warnings_html(r) for r in runs)),
    ]
    names = ", ".join(run.name for run in runs)
    subtitle = "; ".join(f"{r.name}: {r.manifest.config.model} on {r.manifest.hardware}, "
                         f"{r.manifest.run_date}" for r in runs)
    return Report(page(f"harness report: {names}", subtitle, sections, figures), figures)


def write_pngs(figures: list[Figure], folder: Path, scale: float = 2.0) -> list[Path]:
    """Each drawn chart as <folder>/<key>.png (vl-convert: no browser)."""
    import vl_convert

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fig in figures:
        if fig.spec is None:
            continue
        path = folder / f"{fig.key}.png"
        path.write_bytes(vl_convert.vegalite_to_png(fig.spec, scale=scale))
        written.append(path)
    return written
