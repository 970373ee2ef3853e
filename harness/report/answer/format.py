"""How the cost views write numbers: dollars with the digits that matter, unit prices, counts
and shares ('-' where there is none)."""

from __future__ import annotations

from harness.cost.labels import missing


def usd(value: object) -> str:
    """$1,234 / $12.35 / $0.0123: dollars with the digits that matter."""
    if missing(value):
        return "-"
    x = float(value)
    if x < 0:
        return "-" + usd(-x)
    if abs(x) >= 1000:
        return f"${x:,.0f}"
    if abs(x) >= 0.1:
        return f"${x:,.2f}"
    text = f"{x:.3g}"
    return f"${x:.6f}" if "e" in text else f"${text}"


def rate(value: object) -> str:
    """A unit price ($/h, $/Mtok) with up to four significant digits: $2.95, $0.295, $0.0575."""
    if missing(value):
        return "-"
    x = float(value)
    if abs(x) >= 100:
        return f"${x:,.2f}"
    if abs(x) < 1e-4:
        return f"${x:.2e}"
    text = f"{x:.4g}"
    decimals = len(text.partition(".")[2])
    return f"${x:.2f}" if decimals < 2 else f"${text}"


def number(value: object, digits: int = 0) -> str:
    return "-" if missing(value) else f"{float(value):,.{digits}f}"


def share(value: object) -> str:
    return "-" if missing(value) else f"{float(value):.1%}"
