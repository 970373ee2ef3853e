"""A table of the cost views, written once and shown three ways: a rich table in the terminal,
a Markdown table and an HTML table. Its cells are text; a cell may carry rich markup
('[green]self-hosted[/green]') or be a styled rich Text, which the terminal shows in colour
and Markdown and HTML as plain text."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

import pandas as pd
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from harness.report.output import markdown_table

Cell = str | Text
TEXT_WIDTH = 16  # the narrowest a text column is wrapped to before the table gives way


def plain(cell: Cell) -> str:
    """A cell's text as the terminal shows it, without its styles."""
    return cell.plain if isinstance(cell, Text) else Text.from_markup(cell).plain


@dataclass
class Grid:
    """Numbers right-aligned; the first `text_first` and last `text_last` columns are text."""

    title: str
    columns: list[str]
    caption: str | None = None
    text_first: int = 2
    text_last: int = 0
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        """A row; a short one leaves its last columns empty."""
        self.rows.append(list(cells))

    def _is_text(self, index: int) -> bool:
        return index < self.text_first or index >= len(self.columns) - self.text_last

    def rich(self) -> Fitted:
        """The table where the terminal is wide enough for every cell whole; in a narrower
        one each row as its own block of 'column: value' lines (no number is ever cut)."""
        return Fitted(self)

    def table(self) -> Table:
        table = Table(title=self.title, caption=self.caption, header_style="bold",
                      caption_justify="left", title_justify="left")
        for index, name in enumerate(self.columns):
            text = self._is_text(index)
            table.add_column(name, justify="left" if text else "right", no_wrap=not text,
                             overflow="fold")  # words may wrap, numbers never
        for row in self.rows:
            table.add_row(*row)
        return table

    def width(self) -> int:
        """The width the table needs with every number whole on one line (text columns may
        wrap down to TEXT_WIDTH)."""
        need = 1
        for index, name in enumerate(self.columns):
            longest = max((len(plain(row[index])) for row in self.rows if index < len(row)),
                          default=0)
            text = self._is_text(index)
            need += (min(max(longest, len(name)), TEXT_WIDTH) if text
                     else max(longest, *map(len, name.split()))) + 3
        return need

    def records(self) -> Group:
        lines: list[RenderableType] = [Text(self.title, style="bold")]
        for row in self.rows:
            lines.append(Text(""))
            for name, cell in zip(self.columns, row, strict=False):
                line = Text(f"  {name}: ", style="dim")
                line.append(cell if isinstance(cell, Text) else Text.from_markup(cell))
                lines.append(line)
        if self.caption:
            lines.append(Text(self.caption, style="dim"))
        return Group(*lines)

    def plain_rows(self) -> list[list[str]]:
        width = len(self.columns)
        return [[plain(cell) for cell in row] + [""] * (width - len(row)) for row in self.rows]

    def markdown(self) -> str:
        table = markdown_table(pd.DataFrame(self.plain_rows(), columns=self.columns))
        caption = f"\n{self.caption}\n" if self.caption else ""
        return f"**{self.title}**\n\n{table}{caption}"

    def html(self) -> str:
        head = "".join(f"<th>{escape(name)}</th>" for name in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td class=num>{escape(cell)}</td>" if not self._is_text(index)
                             else f"<td>{escape(cell)}</td>"
                             for index, cell in enumerate(row)) + "</tr>"
            for row in self.plain_rows())
        caption = f"<p class=sub>{escape(self.caption)}</p>" if self.caption else ""
        return (f"<p><b>{escape(self.title)}</b></p>"
                f"<table class=facts><tr>{head}</tr>{body}</table>{caption}")


@dataclass
class Fitted:
    """A grid that decides at render time, from the terminal's width, how to show itself."""

    grid: Grid

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        fits = self.grid.width() <= options.max_width
        yield self.grid.table() if fits else self.grid.records()
