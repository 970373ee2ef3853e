"""The views of the tiered answer: who serves each tier and its part of the bill, each plan's
bill as a bar stacked by tier (text in the terminal, SVG on the page), the comparison, the
what-ifs and what moves the answer (harness.report.answer.tier_document puts them together)."""

from __future__ import annotations

from rich.text import Text

from harness.cost.tier_parts import Plan, TierAnswer
from harness.report.answer.format import number, rate, share, usd
from harness.report.answer.grid import Grid
from harness.report.page import escape

COLORS = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2",
          "#FF9DA6"]
BAR_WIDTH = 40                    # characters of the longest bar in the terminal
SHOWN = 8                         # plans drawn without --detail: the mix, those good for all,
                                  # then the cheapest others


def _color(index: int) -> str:
    return COLORS[index % len(COLORS)]


def traffic_line(answer: TierAnswer) -> str:
    total = sum(t.requests_per_s for t in answer.tiers)
    parts = [f"{t.name} {share(t.share) if t.share is not None else 'own volume'}"
             for t in answer.tiers]
    return f"traffic: {total:,.3g} requests/s in {len(answer.tiers)} tiers ({', '.join(parts)})"


def headline(answer: TierAnswer) -> list[str]:
    c, mixed = answer.comparison, answer.mixed
    lines = [f"Cheapest mix: {usd(mixed.usd_per_month)} a month: " + "; ".join(
        f"{s.tier} on {s.option}" for s in mixed.served)]
    best = c.best_single
    if best is None:
        lines.append("  no single option is good enough for every tier: only a mix serves them")
    elif c.mixing_wins:
        lines.append(f"  everything on the best model ({best.name}): {usd(best.usd_per_month)} "
                     f"a month; the mix saves {usd(c.saves_usd_per_month)} "
                     f"({best.usd_per_month / mixed.usd_per_month:.2f}x)")
    else:
        lines.append(f"  mixing does not pay here: {best.name} serves every tier for the same "
                     f"{usd(best.usd_per_month)} a month")
    api = c.cheapest_api
    if api is not None:
        lines.append(f"  cheapest single API good enough for every tier: {api.name}, "
                     f"{usd(api.usd_per_month)} a month")
    else:
        lines.append("  no single API is good enough for every tier")
    return lines


def shown_plans(answer: TierAnswer, every: bool = False) -> list[Plan]:
    """The mix, every single option good enough for all tiers, then the cheapest others."""
    if every:
        return answer.plans
    good = [p for p in answer.singles if p.good_for_all]
    rest = [p for p in answer.singles if not p.good_for_all]
    return [answer.mixed, *good, *rest[:max(0, SHOWN - 1 - len(good))]]


def _pool(plan: Plan, tier: str):
    return next((p for p in plan.pools if tier in p.tiers), None)


def tier_grid(answer: TierAnswer) -> Grid:
    grid = Grid("Tiers: who serves each (the cheapest mix)", [
        "tier", "served on", "share", "req/s", "in/out tokens", "SLO", "replicas (shared)",
        "$/month", "share of bill", "capacity from"], text_first=2, text_last=1)
    total = answer.mixed.usd_per_month
    for tier, served in zip(answer.tiers, answer.mixed.served, strict=True):
        pool = _pool(answer.mixed, tier.name)
        replicas = "API" if pool is None else f"{pool.replicas} {pool.setup}"
        others = [t for t in pool.tiers if t != tier.name] if pool is not None else []
        if others:
            replicas += f" with {', '.join(others)}"
        basis = "-" if pool is None else _basis(answer, tier.name, pool)
        grid.add(tier.name, served.option, share(tier.share), number(tier.requests_per_s, 2),
                 f"{tier.input_tokens}/{tier.output_tokens}", tier.slo, replicas,
                 usd(served.usd_per_month), share(served.usd_per_month / total if total else None),
                 Text(basis))
    return grid


def _basis(answer: TierAnswer, tier: str, pool) -> str:
    option = next(o for o in answer.options_of(tier) if o.name == pool.option)
    return next(f.basis for f in option.fits if f.setup == pool.setup)


def plan_grid(answer: TierAnswer, every: bool = True) -> Grid:
    plans = shown_plans(answer, every)
    left = len(answer.plans) - len(plans)
    grid = Grid("Plans: every tier on one option, against the cheapest mix", [
        "plan", "$/month", "over the mix", "good enough for"],
        f"{left} more (not good enough for every tier): --detail" if left else None,
        text_first=1, text_last=1)
    mixed = answer.mixed.usd_per_month
    for plan in plans:
        over = "-" if plan is answer.mixed or not mixed else f"{plan.usd_per_month / mixed:.2f}x"
        good = "every tier" if plan.good_for_all else f"not {', '.join(plan.not_for)}"
        grid.add(plan.name, usd(plan.usd_per_month), over, good)
    return grid


def option_grid(answer: TierAnswer) -> Grid:
    grid = Grid("Options per tier", ["tier", "option", "eligible", "alone $/month",
                                     "capacity tok/s per replica", "setup", "why not / basis"],
                text_first=3, text_last=1)
    for option in answer.options:
        fit = option.best_fit
        grid.add(option.tier, option.name, "yes" if option.eligible else "no",
                 usd(option.alone_usd_per_month), number(fit.tps if fit else None),
                 fit.setup if fit else "-",
                 Text(option.why_not or _option_basis(option)))
    return grid


def _option_basis(option) -> str:
    fit = option.best_fit
    if fit is not None:
        return fit.basis
    return f"API at {rate(option.api.usd_per_mtok)}/Mtok for this tier"


