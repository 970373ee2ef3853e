"""The decision in a few lines: per variant, the cheapest way to serve this traffic (rented,
owned or an API), its monthly bill, the runner-up, the margin and the caveats that matter."""

from __future__ import annotations

from harness.cost.caveats import SIDES, Caveat, rank
from harness.cost.parts import Decision, Verdict

NO_CAPACITY = "no capacity at this SLO"

Option = tuple[str, float, str | None, str | None]   # name, $ a month, side, API


def _options(verdicts: list[Verdict]) -> list[Option]:
    """Self-hosting rented and owned, and every API, cheapest first."""
    variant = verdicts[0].variant
    found = [(f"self-hosted ({side})", cost.usd_per_month, side, None)
             for side in SIDES if (cost := variant.side(side)) is not None
             and cost.usd_per_month is not None]
    found += [(f"API {v.api.name}", v.api.usd_per_month, None, v.api.name) for v in verdicts
              if v.api.usd_per_month is not None]
    return sorted(found, key=lambda option: option[1])


def _matters(caveats: list[Caveat], variant: str, side: str | None,
             api: str | None) -> list[Caveat]:
    """Warnings and worse about this variant's winning option (or about everything)."""
    return [c for c in caveats if rank(c.severity) >= 1 and c.variant in (None, variant)
            and (c.side is None or c.side == side) and (c.api is None or c.api == api)]


def decide(verdicts: list[Verdict], caveats: list[Caveat]) -> list[Decision]:
    """One decision per variant that has verdicts, in their order."""
    found = []
    for variant in dict.fromkeys(v.variant.variant for v in verdicts):
        rows = [v for v in verdicts if v.variant.variant == variant]
        capacity = rows[0].variant.capacity
        if capacity is None:
            found.append(Decision(variant, None, NO_CAPACITY,
                                  rests_on=tuple(_matters(caveats, variant, None, None))))
            continue
        options = _options(rows)
        if not options:
            found.append(Decision(variant, capacity))
            continue
        best, *rest = options
        rests_on = tuple(c for option in options[:2]
                         for c in _matters(caveats, variant, option[2], option[3]))
        runner_up = rest[0] if rest else (None, None)
        found.append(Decision(variant, capacity, best[0], best[1], runner_up[0], runner_up[1],
                              rests_on))
    return found
