"""The tiered answer as a document (harness.report.output.Document): the terminal view (the
decision, the tier table, the plans, the what-ifs, the stacked bars, the caveats; every option,
the pools and the sensitivity with `detail`), Markdown, a self-contained page, one CSV table
and the JSON document."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.text import Text

from harness.cost.tier_flat import tier_dict, tier_frame
from harness.cost.tier_parts import TierAnswer
from harness.report.answer.html import prices_html
from harness.report.answer.terminal import caveat_lines
from harness.report.answer.tiers import (
    bar_lines,
    headline,
    tier_tables,
    tiers_html,
    traffic_line,
)
from harness.report.page import page


@dataclass
class TierDocument:
    answer: TierAnswer
    detail: bool = False
    table: str = "tiers"

    def terminal(self) -> RenderableType:
        answer = self.answer
        parts: list[RenderableType] = [Text(f"Tiers and model choice: {answer.title}",
                                            style="bold"), Text(traffic_line(answer))]
        parts += [Text(line, style="bold" if not line.startswith(" ") else "")
                  for line in headline(answer)]
        parts += [grid.rich() for grid in tier_tables(answer, self.detail)]
        parts += bar_lines(answer, self.detail)
        parts.append(Text("Caveats that matter:", style="bold"))
        parts += caveat_lines(answer.caveats) or [Text("  none")]
        if self.detail:
            parts.append(Text("All caveats:", style="bold"))
            parts += caveat_lines(answer.caveats, least="info", grouped=False)
        parts.append(Text("Prices used:", style="bold"))
        parts += [Text(f"  {line}") for line in answer.prices_used]
        if not self.detail:
            parts.append(Text("Every option, the pools and what moves the mix: --detail; for "
                              "scripts: --format json|csv --table tiers|plans|options|pools|"
                              "sensitivity|what-ifs|prices|caveats", style="dim"))
        return Group(*parts)

    def markdown(self) -> str:
        answer = self.answer
        head = "\n".join(f"- {line.strip()}" for line in headline(answer))
        tables = "\n".join(grid.markdown() for grid in tier_tables(answer))
        caveats = "".join(f"- [{c.severity}] {c.code}: {c.text}\n" for c in answer.caveats)
        caveats = caveats or "none\n"
        used = "".join(f"- {line}\n" for line in answer.prices_used)
        return (f"# Tiers and model choice: {answer.title}\n\n{traffic_line(answer)}\n\n"
                f"## Decision\n\n{head}\n\n## Tables\n\n{tables}\n## Caveats\n\n"
                f"{caveats}\n## Prices used\n\n{used}")

    def csv(self) -> str:
        return tier_frame(self.answer, self.table).to_csv(index=False)

    def json(self) -> str:
        return json.dumps(tier_dict(self.answer), indent=2, default=str) + "\n"

    def html(self) -> str:
        answer = self.answer
        return page(f"Tiers and model choice: {answer.title}", traffic_line(answer),
                    [("Decision", tiers_html(answer)), ("Prices", prices_html(answer.prices))],
                    [])
