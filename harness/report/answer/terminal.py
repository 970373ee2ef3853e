"""The terminal answer: the decision first, in a few lines per variant (cheapest way to serve
the traffic, its bill, the runner-up, the margin, what it rests on), then the caveats; the full
tables under --detail."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from harness.cost.answer import Answer
from harness.cost.caveats import Caveat, rank
from harness.cost.decision import NO_CAPACITY
from harness.cost.labels import missing
from harness.report.answer.tables import (
    api_table,
    break_even_table,
    capacity_label,
    demand_line,
    make_table,
    number,
    rate,
    self_hosted_table,
    usd,
    verdict_table,
)

STYLE = {"info": "dim", "warning": "yellow", "critical": "bold red"}


def _capacity_line(answer: Answer, variant: str) -> str:
    row = answer.variants.set_index("variant").loc[variant].to_dict()
    if missing(row.get("capacity_tps")):
        return f"  no capacity at this SLO: {row['slo_note']}"
    row["variant"] = variant
    return (f"  capacity {number(row['capacity_tps_per_unit'])} tok/s per {answer.unit} from "
            f"{capacity_label(row)}")


def _range_lines(answer: Answer, variant: str) -> list[Text]:
    """Where self-hosting wins against the cheapest API, as ranges of monthly traffic."""
    verdicts = answer.verdicts[answer.verdicts["variant"] == variant]
    if "api_usd_per_month" not in verdicts or verdicts["api_usd_per_month"].isna().all() or \
            missing(verdicts.iloc[0].get("capacity_tps")):
        return []
    api = verdicts.loc[verdicts["api_usd_per_month"].idxmin()]
    parts = [f"{side} {api[f'{side}_break_even_ranges']}".replace(" none", " never at this peak")
             for side in ("rented", "owned") if not missing(api.get(f"{side}_break_even_ranges"))]
    if not parts:
        return []
    return [Text(f"  break-even vs {api['api']}: {'; '.join(parts)} "
                 f"(traffic {answer.demand.traffic_mtok_month:,.0f})")]


def decision_lines(answer: Answer) -> list[RenderableType]:
    lines: list[RenderableType] = []
    for row in answer.decision.to_dict("records"):
        variant = row["variant"]
        if row["cheapest"] == NO_CAPACITY or missing(row["cheapest"]):
            lines.append(Text(f"{variant}: {row['cheapest'] or 'no verdict (no traffic given)'}",
                              style="bold"))
        else:
            lines.append(Text(f"{variant}: {row['cheapest']}, {usd(row['usd_per_month'])} a month",
                              style="bold"))
            if not missing(row["runner_up"]):
                lines.append(Text(f"  runner-up: {row['runner_up']}, "
                                  f"{usd(row['runner_up_usd_per_month'])} a month "
                                  f"(+{usd(row['margin_usd_per_month'])}, "
                                  f"{row['runner_up_over_cheapest']:.2f}x)"))
        lines.append(Text(_capacity_line(answer, variant)))
        lines += _range_lines(answer, variant)
        if row["caveats"]:
            lines.append(Text(f"  rests on: {row['caveats'].replace('; ', ', ')}",
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
    lines = []
    for group in by_code.values():
        more = f" (and {len(group) - 1} more like it)" if len(group) > 1 else ""
        lines.append(Text(f"  - [{group[0].severity}] {group[0].code}: {group[0].text}{more}",
                          style=STYLE[group[0].severity]))
    return lines


def sensitivity_table(answer: Answer) -> Table:
    table = make_table("What flips the decision (self-hosted minus API, $ a month; against the "
                   "cheapest API)", ["variant", "side", "input", "base", "-25%", "base $",
                                     "+25%", "flips at", "change"], text_first=3)
    for row in answer.sensitivity.to_dict("records"):
        flip, change = row["flips_at"], row["flips_at_change"]
        share = row["unit"] == "share"
        none = "no flip in [0, 1]" if share else "no flip in 0.1x-10x"
        moved = "-" if missing(change) else (f"{change:+.2f}" if share else f"{change:+.0%}")
        table.add_row(row["variant"], row["side"], row["input"], _value(row["base"], share),
                      usd(row["minus_api_usd_month_at_low"]),
                      usd(row["minus_api_usd_month_at_base"]),
                      usd(row["minus_api_usd_month_at_high"]),
                      none if missing(flip) else _value(flip, share), moved)
    return table


def _value(value: float, share: bool = False) -> str:
    if share:
        return f"{value:.0%}"
    return rate(value).removeprefix("$") if abs(value) < 100 else number(value)


def answer_view(answer: Answer, detail: bool = False) -> RenderableType:
    parts: list[RenderableType] = [Text(f"Build or buy: {answer.title}", style="bold"),
                                   Text(demand_line(answer))]
    parts += decision_lines(answer)
    parts.append(Text("Caveats that matter:", style="bold"))
    parts += caveat_lines(answer.caveats) or [Text("  none")]
    if detail:
        parts += _detail(answer)
    parts.append(Text("Prices used:", style="bold"))
    parts += [Text(f"  {line}") for line in answer.prices_used]
    if not detail:
        parts.append(Text("Full tables (self-hosted, APIs, every verdict, break-even ranges, "
                          "sensitivity, all caveats): --detail; for scripts: --format json|csv",
                          style="dim"))
    return Group(*parts)


def _detail(answer: Answer) -> list[RenderableType]:
    hosting = "; ".join(line for line in answer.prices_used if not line.startswith("API"))
    apis = "; ".join(line for line in answer.prices_used if line.startswith("API"))
    parts: list[RenderableType] = [self_hosted_table(answer, hosting), api_table(answer, apis)]
    if answer.variants["capacity_tps"].isna().all():
        pass  # nothing to compare: the caveats say why
    elif answer.demand.average_tps is None:
        parts.append(break_even_table(answer))
    else:
        parts.append(verdict_table(
            answer, "break-even: U = the utilization at which self-hosting costs what the API "
                    "does; Mtok/mo = every range of monthly traffic in which self-hosting is "
                    "no dearer, provisioned for this peak"))
    if not answer.sensitivity.empty:
        parts.append(sensitivity_table(answer))
    parts.append(Text("All caveats:", style="bold"))
    parts += caveat_lines(answer.caveats, least="info", grouped=False)
    return parts
