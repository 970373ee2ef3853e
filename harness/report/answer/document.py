"""The build-or-buy answer as a document (harness.report.output.Document): the terminal view
(the decision, the caveats; the full tables with `detail`), Markdown and a self-contained HTML
page (the decision and every table), one CSV table, and the JSON document for scripts."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rich.console import RenderableType
from rich.text import Text

from harness.cost.flat import as_dict, frame
from harness.cost.parts import Answer
from harness.report.answer.tables import demand_line, detail_tables
from harness.report.answer.terminal import answer_view, caveat_lines, decision_lines


def _bullet(line: Text) -> str:
    """A decision line as a Markdown list item: a variant's headline bold, the rest under it."""
    if line.plain.startswith("  "):
        return f"  - {line.plain.strip()}"
    return f"- **{line.plain}**"


def _list(lines: list[str]) -> str:
    return "".join(f"- {line}\n" for line in lines) or "none\n"


@dataclass
class AnswerDocument:
    answer: Answer
    detail: bool = False          # the terminal view's full tables (Markdown and HTML have them)
    table: str = "verdicts"       # the table CSV writes (harness.cost.flat.TABLES)

    def terminal(self) -> RenderableType:
        return answer_view(self.answer, self.detail)

    def markdown(self) -> str:
        answer = self.answer
        decision = "\n".join(_bullet(line) for line in decision_lines(answer))
        matter = [line.plain.strip().removeprefix("- ") for line in caveat_lines(answer.caveats)]
        every = [line.plain.strip().removeprefix("- ")
                 for line in caveat_lines(answer.caveats, least="info", grouped=False)]
        tables = "\n".join(grid.markdown() for grid in detail_tables(answer))
        return (f"# Build or buy: {answer.title}\n\n{demand_line(answer)}\n\n"
                f"## Decision\n\n{decision}\n\n## Caveats that matter\n\n{_list(matter)}\n"
                f"## Tables\n\n{tables}\n## All caveats\n\n{_list(every)}\n"
                f"## Prices used\n\n{_list(answer.prices_used)}")

    def csv(self) -> str:
        return frame(self.answer, self.table).to_csv(index=False)

    def json(self) -> str:
        return json.dumps(as_dict(self.answer), indent=2, default=str) + "\n"

    def html(self) -> str:
        from harness.report.answer.html import (
            caveats_html,
            costs_html,
            decision_html,
            prices_html,
            sensitivity_html,
            whole_answer_html,
        )
        from harness.report.page import page

        answer = self.answer
        sections = [("Decision", decision_html(answer)),
                    ("Caveats", caveats_html(answer.caveats)),
                    ("$ per million tokens", costs_html(answer)),
                    ("Prices", prices_html(answer.prices))]
        if answer.sensitivity:
            sections.append(("What flips the decision", sensitivity_html(answer.sensitivity)))
        sections.append(("The whole answer", whole_answer_html(answer)))
        return page(f"Build or buy: {answer.title}", demand_line(answer), sections, [])
