"""`harness compare` leads with the decision: per variant and cell the capacity, the bill, the
verdict, the break-even and the margin, before -> after, in every format; a capacity search's
points are matched by their step in the search, not by the rate in their names."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store.run_store import write_checksums
from tests.test_compare import rerun
from tests.test_report_html import QUICKSTART

runner = CliRunner()
CELL = "bf16-b16"


def rename_search_point(run: Path, old: str, new: str, rate: float) -> None:
    """A search that tried another rate at the same step: the point's id, rate and files,
    the cell's capacity record and the checksums, as a run would have written them."""
    points = run / "cells" / CELL / "points"
    data = json.loads((points / f"{old}.json").read_text())
    data["point"], data["rate"] = new, rate
    (points / f"{new}.json").write_text(json.dumps(data))
    (points / f"{old}.requests.parquet").rename(points / f"{new}.requests.parquet")
    for stale in (f"{old}.json", f"{old}.sha256"):
        (points / stale).unlink()
    write_checksums(points / f"{new}.sha256",
                    [points / f"{new}.json", points / f"{new}.requests.parquet"])
    record_path = run / "cells" / CELL / "capacity.json"
    record = json.loads(record_path.read_text())
    for step in record["steps"]:
        if step["point"] == old:
            step["point"], step["rate_rps"] = new, rate
    if record.get("point") == old:
        record["point"], record["rate_rps"] = new, rate
    record_path.write_text(json.dumps(record))


def changed_run(tmp_path: Path) -> Path:
    """The committed run re-measured at half the hourly price, its bf16 batch-16 search
    having found 138 req/s where the first found 58."""
    run = rerun(tmp_path, "cheaper")
    manifest = json.loads((run / "run.json").read_text())
    manifest["config"]["cost"]["usd_per_hour"] = 0.05
    (run / "run.json").write_text(json.dumps(manifest))
    rename_search_point(run, "search-r58", "search-r138", 138.0)
    return run


def compare(*args: object):
    result = runner.invoke(app, ["compare", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def decision_rows(output: str) -> pd.DataFrame:
    return pd.DataFrame(json.loads(output)["decision"]).set_index(["variant", "cell", "quantity"])


def test_the_decision_is_diffed_per_variant_and_cell(tmp_path):
    data = json.loads(compare(QUICKSTART, changed_run(tmp_path), "--format", "json"))
    rows = pd.DataFrame(data["decision"]).set_index(["variant", "cell", "quantity"])
    bill = rows.loc[("bf16", "best cell", "monthly bill")]
    assert bill["before"] == 219.0 and bill["after"] == 109.5
    assert round(bill["change_pct"], 1) == -50.0 and bill["changed"]
    capacity = rows.loc[("bf16", "best cell", "sustained capacity tok/s")]
    assert round(capacity["before"]) == 7779
    assert capacity["before_detail"] == "bf16-b16, batch 16 @ 58 req/s"
    assert capacity["after_detail"] == "bf16-b16, batch 16 @ 138 req/s"
    cell = rows.loc[("bf16", "bf16-b4", "sustained capacity tok/s")]
    assert cell["before"] == cell["after"] and not cell["changed"]  # that cell is the same
    verdict = rows.loc[("bf16", "best cell", "verdict")]
    assert verdict["before"] == verdict["after"] == "self-hosted (rented)"
    assert verdict["before_detail"] == "indicative only"  # it rests on the dummy model
    margin = rows.loc[("bf16", "best cell", "margin over runner-up")]
    assert margin["after"] - margin["before"] == 109.5  # the runner-up API did not move
    assert "Mtok/mo" in rows.loc[("bf16", "best cell", "break-even")]["after"]
    assert data["biggest_changes"][0].startswith("bf16: monthly bill $219.00 -> $109.50 (-50.0%)")


def test_search_points_are_matched_by_their_step_not_their_rate(tmp_path):
    data = json.loads(compare(QUICKSTART, changed_run(tmp_path), "--format", "json"))
    assert data["not_compared"] == []
    deltas = pd.DataFrame(data["deltas"])
    step = deltas[(deltas["variant"] == "bf16") & (deltas["max_num_seqs"] == 16)
                  & (deltas["point"] == "search step 4")]
    assert set(step["base_point"]) == {"search-r58"} and set(step["run_point"]) == {"search-r138"}
    assert (step["delta"] == 0).all()  # the same measurement under another name


def test_the_table_leads_with_the_biggest_changes_and_the_decision(tmp_path):
    output = compare(QUICKSTART, changed_run(tmp_path))
    lines = output.splitlines()
    assert lines[0] == "Biggest changes:"
    assert lines[1].strip().startswith("bf16: monthly bill $219.00 -> $109.50")
    assert output.index("The decision:") < output.index("Settings that differ:")
    assert "search step 4 (search-r58 | search-r138)" in output
    assert "not compared" not in output


def test_markdown_csv_and_html_carry_the_decision(tmp_path):
    other = changed_run(tmp_path)
    markdown = compare(QUICKSTART, other, "--format", "md")
    assert markdown.index("## Biggest changes") < markdown.index("## The decision")
    assert "| bf16 | monthly bill | $219.00 | $109.50 | -50.0% |" in markdown
    frame = pd.read_csv(io.StringIO(compare(QUICKSTART, other, "--format", "csv")))
    decision = frame[frame["table"] == "decision"]
    assert frame.columns[0] == "table" and frame["table"].iloc[0] == "decision"
    assert len(frame[frame["table"] == "point"]) == len(
        json.loads(compare(QUICKSTART, other, "--format", "json"))["deltas"])
    bill = decision[(decision["variant"] == "bf16") & (decision["quantity"] == "monthly bill")]
    assert bill["after"].astype(float).tolist() == [pytest.approx(109.5)]
    page = compare(QUICKSTART, other, "--format", "html")
    assert page.index("The decision, before and after") < page.index("Settings that differ")
    assert "bf16: monthly bill $219.00 -&gt; $109.50 (-50.0%)" in page


def test_an_unchanged_rerun_says_nothing_changed(tmp_path):
    data = json.loads(compare(QUICKSTART, rerun(tmp_path), "--format", "json"))
    assert data["biggest_changes"] == [
        "nothing changed beyond noise: the same decision, and no point's metric moved beyond "
        "its noise"]
    assert not any(row["changed"] for row in data["decision"])
