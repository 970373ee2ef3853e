"""Caveats: what qualifies a verdict, as data (a code, a sentence, a severity) so that every
output carries them, and the verdict each one qualifies (a variant, a side, an API).

Severities: `info` (context), `warning` (the verdict rests on an assumption or an unverified
measurement: it is marked in the verdict's own row), `critical` (the figures say nothing about
the question asked, e.g. a dummy model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("info", "warning", "critical")
SIDES = ("rented", "owned")


@dataclass(frozen=True)
class Caveat:
    code: str                         # stable, for scripts: "capacity_unverified", ...
    text: str                         # one sentence for people
    severity: str = "info"
    variant: str | None = None        # the variant it qualifies; None: every variant
    side: str | None = None           # "rented" or "owned"; None: both
    api: str | None = None            # the API it qualifies; None: every API

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown caveat severity {self.severity!r}")

    def qualifies(self, variant: str, side: str, api: str) -> bool:
        return (self.variant in (None, variant) and self.side in (None, side)
                and self.api in (None, api))

    def as_dict(self) -> dict:
        return asdict(self)


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def row_caveats(caveats: list[Caveat], variant: str, side: str, api: str) -> list[Caveat]:
    """The caveats (warning and above) that a (variant, side, API) verdict rests on."""
    return [c for c in caveats if rank(c.severity) >= 1 and c.qualifies(variant, side, api)]


def codes(caveats: list[Caveat]) -> str:
    """'capacity_unverified; power_assumed': each code once, in order."""
    return "; ".join(dict.fromkeys(c.code for c in caveats))


def worst(caveats: list[Caveat]) -> str | None:
    return max((c.severity for c in caveats), key=rank, default=None)


def indicative(caveats: tuple[Caveat, ...] | list[Caveat]) -> str | None:
    """'indicative only: <why>' where a verdict rests on a critical caveat (its figures say
    nothing about the question asked), else None."""
    critical = [c for c in caveats if c.severity == "critical"]
    if not critical:
        return None
    return f"indicative only: {critical[0].text.split(': ')[0]}"
