"""The report of stored runs as a document (harness/report/output.py): the results table in the
terminal or as Markdown, summary.csv's rows as CSV or JSON, and the self-contained page."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
from rich.console import Group, RenderableType
from rich.text import Text

from harness.report.output import markdown_table
from harness.report.run_report.summary import summary_frame
from harness.report.run_report.table import results_table, table_columns, table_notes
from harness.store.run_store import StoredRun


@dataclass
class RunReport:
    """`harness report`: one or more stored runs, each with its summary frame."""

    runs: list[StoredRun]
    frames: list[pd.DataFrame]
    width: int | None = None  # the terminal's, for the table's columns

    @classmethod
    def of(cls, runs: list[StoredRun], width: int | None = None) -> RunReport:
        return cls(runs, [summary_frame(run, with_phases=True) for run in runs], width)

    def title(self, run: StoredRun) -> str:
        return f"{run.name} ({run.root})"

    def terminal(self) -> RenderableType:
        return Group(*(results_table(frame, title=self.title(run), width=self.width)
                       if not frame.empty else Text(f"{run.root}: no points measured yet")
                       for run, frame in zip(self.runs, self.frames, strict=True)))

    def markdown(self) -> str:
        parts = []
        for run, frame in zip(self.runs, self.frames, strict=True):
            parts.append(f"# {self.title(run)}\n")
            if frame.empty:
                parts.append("no points measured yet\n")
                continue
            parts.append(markdown_table(readable(frame)))
            notes = table_notes(frame).splitlines()
            parts += ["".join(f"- {note}\n" for note in notes)] if notes else []
        return "\n".join(parts)

    def csv(self) -> str:
        """summary.csv's rows; with several runs, a `run` column first."""
        if len(self.runs) == 1:
            return self.frames[0].to_csv(index=False)
        return pd.concat([frame.assign(run=run.name)[["run", *frame.columns]]
                          for run, frame in zip(self.runs, self.frames, strict=True)],
                         ignore_index=True).to_csv(index=False)

    def json(self) -> str:
        return json.dumps({"runs": [
            {"run": run.name, "path": str(run.root),
             "rows": json.loads(frame.to_json(orient="records")) if not frame.empty else []}
            for run, frame in zip(self.runs, self.frames, strict=True)]}, indent=2) + "\n"

    def html(self) -> str:
        from harness.report.run_report.html import build_report

        return build_report(self.runs).html


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """The terminal table's columns and cells (variant and batch apart), as plain text."""
    columns = [column for column in table_columns(frame) if column[0] != "cell"]
    rows = [{name: Text.from_markup(cell(row)).plain for name, _, cell in columns}
            for row in frame.to_dict("records") if row["status"] == "ok"]
    failed = [{"variant": row["variant"], "load": row["point"],
               "ok/err": f"failed: {str(row.get('reason') or '').splitlines()[0]}"}
              for row in frame.to_dict("records") if row["status"] != "ok"]
    return pd.DataFrame(rows + failed, columns=[name for name, _, _ in columns])
