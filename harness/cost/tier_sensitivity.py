"""What moves the tiered answer: each tier's share of the requests (the others keep their
proportions, the total request rate held) and the whole volume, moved by -25% and +25%
(shares by -0.25 and +0.25), the cheapest mix recomputed; and the nearest value at which the
cheapest mix changes who serves a tier (its break-even in that input)."""

from __future__ import annotations

from collections.abc import Callable

from harness.cost.tier_model import TierModel
from harness.cost.tier_parts import Plan, ShareSensitivity, TierTraffic
from harness.cost.tier_traffic import with_rate

MOVE = 0.25
GRID = 40                          # scan points each way before bisecting
EDGE = 0.005                       # shares are scanned in [EDGE, 1 - EDGE]
SCAN = 10.0                        # volume: scanned from base / SCAN to base x SCAN


def assignment(plan: Plan) -> str:
    return "; ".join(f"{s.tier}: {s.option}" for s in plan.served)


def _shares(tiers: list[TierTraffic], index: int, share: float) -> list[TierTraffic]:
    """Tier `index` at `share` of the requests, the others scaled to keep their proportions."""
    total = sum(t.requests_per_s for t in tiers)
    rest = 1 - tiers[index].share
    found = []
    for i, tier in enumerate(tiers):
        new = share if i == index else tier.share * (1 - share) / rest
        found.append(with_rate(tier, new * total, new))
    return found


def _volume(tiers: list[TierTraffic], scale: float) -> list[TierTraffic]:
    return [with_rate(t, t.requests_per_s * scale, t.share) for t in tiers]


def _change(solve: Callable[[float], Plan], base: float, grid: list[list[float]],
            before: str) -> tuple[float | None, str | None]:
    """The value nearest `base` where the assignment stops being `before`, and what it becomes."""
    found = []
    for values in grid:
        inside = base
        for value in values:
            if assignment(solve(value)) != before:
                found.append(_bisect(solve, inside, value, before))
                break
            inside = value
    if not found:
        return None, None
    value = min(found, key=lambda v: abs(v - base))
    return value, assignment(solve(value))


def _bisect(solve: Callable[[float], Plan], inside: float, outside: float,
            before: str) -> float:
    for _ in range(30):
        middle = (inside + outside) / 2
        if assignment(solve(middle)) == before:
            inside = middle
        else:
            outside = middle
    return outside


def _row(name: str, unit: str, base: float, low: float, high: float,
         solve: Callable[[float], Plan], grid: list[list[float]], mixed: Plan) -> ShareSensitivity:
    before = assignment(mixed)
    at_low, at_high = solve(low), solve(high)
    changes_at, changes_to = _change(solve, base, grid, before)
    return ShareSensitivity(name, unit, base, low, high, at_low.usd_per_month,
                            mixed.usd_per_month, at_high.usd_per_month, assignment(at_low),
                            assignment(at_high), changes_at, changes_to)


def share_sensitivity(model: TierModel, mixed: Plan) -> list[ShareSensitivity]:
    tiers = model.tiers
    rows = []
    if len(tiers) > 1 and tiers[0].share is not None:
        for index, tier in enumerate(tiers):
            def solve(share: float, index: int = index) -> Plan:
                return model.mixed(_shares(tiers, index, share))
            base = tier.share
            ends = (max(EDGE, base - MOVE), min(1 - EDGE, base + MOVE))
            grid = [[base + (end - base) * k / GRID for k in range(1, GRID + 1)]
                    for end in (EDGE, 1 - EDGE)]
            rows.append(_row(f"share of {tier.name}", "share", base, *ends, solve, grid, mixed))

    def by_volume(scale: float) -> Plan:
        return model.mixed(_volume(tiers, scale))
    grid = [[SCAN ** (direction * k / GRID) for k in range(1, GRID + 1)] for direction in (-1, 1)]
    rows.append(_row("traffic volume", "x", 1.0, 1 - MOVE, 1 + MOVE, by_volume, grid, mixed))
    return rows
