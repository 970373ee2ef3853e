"""Cost formulas (docs/cost-model.md states them too)."""

from __future__ import annotations


def usd_per_mtok(usd_per_hour: float | None, tokens_per_s: float) -> float | None:
    """$ per million tokens at full load: hourly cost / (tokens/s x 3600 / 1e6).

    The InferenceX convention: the whole machine-hour is charged to the tokens counted, so
    the per-output and per-total figures are each "if all tokens were of this kind".
    """
    if usd_per_hour is None or tokens_per_s <= 0:
        return None
    return usd_per_hour / (tokens_per_s * 3600 / 1e6)