def pool_grid(answer: TierAnswer) -> Grid:
    grid = Grid("Self-hosted pools (replicas shared by tiers, sized for their combined peak)", [
        "plan", "option", "setup", "tiers", "replicas", f"{answer.unit}s", "utilization",
        "$/month"], text_first=4)
    for plan in answer.plans:
        for pool in plan.pools:
            grid.add(plan.name, pool.option, pool.setup, ", ".join(pool.tiers),
                     str(pool.replicas), str(pool.units), share(pool.utilization),
                     usd(pool.usd_per_month))
    return grid


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if unit == "share" else f"{value:.2f}x"


def sensitivity_grid(answer: TierAnswer) -> Grid:
    grid = Grid("What moves the mix (the cheapest mix recomputed; the total request rate held "
                "for shares)", ["input", "base", "-25%", "mix $ at -25%", "base $",
                                "+25%", "mix $ at +25%", "who serves changes at", "to"],
                text_first=1, text_last=1)
    for row in answer.sensitivity:
        grid.add(row.input, _value(row.base, row.unit), _value(row.low, row.unit),
                 usd(row.mixed_usd_month_at_low), usd(row.mixed_usd_month_at_base),
                 _value(row.high, row.unit), usd(row.mixed_usd_month_at_high),
                 _value(row.changes_at, row.unit) if row.changes_at is not None
                 else "no change in range", Text(row.changes_to or "-"))
    return grid


def what_if_grid(answer: TierAnswer) -> Grid:
    grid = Grid("What-ifs (the same measurements, the traffic changed)", [
        "what-if", "change", "mix $/month", "vs now", "served on", "capacity from"],
        text_first=2, text_last=2)
    for w in answer.what_ifs:
        grid.add(w.name, Text(w.change), usd(w.usd_per_month), usd(w.minus_base_usd_per_month),
                 Text(w.assignment), Text("; ".join(w.basis) or "APIs only"))
    return grid


def bar_lines(answer: TierAnswer, every: bool = False) -> list[Text]:
    """Each plan's bill as a text bar, one colour per tier (its legend first)."""
    plans = shown_plans(answer, every)
    top = max(p.usd_per_month for p in plans) or 1.0
    names = [t.name for t in answer.tiers]
    legend = Text("  ")
    for index, name in enumerate(names):
        legend.append("## ", style=_color(index))
        legend.append(f"{name}  ")
    lines = [Text("Bills a month, stacked by tier:", style="bold"), legend]
    width = max(len(p.name) for p in plans)
    for plan in plans:
        line = Text(f"  {plan.name:<{width}} ")
        for served in plan.served:
            cells = round(served.usd_per_month / top * BAR_WIDTH)
            cells = max(cells, 1) if served.usd_per_month > 0 else 0
            line.append("#" * cells, style=_color(names.index(served.tier)))
        line.append(f" {usd(plan.usd_per_month)}")
        if not plan.good_for_all:
            line.append(f" (not good enough for {', '.join(plan.not_for)})", style="dim")
        lines.append(line)
    return lines


def bars_svg(answer: TierAnswer) -> str:
    """Each plan's bill as a horizontal bar stacked by tier, with a legend."""
    plans, names = shown_plans(answer), [t.name for t in answer.tiers]
    top = max(p.usd_per_month for p in plans) or 1.0
    label, width, row = 320, 420, 22
    height = row * (len(plans) + 1) + 10
    parts = []
    for index, name in enumerate(names):
        x = label + index * 110
        parts.append(f"<rect x='{x}' y='4' width='12' height='12' fill='{_color(index)}'/>"
                     f"<text x='{x + 16}' y='14'>{escape(name)}</text>")
    for number_, plan in enumerate(plans):
        y = row * (number_ + 1) + 6
        mark = "" if plan.good_for_all else " *"
        parts.append(f"<text x='{label - 6}' y='{y + 13}' text-anchor='end'>"
                     f"{escape(plan.name + mark)}</text>")
        x = float(label)
        for served in plan.served:
            w = served.usd_per_month / top * width
            parts.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='16' "
                         f"fill='{_color(names.index(served.tier))}'><title>"
                         f"{escape(served.tier)} on {escape(served.option)}: "
                         f"{escape(usd(served.usd_per_month))}</title></rect>")
            x += w
        parts.append(f"<text x='{x + 4:.1f}' y='{y + 13}'>{escape(usd(plan.usd_per_month))}"
                     "</text>")
    note = ("<p class=sub>* not good enough for every tier (its served_by)</p>"
            if any(not p.good_for_all for p in plans) else "")
    return (f"<svg class=tier-bars xmlns='http://www.w3.org/2000/svg' width='{label + width + 90}'"
            f" height='{height}' font-size='12' font-family='sans-serif'>{''.join(parts)}</svg>"
            + note)


def tier_tables(answer: TierAnswer, detail: bool = True) -> list[Grid]:
    found = [tier_grid(answer), plan_grid(answer, detail)]
    if answer.what_ifs:
        found.append(what_if_grid(answer))
    if detail:
        found += [option_grid(answer), pool_grid(answer)]
        if answer.sensitivity:
            found.append(sensitivity_grid(answer))
    return found


def tiers_html(answer: TierAnswer) -> str:
    """The tiered answer for a page: the comparison, the tier table, the stacked bars, every
    table and the caveats."""
    lines = "".join(f"<li>{escape(line.strip())}</li>" for line in headline(answer))
    tables = "".join(grid.html() for grid in tier_tables(answer))
    caveats = "".join(f"<li class=sev-{c.severity}><code>{escape(c.code)}</code>: "
                      f"{escape(c.text)}</li>" for c in answer.caveats)
    return (f"<p>{escape(traffic_line(answer))}</p><ul>{lines}</ul>{bars_svg(answer)}{tables}"
            f"<p><b>Caveats</b></p><ul class=caveats>{caveats}</ul>")
