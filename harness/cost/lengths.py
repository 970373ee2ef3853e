"""A server setup's capacity at a tier's request lengths, from the workloads measured on it:

- measured: a workload within 5% of the tier's input and output lengths (and prefix share);
- interpolated: between the two measured workloads whose input lengths bracket the tier's,
  their request rates at the SLO taken linearly in the input length;
- outside what was measured: the nearest workload's capacity, converted to the tier's mix
  (an input token weighing 1/R of an output token, docs/cost-model.md section 1).

Only workloads measured at the tier's prefix-cache share are used where there are some; else
every workload, and the self-hosted side gets no credit for the cache (said in the basis).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.slo import Slo
from harness.cost.fleet import MeasuredWorkload
from harness.cost.parts import Capacity

MATCH = 0.05          # relative difference in lengths still counted as the same workload
PREFIX_MATCH = 0.05   # difference in prefix share still counted as the same


@dataclass(frozen=True)
class AtLengths:
    tps: float                    # input + output tokens/s per replica at the tier's lengths
    capacity: Capacity            # the measured capacity it rests on (the nearer workload's)
    how: str                      # "measured", "interpolated" or "outside"
    basis: str                    # in words, with the workloads used


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= MATCH * max(a, b)


def _same_prefix(workloads: list[MeasuredWorkload], share: float) -> tuple[list, str]:
    """The workloads measured at this prefix share, or all of them and what that means."""
    found = [w for w in workloads if abs(w.prefix_share - share) <= PREFIX_MATCH]
    if found:
        return found, ""
    return workloads, (f"; no workload measured at a prefix-cache share of {share:.0%}: no "
                       "cache credit on the self-hosted side")


def at_lengths(workloads: list[MeasuredWorkload], input_tokens: float, output_tokens: float,
               prefix_share: float, slo: Slo, cost_ratio: float,
               named: str | None = None) -> AtLengths | str:
    """The capacity at these lengths, or why there is none (a sentence)."""
    candidates, note = _same_prefix(workloads, prefix_share)
    ratio = input_tokens / output_tokens
    exact = [w for w in candidates if _close(w.input_tokens, input_tokens)
             and _close(w.output_tokens, output_tokens)]
    if exact:
        chosen = next((w for w in exact if w.name == named), exact[0])
        capacity = chosen.capacity(slo, ratio, cost_ratio)
        if capacity is None:
            return f"no point of {chosen.label} meets the SLO"
        return AtLengths(capacity.tps, capacity, "measured", f"measured: {chosen.label}{note}")
    ordered = sorted(candidates, key=lambda w: w.input_tokens)
    below = [w for w in ordered if w.input_tokens <= input_tokens]
    above = [w for w in ordered if w.input_tokens >= input_tokens]
    if below and above:
        return _interpolated(below[-1], above[0], input_tokens, output_tokens, slo, cost_ratio,
                             note)
    nearest = below[-1] if below else above[0]
    capacity = nearest.capacity(slo, ratio, cost_ratio)
    if capacity is None:
        return f"no point of {nearest.label} meets the SLO"
    span = (f"{ordered[0].input_tokens:,.0f}-{ordered[-1].input_tokens:,.0f}"
            if len(ordered) > 1 else f"{ordered[0].input_tokens:,.0f}")
    return AtLengths(capacity.tps, capacity, "outside",
                     f"outside what was measured (input {span} tokens): {nearest.label} "
                     f"converted to {input_tokens:,.0f} in / {output_tokens:,.0f} out{note}")


def _interpolated(low: MeasuredWorkload, high: MeasuredWorkload, input_tokens: float,
                  output_tokens: float, slo: Slo, cost_ratio: float,
                  note: str) -> AtLengths | str:
    """Requests/s at the SLO, linear in the input length between two measured workloads."""
    rates = []
    for workload in (low, high):
        capacity = workload.capacity(slo, workload.input_tokens / workload.output_tokens,
                                     cost_ratio)
        if capacity is None:
            return f"no point of {workload.label} meets the SLO"
        rates.append((capacity, (capacity.input_tps + capacity.output_tps)
                      / (workload.input_tokens + workload.output_tokens)))
    (low_cap, low_rps), (high_cap, high_rps) = rates
    at = (input_tokens - low.input_tokens) / (high.input_tokens - low.input_tokens)
    rps = low_rps + (high_rps - low_rps) * at
    nearer = low_cap if at <= 0.5 else high_cap
    return AtLengths(rps * (input_tokens + output_tokens), nearer, "interpolated",
                     f"interpolated between {low.label} and {high.label}: {rps:,.3g} req/s at "
                     f"{input_tokens:,.0f} in / {output_tokens:,.0f} out{note}")
