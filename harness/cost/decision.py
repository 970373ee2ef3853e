"""The decision in a few lines: per variant, the cheapest way to serve this traffic (rented,
owned or an API), its monthly bill, the runner-up, the margin and the caveats that matter."""

from __future__ import annotations

import pandas as pd

from harness.cost.caveats import Caveat, codes, rank
from harness.cost.labels import missing

NO_CAPACITY = "no capacity at this SLO"


def _options(rows: list[dict]) -> list[tuple[str, float, str | None]]:
    """(option, $ a month, side) for self-hosting rented and owned, and for every API."""
    first = rows[0]
    found = [(f"self-hosted ({side})", first[f"{side}_usd_per_month"], side)
             for side in ("rented", "owned") if not missing(first.get(f"{side}_usd_per_month"))]
    found += [(f"API {r['api']}", r["api_usd_per_month"], None) for r in rows
              if not missing(r.get("api_usd_per_month"))]
    return sorted(found, key=lambda option: option[1])


def _who(option: tuple[str, float, str | None]) -> tuple[str | None, str | None]:
    """(side, API) of an option: ('rented', None) or (None, 'groq:...')."""
    return (option[2], None) if option[2] is not None else (None, option[0].removeprefix("API "))


def _matters(caveats: list[Caveat], variant: str, side: str | None,
             api: str | None) -> list[Caveat]:
    """Warnings and worse about this variant's winning option (or about everything)."""
    return [c for c in caveats if rank(c.severity) >= 1 and c.variant in (None, variant)
            and (c.side is None or c.side == side) and (c.api is None or c.api == api)]


def decision_frame(verdicts: pd.DataFrame, caveats: list[Caveat]) -> pd.DataFrame:
    rows = []
    for variant, group in verdicts.groupby("variant", sort=False):
        records = group.to_dict("records")
        entry = {"variant": variant, "cheapest": None, "usd_per_month": None,
                 "runner_up": None, "runner_up_usd_per_month": None, "margin_usd_per_month": None,
                 "runner_up_over_cheapest": None, "caveats": "",
                 **{key: records[0].get(key) for key in (
                     "capacity_source", "capacity_verified", "capacity_at_least", "capacity_n",
                     "capacity_tps", "capacity_low_tps", "capacity_high_tps")}}
        if missing(records[0].get("capacity_tps")):
            entry.update(cheapest=NO_CAPACITY,
                         caveats=codes(_matters(caveats, variant, None, None)))
            rows.append(entry)
            continue
        options = _options(records)
        if not options:
            rows.append(entry)
            continue
        best, *rest = options
        found = [c for option in options[:2] for c in _matters(caveats, variant, *_who(option))]
        entry.update(cheapest=best[0], usd_per_month=best[1], caveats=codes(found))
        if rest:
            entry.update(runner_up=rest[0][0], runner_up_usd_per_month=rest[0][1],
                         margin_usd_per_month=rest[0][1] - best[1],
                         runner_up_over_cheapest=rest[0][1] / best[1] if best[1] else None)
        rows.append(entry)
    return pd.DataFrame(rows)
