"""The listings as documents (harness.report.output.Document): every measured point priced
(`harness cost --points`) and every known price (`harness prices`), each as terminal tables,
Markdown tables, CSV, JSON and a self-contained HTML page."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
from rich.console import Group, RenderableType

from harness.cost.flat import point_frame
from harness.cost.points import PointCost
from harness.report.answer.grid import Grid
from harness.report.answer.listings import api_price_table, gpu_price_table, points_table


def _markdown(title: str, grids: list[Grid]) -> str:
    return f"# {title}\n\n" + "\n".join(grid.markdown() for grid in grids)


def _html(title: str, subtitle: str, grids: list[Grid]) -> str:
    from harness.report.page import page

    return page(title, subtitle, [(grid.title, grid.html()) for grid in grids], [])


@dataclass
class PointsDocument:
    points: list[PointCost]
    caption: str                  # what was measured and how it is priced

    def _grid(self) -> Grid:
        return points_table(self.points, self.caption)

    def terminal(self) -> RenderableType:
        return self._grid().rich()

    def markdown(self) -> str:
        return _markdown("Measured points", [self._grid()])

    def csv(self) -> str:
        return point_frame(self.points).to_csv(index=False)

    def json(self) -> str:
        return point_frame(self.points).to_json(orient="records", indent=2) + "\n"

    def html(self) -> str:
        return _html("Measured points", self.caption, [self._grid()])


@dataclass
class PricesDocument:
    gpus: pd.DataFrame | None     # None: not asked for
    apis: pd.DataFrame | None

    def _grids(self) -> list[Grid]:
        found = [gpu_price_table(self.gpus)] if self.gpus is not None else []
        return found + ([api_price_table(self.apis)] if self.apis is not None else [])

    def _frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return (pd.DataFrame() if self.gpus is None else self.gpus,
                pd.DataFrame() if self.apis is None else self.apis)

    def terminal(self) -> RenderableType:
        return Group(*(grid.rich() for grid in self._grids()))

    def markdown(self) -> str:
        return _markdown("Known prices", self._grids())

    def csv(self) -> str:
        gpus, apis = self._frames()
        both = pd.concat([gpus.assign(kind="gpu"), apis.assign(kind="api")], ignore_index=True)
        return both.to_csv(index=False)

    def json(self) -> str:
        gpus, apis = self._frames()
        return json.dumps({"gpus": json.loads(gpus.to_json(orient="records")),
                           "apis": json.loads(apis.to_json(orient="records"))}, indent=2) + "\n"

    def html(self) -> str:
        return _html("Known prices", "GPU rental and hosted API prices, each with the date "
                     "of its data", self._grids())
