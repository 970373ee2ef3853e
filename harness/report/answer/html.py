"""The build-or-buy section of the page, from the report's view of the Answer
(harness.report.answer.view): per variant the decision (cheapest way, its bill, the runner-up and
the margin), the capacity it rests on and the caveats that qualify it, styled by severity; then
$/Mtok, the prices with the dates of their data, what flips the decision, every caveat, and the
whole answer as `harness cost --detail` prints it."""

from __future__ import annotations

import pandas as pd

from harness.cost.caveats import Caveat, rank
from harness.cost.labels import missing
from harness.report.answer.view import CostView
from harness.report.page import escape, frame_table, missing_box
from harness.store.run_store import StoredRun

COST_COLUMNS = {
    "variant": "variant", "best_cell": "best cell at the SLO",
    "capacity_tps_per_unit": "capacity tok/s per {unit}",
    "rented_usd_per_mtok_full_load": "rented $/Mtok full load",
    "rented_usd_per_mtok_effective": "rented $/Mtok at this traffic",
    "owned_usd_per_mtok_full_load": "owned $/Mtok full load",
    "owned_usd_per_mtok_effective": "owned $/Mtok at this traffic",
    "rented_wins": "rented: verdict", "owned_wins": "owned: verdict", "reason": "why none"}
MONEY = {c: "$,.4g" for c in COST_COLUMNS if "usd" in c} | {"capacity_tps_per_unit": ",.0f"}


def badge(text: str, severity: str, title: str = "") -> str:
    hover = f" title='{escape(title)}'" if title else ""
    return f"<span class='badge sev-{severity}'{hover}>{escape(text)}</span>"


def usd(value: object) -> str:
    if missing(value):
        return "-"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _true(value: object) -> bool:
    return not missing(value) and bool(value)


def _cell(html: str, number: bool = False) -> str:
    return f"<td class=num>{html}</td>" if number else f"<td>{html}</td>"


def _capacity_html(row: dict, unit: str) -> str:
    per_unit = row.get("capacity_tps_per_unit")
    if missing(per_unit):
        return badge(row["capacity_from"], "critical")
    source = badge(row["capacity_from"], "info" if _true(row.get("capacity_verified"))
                   else "warning")
    low, high = row.get("capacity_low_tps"), row.get("capacity_high_tps")
    interval = "" if missing(low) or missing(high) else \
        f"<br><small>interval {low:,.0f}-{high:,.0f} tok/s</small>"
    return f"{per_unit:,.0f} tok/s per {escape(unit)}<br>{source}{interval}"


def _decision_row(row: dict, unit: str) -> str:
    cheapest = row.get("cheapest") or "no verdict (no traffic given)"
    runner_up, margin = "-", "-"
    if not missing(row.get("runner_up")):
        runner_up = f"{escape(row['runner_up'])}<br>{usd(row['runner_up_usd_per_month'])} a month"
        margin = f"+{usd(row['margin_usd_per_month'])} ({row['runner_up_over_cheapest']:.2f}x)"
    caveats = " ".join(badge(f"{severity}: {code}", severity, text)
                       for code, severity, text in row["caveat_list"]) or "none"
    return ("<tr>" + _cell(f"<b>{escape(row['variant'])}</b>")
            + _cell(f"<b>{escape(cheapest)}</b>") + _cell(usd(row.get("usd_per_month")), True)
            + _cell(runner_up) + _cell(escape(margin), True)
            + _cell(_capacity_html(row, unit)) + _cell(caveats) + "</tr>")


def decision_html(view: CostView) -> str:
    """One row per variant: the cheapest way to serve this traffic and what it rests on."""
    if view.decision.empty:
        return missing_box("no decision: no variant has a verdict")
    head = "".join(f"<th>{h}</th>" for h in (
        "variant", "the cheapest way", "its bill a month", "runner-up", "margin",
        "capacity at the SLO (source, n)", "the verdict rests on"))
    rows = "".join(_decision_row(row, view.unit)
                   for row in view.decision.to_dict("records"))
    return f"<table class='facts decision'><tr>{head}</tr>{rows}</table>"


def caveats_html(caveats: list[Caveat]) -> str:
    """Every caveat, one line per code (how many more like it), the worst first."""
    groups: dict[str, list[Caveat]] = {}
    for caveat in caveats:
        groups.setdefault(caveat.code, []).append(caveat)
    ordered = sorted(groups.values(), key=lambda g: -max(rank(c.severity) for c in g))
    items = []
    for group in ordered:
        severity = max((c.severity for c in group), key=rank)
        more = f" (and {len(group) - 1} more like it)" if len(group) > 1 else ""
        items.append(f"<li class=sev-{severity}>{badge(severity, severity)} "
                     f"<code>{escape(group[0].code)}</code>: {escape(group[0].text)}"
                     f"{escape(more)}</li>")
    return f"<ul class=caveats>{''.join(items)}</ul>" if items else "<p>No caveat.</p>"


