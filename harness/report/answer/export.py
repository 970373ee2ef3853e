"""The answer for scripts and spreadsheets: one JSON document with every part, or one CSV
table at a time (each verdict row carrying the caveats it rests on)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd

from harness.cost.answer import Answer

TABLES = ("verdicts", "decision", "capacity", "apis", "break-even", "sensitivity", "prices",
          "caveats")


def frame(answer: Answer, table: str) -> pd.DataFrame:
    """One of the answer's tables by name (TABLES)."""
    return {"verdicts": answer.verdicts, "decision": answer.decision,
            "capacity": answer.variants, "apis": answer.apis, "break-even": answer.break_even,
            "sensitivity": answer.sensitivity, "prices": answer.prices,
            "caveats": answer.caveat_frame()}[table]


def _records(data: pd.DataFrame) -> list[dict]:
    return json.loads(data.to_json(orient="records")) if not data.empty else []


def answer_document(answer: Answer) -> dict:
    """Everything `harness cost` says, as one JSON-ready document."""
    return {
        "title": answer.title,
        "unit": answer.unit,
        "capacity_per": f"per {answer.unit}",
        "costs_per": "per replica (one server of a cell, with all its GPUs)",
        "demand": asdict(answer.demand),
        "decision": _records(answer.decision),
        "capacity": _records(answer.variants),
        "apis": _records(answer.apis),
        "verdicts": _records(answer.verdicts),
        "break_even_ranges": _records(answer.break_even),
        "sensitivity": _records(answer.sensitivity),
        "prices": _records(answer.prices),
        "prices_used": answer.prices_used,
        "caveats": [c.as_dict() for c in answer.caveats],
    }
