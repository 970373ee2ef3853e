"""The build-or-buy answer in HTML, for the run's page and the answer's own page: per variant
the decision (cheapest way, its bill, the runner-up and the margin), the capacity it rests on
and the caveats that qualify it, styled by severity; then $/Mtok, the prices with the dates of
their data, what flips the decision, every caveat, and the whole answer as tables (the ones
`harness cost --detail` prints)."""

from __future__ import annotations

import pandas as pd
from rich.text import Text

from harness.cost.caveats import SIDES, Caveat, rank, worst
from harness.cost.decision import NO_CAPACITY
from harness.cost.parts import Answer, Decision, PriceRow, Sensitivity, VariantCost
from harness.report.answer.grid import Grid
from harness.report.answer.tables import capacity_label, demand_line, detail_tables
from harness.report.answer.terminal import decision_lines
from harness.report.answer.tiers import tiers_html
from harness.report.answer.view import CostView
from harness.report.page import escape, frame_table, missing_box
from harness.store.run_store import StoredRun


def badge(text: str, severity: str, title: str = "") -> str:
    hover = f" title='{escape(title)}'" if title else ""
    return f"<span class='badge sev-{severity}'{hover}>{escape(text)}</span>"


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _cell(html: str, number: bool = False) -> str:
    return f"<td class=num>{html}</td>" if number else f"<td>{html}</td>"


def _capacity_html(variant: VariantCost, unit: str) -> str:
    capacity = variant.capacity
    if capacity is None:
        return badge(variant.slo_note or "-", "critical")
    source = badge(capacity_label(capacity), "info" if capacity.verified else "warning")
    return f"{capacity.tps_per_unit:,.0f} tok/s per {escape(unit)}<br>{source}"


def _qualifying(caveats: list[Caveat], decision: Decision) -> list[tuple[str, str, str]]:
    """(code, worst severity, first sentence) of each caveat code the decision rests on, as
    it applies to this variant, worst first."""
    found = []
    for code in dict.fromkeys(c.code for c in decision.rests_on):
        matching = [c for c in caveats
                    if c.code == code and c.variant in (None, decision.variant)]
        found.append((code, worst(matching) or "warning", matching[0].text if matching else ""))
    return sorted(found, key=lambda entry: -rank(entry[1]))


def _decision_row(answer: Answer, decision: Decision) -> str:
    cheapest = decision.cheapest or "no verdict (no traffic given)"
    runner_up, margin = "-", "-"
    if decision.runner_up is not None:
        runner_up = (f"{escape(decision.runner_up)}<br>{usd(decision.runner_up_usd_per_month)} "
                     "a month")
        margin = (f"+{usd(decision.margin_usd_per_month)} "
                  f"({decision.runner_up_over_cheapest:.2f}x)")
    caveats = " ".join(badge(f"{severity}: {code}", severity, text)
                       for code, severity, text in _qualifying(answer.caveats, decision))
    shown = f"<b>{escape(cheapest)}</b>"
    if decision.indicative is not None and decision.cheapest not in (NO_CAPACITY, None):
        shown = (f"{badge(decision.indicative, 'critical')}<br>as measured: "
                 f"{escape(cheapest)}")
    return ("<tr>" + _cell(f"<b>{escape(decision.variant)}</b>")
            + _cell(shown) + _cell(usd(decision.usd_per_month), True)
            + _cell(runner_up) + _cell(escape(margin), True)
            + _cell(_capacity_html(answer.variant(decision.variant), answer.unit))
            + _cell(caveats or "none") + "</tr>")


def decision_html(answer: Answer) -> str:
    """One row per variant: the cheapest way to serve this traffic and what it rests on."""
    if not answer.decision:
        return missing_box("no decision: no variant has a verdict")
    head = "".join(f"<th>{h}</th>" for h in (
        "variant", "the cheapest way", "its bill a month", "runner-up", "margin",
        "capacity at the SLO (source, n)", "the verdict rests on"))
    rows = "".join(_decision_row(answer, decision) for decision in answer.decision)
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


def prices_html(prices: list[PriceRow]) -> str:
    """Each price with the date of its data and its age; a stale or expired one marked."""
    if not prices:
        return ""
    rows = []
    for price in prices:
        status = badge("current", "info")
        if price.stale:
            status = badge(f"stale: {price.age_days} days old", "warning")
        if price.user_input:  # the config's own figure: nothing checked it
            status = badge("your input, unverified", "warning") + (
                " " + status if price.stale else "")
        if price.expired:
            status += " " + badge("expired at its source", "warning")
        rows.append("<tr>" + _cell(escape(price.kind)) + _cell(escape(price.name))
                    + _cell(f"${price.usd:,.4g} {escape(price.unit)}")
                    + _cell(escape(price.data))
                    + _cell(f"<b>{escape(price.data_date.isoformat())}</b>")
                    + _cell(str(price.age_days), True)
                    + _cell(escape(price.in_force_on.isoformat())) + _cell(status) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("kind", "price of", "price", "data",
                                             "data of", "age (days)", "in force on", "status"))
    return f"<table class='facts prices'><tr>{head}</tr>{''.join(rows)}</table>"


def _value(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value:.0%}"
    return f"{value:,.4g}" if abs(value) < 100 else f"{value:,.0f}"


