"""One output interface for every document of stored results: the run report, a comparison of
runs and the build-or-buy answer each render to the terminal, Markdown, CSV, JSON and a
self-contained HTML page behind one call, `render(document, fmt)`.

A document is a small class with one method per format; each document keeps its views side
by side (report/run_report/, report/comparison/, report/answer/), and the commands never
switch on the format themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

import pandas as pd
from rich.console import RenderableType


class Format(StrEnum):
    table = "table"  # the terminal: rich tables and lines
    md = "md"
    csv = "csv"
    json = "json"
    html = "html"  # one self-contained page, no network needed to open it


class Document(Protocol):
    """What every document renders to (text formats end with a newline)."""

    def terminal(self) -> RenderableType: ...
    def markdown(self) -> str: ...
    def csv(self) -> str: ...
    def json(self) -> str: ...
    def html(self) -> str: ...


METHODS = {Format.table: "terminal", Format.md: "markdown", Format.csv: "csv",
           Format.json: "json", Format.html: "html"}


def render(document: Document, fmt: Format) -> RenderableType | str:
    """The document in `fmt`: rich renderables for the terminal, text for the rest."""
    return getattr(document, METHODS[Format(fmt)])()


def markdown_cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of `frame` (cells as they are; '-' for missing)."""
    if frame.empty:
        return "(none)\n"
    lines = ["| " + " | ".join(markdown_cell(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(markdown_cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def columns_to_fit(frame: pd.DataFrame, width: int | None, drop_order: Sequence[str]
                   ) -> list[str]:
    """The columns of `frame` (cells as text) to show in `width`: the rest in `drop_order`
    left out until whole cells and headers fit, so that no number is ever cut."""
    if width is None:
        return list(frame.columns)
    widths = {name: max([len(str(name)), *(len(str(v)) for v in frame[name])]) + 3
              for name in frame.columns}
    for name in drop_order:
        if sum(widths.values()) <= width:
            break
        widths.pop(name, None)
    return list(widths)
