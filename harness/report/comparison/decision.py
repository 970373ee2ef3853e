"""The decision of each run, diffed against the first run's: per variant its sustained capacity
at the profile's SLO, the monthly bill of the cheapest option, the verdict, the runner-up and
the margin, the break-even against the cheapest API and the caveats it rests on; per cell its
own capacity at that SLO. Each run's answer is the one its report shows (the cost profile its
config names; harness.report.answer.view)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.cost.capacity import cell_capacity
from harness.cost.caveats import SIDES
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.profile import load_profile
from harness.cost.measured import judged
from harness.cost.parts import Answer, Capacity, Decision
from harness.report.answer.view import CostView, profile_path
from harness.store.run_store import StoredRun

# quantity -> its number format ('$': dollars); quantities absent here are words
NUMBERS = {"sustained capacity tok/s": ",.0f", "monthly bill": "$,.2f",
           "margin over runner-up": "$,.2f"}
VARIANT_LEVEL = "best cell"   # the cell column of a variant's decision rows


@dataclass
class Decisions:
    """The decision rows of every run after the first, and why a run has none."""
    rows: pd.DataFrame           # variant, cell, quantity, run, before, after, details, change
    missing: dict[str, str]      # run -> why it has no decision


def _capacity_detail(capacity: Capacity | None) -> str | None:
    return None if capacity is None else f"{capacity.cell}, {capacity.label}"


def _break_even(answer: Answer, decision: Decision) -> tuple[str | None, str | None]:
    """The traffic ranges where the winning self-hosted side costs less than the cheapest
    API, and against which API."""
    verdict = answer.cheapest_verdict(decision.variant)
    if verdict is None:
        return None, None
    named = f"{decision.cheapest} {decision.runner_up}"
    side = next((s for s in SIDES if f"({s})" in named), "rented")
    comparison = verdict.side(side).comparison
    if comparison is None:
        return None, None
    return comparison.ranges_text, f"{side} vs {verdict.api.name}"


def variant_values(answer: Answer) -> dict[tuple[str, str, str], tuple[object, str | None]]:
    """(variant, VARIANT_LEVEL, quantity) -> (value, detail) of one run's decision."""
    found: dict[tuple[str, str, str], tuple[object, str | None]] = {}
    for decision in answer.decision:
        capacity = decision.capacity
        margin = decision.margin_usd_per_month
        runner_up = decision.runner_up
        if runner_up is not None and decision.runner_up_over_cheapest is not None:
            runner_up += f" ({decision.runner_up_over_cheapest:.2f}x)"
        rows = {
            "verdict": (decision.cheapest or "no traffic given",
                        "indicative only" if decision.indicative else None),
            "monthly bill": (decision.usd_per_month, None),
            "runner-up": (runner_up, None),
            "margin over runner-up": (margin, None),
            "break-even": _break_even(answer, decision),
            "sustained capacity tok/s": (None if capacity is None else capacity.tps,
                                         _capacity_detail(capacity)),
            "rests on": (decision.caveat_codes or "no caveat", None),
        }
        found |= {(decision.variant, VARIANT_LEVEL, q): value for q, value in rows.items()}
    return found


def cell_values(stored: StoredRun, answer: Answer
                ) -> dict[tuple[str, str, str], tuple[object, str | None]]:
    """(variant, cell, 'sustained capacity tok/s') -> (value, its point) for every cell,
    judged at the profile's SLO as the answer is ('no capacity at the SLO' where none)."""
    path = profile_path(stored)
    try:
        profile = load_profile(path) if path is not None else None
    except (CostInputError, ValueError):
        profile = None
    if profile is None:
        return {}
    run = judged(stored, profile.slo)
    found = {}
    for cell in dict.fromkeys(p.result.cell for p in run.points):
        points = [p for p in run.points if p.result.cell == cell]
        capacity = cell_capacity(points, run.capacities.get(cell),
                                 answer.demand.input_per_output, profile.input_output_cost_ratio)
        found[(points[0].result.variant, cell, "sustained capacity tok/s")] = (
            (capacity.tps, capacity.label) if capacity is not None
            else ("no capacity at the SLO", None))
    return found


def run_values(stored: StoredRun, view: CostView
               ) -> dict[tuple[str, str, str], tuple[object, str | None]]:
    if view.answer is None:
        return {}
    return variant_values(view.answer) | cell_values(stored, view.answer)


def _change(before: object, after: object) -> tuple[float | None, float | None, bool]:
    """(after - before, its percentage of before, whether the value changed)."""
    numbers = all(isinstance(v, (int, float)) for v in (before, after))
    if not numbers:
        return None, None, before != after
    delta = float(after) - float(before)
    return delta, (100 * delta / before if before else None), delta != 0


def decisions(runs: list[StoredRun], views: list[CostView]) -> Decisions:
    """Every decision quantity of every run after the first, against the first run's."""
    values = [run_values(run, view) for run, view in zip(runs, views, strict=True)]
    keys = list(dict.fromkeys(k for found in values for k in found))
    rows = []
    for run, found in zip(runs[1:], values[1:], strict=True):
        for key in keys:
            before, before_detail = values[0].get(key, (None, None))
            after, after_detail = found.get(key, (None, None))
            delta, pct, changed = _change(before, after)
            rows.append({"variant": key[0], "cell": key[1], "quantity": key[2],
                         "run": run.name, "before": before, "after": after,
                         "before_detail": before_detail, "after_detail": after_detail,
                         "change": delta, "change_pct": pct,
                         "changed": changed or before_detail != after_detail})
    missing = {run.name: view.reason for run, view in zip(runs, views, strict=True)
               if view.answer is None}
    return Decisions(pd.DataFrame(rows), missing)
