"""Fidelity in the cost answer: each variant's score against the baseline, and the variants
that miss the config's `fidelity` limits marked, with the reason, so a cheaper variant that
answers differently is not read as a saving."""

from __future__ import annotations

from harness.contract.fidelity import describe
from harness.cost.caveats import Caveat
from harness.cost.parts import FidelityMark
from harness.metrics.fidelity import missed, misses
from harness.store.run_store import StoredRun


def fidelity_marks(stored: StoredRun, variants: list[str]) -> dict[str, FidelityMark] | None:
    """Per variant its score in words and the limits it misses; None where the run has no
    fidelity scores."""
    if not stored.fidelity:
        return None
    limits = stored.manifest.config.fidelity
    return {v: FidelityMark(describe(stored.fidelity.get(v)), missed(stored.fidelity.get(v),
                                                                      limits))
            for v in variants}


def fidelity_caveats(stored: StoredRun) -> list[Caveat]:
    """The scores in one line, and a warning on each variant that misses the limits: the
    decision names it beside that variant's cheapest option."""
    if not stored.fidelity:
        return []
    limits = stored.manifest.config.fidelity
    records = sorted(stored.fidelity.values(), key=lambda r: r.variant)
    baseline = records[0].baseline
    scored = [f"{r.variant} {describe(r)}" for r in records if r.variant != baseline]
    found = [Caveat("fidelity", f"fidelity against {baseline} "
                    f"({limits.limits() if limits else 'no limits'}): " + ", ".join(scored))
             ] if scored else []
    for record in records:
        missed = misses(record, limits)
        if missed:
            found.append(Caveat(
                "fidelity_miss", f"{record.variant}: misses fidelity ({'; '.join(missed)} "
                f"against {baseline}): it answers differently, so its cost is no like-for-like "
                "saving; leave it out of the cheapest", "warning", variant=record.variant))
    return found
