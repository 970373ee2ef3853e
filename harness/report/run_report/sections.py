"""The report's sections in words: provenance (with each price's data date) and every warning
the run raised (burst delivery, a client that fell behind, thin p99s, token counts that
disagree, failed cells, unreadable files). The build-or-buy section is
harness.report.answer.html."""

from __future__ import annotations

from harness.contract.results import PointResult
from harness.report.answer.view import CostView
from harness.report.page import escape, facts_table
from harness.report.run_report.setup import engine_rows, workload_rows
from harness.store.run_store import StoredRun


def provenance_html(run: StoredRun, view: CostView) -> str:
    m = run.manifest
    host, gpus = m.host, m.host.gpus
    engine = f"{m.engine_package.package} {m.engine_package.version}" if m.engine_package else "-"
    rows = [
        ("run", f"{m.run} ({run.root})"), ("status", m.status),
        ("started / ended", f"{m.started_at} / {m.ended_at or '-'}"),
        ("machine", f"{host.cpu}, {host.cpu_count} CPUs, {host.memory_gib} GiB, {host.platform}"),
        ("GPUs", m.hardware if gpus.available else f"none: {gpus.reason}"),
        ("driver", gpus.driver or "-"), ("engine", engine),
        ("model", m.config.model),
        ("harness", f"{m.harness_version} (git {m.harness_git_sha or 'unknown'})"),
        ("config", f"{m.config_file} (hash {m.config_hash})"),
        ("SLO", ", ".join(f"{k} {v:g}" for k, v in m.config.slo.model_dump().items())
         if m.config.slo else "none set"),
    ]
    rows += workload_rows(m.config) + engine_rows(m.config)
    rows += [("price", line) for line in view_prices(view)]
    return facts_table(rows)


def view_prices(view: CostView) -> list[str]:
    """Each price with the date of its data (not the day it was looked up) and its age."""
    if view.reason is not None:
        return [view.reason]
    lines = [f"{row.kind}: {row.name}, ${row.usd:,.4g} {row.unit}, {row.data}, "
             f"data of {row.data_date.isoformat()} ({row.age_days} days old"
             + (", STALE)" if row.stale else ")")
             for row in view.prices]
    return lines + [line for line in view.prices_used if line.startswith("API tiers")]


def point_warnings(result: PointResult) -> list[str]:
    m, where = result.metrics, f"{result.cell} {result.point}"
    found = []
    if m.burst_delivery:
        found.append(f"{where}: tokens arrived in bursts ({m.burst_share:.0%} of tokens): "
                     "TTFT/TPOT/ITL are not per-token timings")
    if not result.client.kept_up:
        found.append(f"{where}: the client fell behind: {'; '.join(result.client.problems)}")
    if m.ttft_ms.p99_low_n:
        found.append(f"{where}: p99 from {m.ttft_ms.n} samples (fewer than 100): read it as "
                     "an upper bound")
    if result.server.token_check != "match":
        found.append(f"{where}: token counts against the server's: "
                     f"{result.server.token_check}")
    if m.output_length_mismatches or m.input_length_mismatches:
        found.append(f"{where}: {m.output_length_mismatches} outputs and "
                     f"{m.input_length_mismatches} prompts not of the intended length")
    if m.errors:
        found.append(f"{where}: {m.errors} of {m.requests} requests failed")
    return found


def warnings_html(run: StoredRun) -> str:
    found = [w for result in sorted(run.points, key=lambda r: r.sort_key)
             for w in point_warnings(result)]
    found += [f"{f.cell}: FAILED, {len(f.points)} points not measured: "
              f"{f.reason.splitlines()[0]}" for f in run.failures]
    found += [f"unreadable: {problem}" for problem in run.problems]
    energy = sorted({r.energy.energy_note for r in run.points if r.energy.energy_note})
    found += [f"GPU energy {note}" for note in energy]
    cpu = sorted({r.cpu_energy.reason for r in run.points if r.cpu_energy.reason})
    found += [f"CPU energy not measured: {reason}" for reason in cpu]
    if not found:
        return "<p>No point was flagged.</p>"
    items = "".join(f"<li>{escape(w)}</li>" for w in found)
    return f"<p><b>{escape(run.name)}</b></p><ul class=warnings>{items}</ul>"