def _sensitivity_row(row: Sensitivity) -> str:
    change = row.flips_at_change
    moved = "-" if change is None else (f"{change:+.2f}" if row.unit == "share"
                                        else f"{change:+.0%}")
    flip = ("no flip in [0, 1]" if row.unit == "share" else "no flip in 0.1x-10x") \
        if row.flips_at is None else _value(row.flips_at, row.unit)
    nearby = badge("flips", "warning") if row.flips_nearby else "holds"
    return ("<tr>" + "".join(_cell(escape(text)) for text in (row.variant, row.side, row.input))
            + _cell(f"{_value(row.base, row.unit)} {escape(row.unit)}", True)
            + "".join(_cell(usd(value), True) for value in (
                row.minus_api_usd_month_at_low, row.minus_api_usd_month_at_base,
                row.minus_api_usd_month_at_high))
            + _cell(escape(flip), True) + _cell(moved, True) + _cell(nearby) + "</tr>")


def sensitivity_html(sensitivity: list[Sensitivity]) -> str:
    """What flips the decision: each input at -25%, base and +25% (self-hosted minus API, $ a
    month) and the value at which the verdict changes side."""
    if not sensitivity:
        return ""
    apis = list(dict.fromkeys(row.api for row in sensitivity))
    head = "".join(f"<th>{h}</th>" for h in (
        "variant", "side", "input", "base", "-25%", "at base", "+25%", "flips at",
        "change", "within +-25%"))
    rows = "".join(_sensitivity_row(row) for row in sensitivity)
    return (f"<p><b>What flips the decision</b> (self-hosted minus {escape(', '.join(apis))}, "
            "the cheapest API for this traffic, $ a month; negative: self-hosting is cheaper; "
            "each input moved alone)</p>"
            f"<table class='facts sensitivity'><tr>{head}</tr>{rows}</table>")


def _wins(answer: Answer, variant: str, side: str) -> str:
    cheaper = [compared.cheaper for v in answer.verdicts_of(variant)
               if (compared := v.side(side).comparison) is not None]
    if not cheaper:
        return "-"
    return f"cheaper than {cheaper.count('self-hosted')} of {len(cheaper)} APIs"


def costs_html(answer: Answer) -> str:
    """$/Mtok per variant, at full load and at this traffic, rented and owned, and against how
    many APIs each side wins."""
    variants = answer.variants
    columns = {"variant": [v.variant for v in variants],
               "best cell at the SLO": [v.capacity.label if v.capacity else "none at the SLO"
                                        for v in variants]}
    formats = {}
    if any(v.capacity for v in variants):
        name = f"capacity tok/s per {answer.unit}"
        columns[name] = [v.capacity.tps_per_unit if v.capacity else None for v in variants]
        formats[name] = ",.0f"
    for side in SIDES:
        costs = [v.side(side) for v in variants]
        for name, values in ((f"{side} $/Mtok full load",
                              [c.usd_per_mtok_full_load if c else None for c in costs]),
                             (f"{side} $/Mtok at this traffic",
                              [c.usd_per_mtok_effective if c else None for c in costs])):
            if any(value is not None for value in values):
                columns[name], formats[name] = values, "$,.4g"
    for side in SIDES:
        if any(v.side(side).comparison is not None for v in answer.verdicts):
            columns[f"{side}: verdict"] = [_wins(answer, v.variant, side) for v in variants]
    return frame_table(pd.DataFrame(columns), formats)


def whole_answer_html(answer: Answer) -> str:
    """The answer as `harness cost --detail` gives it: the traffic, the decision lines, every
    table, every caveat and the prices used."""
    lines = "".join(f"<li><b>{escape(line.plain)}</b></li>" if "bold" in str(line.style)
                    else f"<li>{escape(line.plain.strip())}</li>"
                    for line in decision_lines(answer))
    every = Grid("All caveats", ["severity", "code", "what it says", "variant", "side", "API"],
                 text_first=6)
    for c in answer.caveats:   # as Text: a sentence is not rich markup
        every.add(c.severity, c.code, Text(c.text), Text(c.variant or "every"),
                  c.side or "both", Text(c.api or "every"))
    used = "".join(f"<li>{escape(line)}</li>" for line in answer.prices_used)
    return (f"<p>{escape(demand_line(answer))}</p><ul>{lines}</ul>"
            + "".join(grid.html() for grid in [*detail_tables(answer), every])
            + f"<p><b>Prices used</b></p><ul>{used}</ul>")


def headline_html(run: StoredRun, view: CostView) -> str:
    """The decision per variant with its capacity and caveats, then $/Mtok, the prices and
    their dates, the sensitivity table, every caveat, and the whole answer as tables."""
    answer = view.answer
    if answer is None:
        return missing_box(f"{run.name}: {view.reason}")
    return (f"<p><b>{escape(run.name)}</b>: build or buy for the traffic profile "
            f"{escape(run.manifest.config.cost.profile)}</p>"
            f"{decision_html(answer)}"
            f"<p><b>Caveats</b> (critical and warning qualify the verdicts above)</p>"
            f"{caveats_html(answer.caveats)}"
            f"<p><b>$ per million tokens</b></p>{costs_html(answer)}"
            f"<p><b>Prices</b> (dated by their data)</p>{prices_html(answer.prices)}"
            f"{sensitivity_html(answer.sensitivity)}"
            f"<details><summary>The whole answer: every table of <code>harness cost "
            f"--detail</code></summary>{whole_answer_html(answer)}</details>"
            f"{_tiers_html(view)}")


def _tiers_html(view: CostView) -> str:
    """The profile's tiers: who serves each, each plan's bill stacked by tier."""
    if view.tiers is not None:
        return f"<h3>Tiers and model choice</h3>{tiers_html(view.tiers)}"
    return missing_box(view.tiers_reason) if view.tiers_reason else ""
