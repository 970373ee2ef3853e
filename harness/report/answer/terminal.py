"""The terminal answer: the decision first, in a few lines per variant (cheapest way to serve
the traffic, its bill, the runner-up, the margin, what it rests on), then the caveats; the full
tables under --detail."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from harness.cost.caveats import SIDES, Caveat, rank
from harness.cost.decision import NO_CAPACITY
from harness.cost.parts import Answer, Decision
from harness.report.answer.format import number, usd
from harness.report.answer.tables import capacity_label, demand_line, detail_tables

STYLE = {"info": "dim", "warning": "yellow", "critical": "bold red"}


def _capacity_line(answer: Answer, name: str) -> str:
    variant = answer.variant(name)
    capacity = variant.capacity
    if capacity is None:
        return f"  no capacity at this SLO: {variant.slo_note}"
    return (f"  capacity {number(capacity.tps_per_unit)} tok/s per {answer.unit} from "
            f"{capacity_label(capacity)}")


def _range_lines(answer: Answer, name: str) -> list[Text]:
    """Where self-hosting wins against the cheapest API, as ranges of monthly traffic."""
    verdict = answer.cheapest_verdict(name)
    if verdict is None or verdict.variant.capacity is None:
        return []
    parts = [f"{side} {compared.ranges_text}".replace(" none", " never at this peak")
             for side in SIDES if (compared := verdict.side(side).comparison) is not None]
    if not parts:
        return []
    return [Text(f"  break-even vs {verdict.api.name}: {'; '.join(parts)} "
                 f"(traffic {answer.demand.traffic_mtok_month:,.0f})")]


def _headline(decision: Decision) -> list[Text]:
    variant = decision.variant
    if decision.cheapest in (NO_CAPACITY, None):
        return [Text(f"{variant}: {decision.cheapest or 'no verdict (no traffic given)'}",
                     style="bold")]
    lines = [Text(f"{variant}: {decision.cheapest}, {usd(decision.usd_per_month)} a month",
                  style="bold")]
    if decision.indicative is not None:  # a critical caveat: no verdict to act on
        lines = [Text(f"{variant}: {decision.indicative}", style="bold red"),
                 Text(f"  cheapest as measured: {decision.cheapest}, "
                      f"{usd(decision.usd_per_month)} a month")]
    if decision.runner_up is not None:
        lines.append(Text(f"  runner-up: {decision.runner_up}, "
                          f"{usd(decision.runner_up_usd_per_month)} a month "
                          f"(+{usd(decision.margin_usd_per_month)}, "
                          f"{decision.runner_up_over_cheapest:.2f}x)"))
    return lines


def decision_lines(answer: Answer) -> list[Text]:
    """Per variant: its headline (bold), then indented lines: the runner-up, the capacity, the
    break-even ranges and the caveats it rests on."""
    lines: list[Text] = []
    for decision in answer.decision:
        lines += _headline(decision)
        lines.append(Text(_capacity_line(answer, decision.variant)))
        lines += _range_lines(answer, decision.variant)
        if decision.rests_on:
            lines.append(Text(f"  rests on: {decision.caveat_codes.replace('; ', ', ')}",
                              style="yellow"))
    return lines


def caveat_lines(caveats: list[Caveat], least: str = "warning",
                 grouped: bool = True) -> list[Text]:
    """One line per caveat code (the first sentence, and how many more of that code), or one
    per caveat."""
    by_code: dict[str, list[Caveat]] = {}
    for index, caveat in enumerate(caveats):
        if rank(caveat.severity) >= rank(least):
            by_code.setdefault(caveat.code if grouped else str(index), []).append(caveat)
    lines = []  # the worst first: a critical caveat never follows a warning
    for group in sorted(by_code.values(), key=lambda group: -rank(group[0].severity)):
        more = f" (and {len(group) - 1} more like it)" if len(group) > 1 else ""
        lines.append(Text(f"  - [{group[0].severity}] {group[0].code}: {group[0].text}{more}",
                          style=STYLE[group[0].severity]))
    return lines


def answer_view(answer: Answer, detail: bool = False) -> RenderableType:
    parts: list[RenderableType] = [Text(f"Build or buy: {answer.title}", style="bold"),
                                   Text(demand_line(answer))]
    parts += [Text(c.text) for c in answer.caveats if c.code == "tuned"]  # what the variants are
    parts += decision_lines(answer)
    parts.append(Text("Caveats that matter:", style="bold"))
    parts += caveat_lines(answer.caveats) or [Text("  none")]
    if detail:
        parts += [grid.rich() for grid in detail_tables(answer)]
        parts.append(Text("All caveats:", style="bold"))
        parts += caveat_lines(answer.caveats, least="info", grouped=False)
    parts.append(Text("Prices used:", style="bold"))
    parts += [Text(f"  {line}") for line in answer.prices_used]
    if not detail:
        parts.append(Text("Full tables (self-hosted, APIs, every verdict, break-even ranges, "
                          "sensitivity, all caveats): --detail; for scripts: --format json|csv; "
                          "a document: --format md|html",
                          style="dim"))
    return Group(*parts)