def prices_html(prices: pd.DataFrame) -> str:
    """Each price with the date of its data and its age; a stale or expired one marked."""
    if prices.empty:
        return ""
    rows = []
    for row in prices.to_dict("records"):
        status = badge("current", "info")
        if _true(row.get("stale")):
            status = badge(f"stale: {row['age_days']} days old", "warning")
        if _true(row.get("expired")):
            status += " " + badge("expired at its source", "warning")
        rows.append("<tr>" + _cell(escape(row["kind"])) + _cell(escape(row["name"]))
                    + _cell(f"${row['usd']:,.4g} {escape(row['unit'])}")
                    + _cell(escape(row["data"])) + _cell(f"<b>{escape(row['data_date'])}</b>")
                    + _cell(str(row["age_days"]), True) + _cell(escape(row["in_force_on"]))
                    + _cell(status) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("kind", "price of", "price", "data",
                                             "data of", "age (days)", "in force on", "status"))
    return f"<table class='facts prices'><tr>{head}</tr>{''.join(rows)}</table>"


def _value(value: object, unit: str) -> str:
    if missing(value):
        return "-"
    if unit == "share":
        return f"{value:.0%}"
    return f"{value:,.4g}" if abs(value) < 100 else f"{value:,.0f}"


def _flips_nearby(row: dict) -> bool:
    """The verdict changes side when this input moves by 25% either way."""
    base = row["minus_api_usd_month_at_base"] < 0
    return any((row[f"minus_api_usd_month_at_{end}"] < 0) != base for end in ("low", "high"))


def sensitivity_html(sensitivity: pd.DataFrame) -> str:
    """What flips the decision: each input at -25%, base and +25% (self-hosted minus API, $ a
    month) and the value at which the verdict changes side."""
    if sensitivity.empty:
        return ""
    apis = list(dict.fromkeys(sensitivity["api"]))
    head = "".join(f"<th>{h}</th>" for h in (
        "variant", "side", "input", "base", "-25%", "at base", "+25%", "flips at",
        "change", "within +-25%"))
    rows = []
    for row in sensitivity.to_dict("records"):
        change = row["flips_at_change"]
        moved = "-" if missing(change) else (f"{change:+.2f}" if row["unit"] == "share"
                                             else f"{change:+.0%}")
        flip = ("no flip in [0, 1]" if row["unit"] == "share" else "no flip in 0.1x-10x") \
            if missing(row["flips_at"]) else _value(row["flips_at"], row["unit"])
        nearby = badge("flips", "warning") if _flips_nearby(row) else "holds"
        rows.append("<tr>" + "".join(_cell(escape(row[k])) for k in ("variant", "side", "input"))
                    + _cell(f"{_value(row['base'], row['unit'])} {escape(row['unit'])}", True)
                    + "".join(_cell(usd(row[f"minus_api_usd_month_at_{k}"]), True)
                              for k in ("low", "base", "high"))
                    + _cell(escape(flip), True) + _cell(moved, True) + _cell(nearby) + "</tr>")
    return (f"<p><b>What flips the decision</b> (self-hosted minus {escape(', '.join(apis))}, "
            "the cheapest API for this traffic, $ a month; negative: self-hosting is cheaper; "
            "each input moved alone)</p>"
            f"<table class='facts sensitivity'><tr>{head}</tr>{''.join(rows)}</table>")


def costs_html(view: CostView) -> str:
    frame = view.headline.copy()
    columns = [c for c in COST_COLUMNS if c in frame]
    if "reason" in frame and frame["reason"].isna().all():
        columns.remove("reason")
    names = {c: COST_COLUMNS[c].format(unit=view.unit) for c in columns}
    formats = {names[c]: f for c, f in MONEY.items() if c in names}
    return frame_table(frame[columns].rename(columns=names), formats)


def headline_html(run: StoredRun, view: CostView) -> str:
    """The decision per variant with its capacity and caveats, then $/Mtok, the prices and
    their dates, the sensitivity table, every caveat, and the answer as `harness cost` prints
    it."""
    if view.reason:
        return missing_box(f"{run.name}: {view.reason}")
    return (f"<p><b>{escape(run.name)}</b>: build or buy for the traffic profile "
            f"{escape(run.manifest.config.cost.profile)}</p>"
            f"{decision_html(view)}"
            f"<p><b>Caveats</b> (critical and warning qualify the verdicts above)</p>"
            f"{caveats_html(view.caveats)}"
            f"<p><b>$ per million tokens</b></p>{costs_html(view)}"
            f"<p><b>Prices</b> (dated by their data)</p>{prices_html(view.prices)}"
            f"{sensitivity_html(view.sensitivity)}"
            f"<details><summary>The whole answer, as <code>harness cost --detail</code> prints "
            f"it</summary>{view.answer_html}</details>")
