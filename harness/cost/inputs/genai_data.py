"""The genai-prices package: its import, version, the date of the data in use, and fetching
its current data."""

from __future__ import annotations

from datetime import date
from typing import Any

from harness.cost.inputs.files import CostInputError

_NEWEST: dict[tuple[int, date], date] = {}


class PriceError(CostInputError):
    """A price that cannot be found or used: one line, with the closest known names."""


def _genai() -> Any:
    try:
        import genai_prices
    except ImportError:
        raise PriceError("API prices need the genai-prices package (Python 3.11+): "
                         "pip install genai-prices") from None
    return genai_prices


def genai_version() -> str:
    return f"genai-prices {_genai().__version__}"


def genai_data_date(today: date) -> date:
    """The date of the genai-prices data in use.

    The package dates fetched data by the fetch (its snapshot's timestamp) and gives bundled data
    no date; for that, the newest price change in the data already in force by `today` is taken:
    the data is at least that recent.
    """
    snapshot = _genai().data_snapshot.get_snapshot()
    if snapshot.from_auto_update:
        return snapshot.timestamp.date()
    return _newest_change(snapshot, today)


def _newest_change(snapshot: Any, today: date) -> date:
    key = (id(snapshot), today)
    if key not in _NEWEST:
        _NEWEST[key] = _scan(snapshot, today)
    return _NEWEST[key]


def _scan(snapshot: Any, today: date) -> date:
    newest = date(2000, 1, 1)
    for provider in snapshot.providers:
        for info in provider.models:
            prices = info.prices if isinstance(info.prices, list) else []
            variants = info.price_variants or []
            for item in [*prices, *variants]:
                start = getattr(item.constraint, "start_date", None)
                if start is not None and newest < start <= today:
                    newest = start
    return newest


def refresh_genai_prices() -> str | None:
    """Fetch genai-prices' current data for this process (its UpdatePrices source); None when
    it worked, else why not (the bundled data stays in use)."""
    genai = _genai()
    try:
        snapshot = genai.UpdatePrices().fetch()
    except Exception as err:  # noqa: BLE001 - any network or format failure keeps the bundle
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".strip()
    if snapshot is None:
        return "the price source returned no data"
    genai.data_snapshot.set_custom_snapshot(snapshot)
    return None
