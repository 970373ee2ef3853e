"""The full tables of the cost answer (`harness cost --detail`), each with its dates: the
self-hosted side per variant, the hosted APIs, the verdict per (variant, API) or, without
traffic, the break-even utilization, and what flips the decision."""

from __future__ import annotations

from rich.text import Text

from harness.cost.caveats import SIDES
from harness.cost.parts import (
    Answer,
    ApiCost,
    Capacity,
    SideCost,
    SideVerdict,
    VariantCost,
    Verdict,
)
from harness.report.answer.format import number, rate, share, usd
from harness.report.answer.grid import Grid

VERDICT_CAPTION = ("break-even: U = the utilization at which self-hosting costs what the API "
                   "does; Mtok/mo = every range of monthly traffic in which self-hosting is no "
                   "dearer, provisioned for this peak")


def capacity_label(capacity: Capacity) -> str:
    """'batch 16 conc 16, unverified: closed loop, n=48' / 'batch 16 @ 46.1 req/s, capacity
    search, at least, n=377' / '... capacity search, search bracket 1,230-1,410 tok/s, n=221'
    (the bracket: what the server delivered at the capacity and at the next rate tried)."""
    source = capacity.source
    if source == "closed loop":
        source = "unverified: closed loop"
    if capacity.repeats > 1:
        source += f", median of {capacity.repeats}"
    if capacity.at_least:
        source += ", at least"
    elif capacity.high_tps is not None:
        units = capacity.gpus_per_replica
        source += (f", search bracket {capacity.low_tps / units:,.0f}-"
                   f"{capacity.high_tps / units:,.0f} tok/s")
    return f"{capacity.label}, {source}, n={capacity.n}"


def demand_line(answer: Answer) -> str:
    d = answer.demand
    shape = (f"{d.input_per_output:g}:1 input:output ({d.input_tokens} + {d.output_tokens} "
             "tokens a request)")
    if d.average_tps is None:
        return f"traffic: none given; prices at the run's mix, {shape}"
    return (f"traffic: {d.traffic_mtok_month:,.0f} Mtok/month, {shape};\n  served "
            f"{d.average_tps:,.0f} tok/s on average, {d.peak_tps:,.0f} at peak "
            f"({d.peak_to_average:g}x), retries {d.retry_rate:.0%}, cached input "
            f"{d.cached_input_share:.0%}, batch {d.batch_share:.0%}")


def _variant(variant: VariantCost) -> str:
    """The variant's name, marked where it misses the fidelity limits (the caveats say why)."""
    if variant.fidelity is None or variant.fidelity.miss is None:
        return variant.variant
    return f"{variant.variant} [red](misses fidelity)[/red]"


def _full_and_effective(cost: SideCost | None) -> str:
    if cost is None:
        return "-/-"
    return f"{rate(cost.usd_per_mtok_full_load)}/{rate(cost.usd_per_mtok_effective)}"


def _side_cells(cost: SideCost | None) -> list[str]:
    """$/h per replica, $ a month, $/Mtok at full load and effective."""
    if cost is None:
        return ["-", "-", "-/-"]
    return [rate(cost.usd_per_replica_hour), usd(cost.usd_per_month), _full_and_effective(cost)]


def self_hosted_table(answer: Answer, caption: str) -> Grid:
    unit = answer.unit
    owned = answer.priced("owned")
    columns = ["variant", "capacity at SLO from", f"tok/s per {unit}", f"{unit}s for peak",
               "utilization", "rented $/h per replica", "rented $/month",
               "rented $/Mtok full/eff"]
    columns += ["owned $/h per replica", "owned $/month", "owned $/Mtok full/eff",
                f"power W/{unit}"] if owned else []
    grid = Grid("Self-hosted", columns, caption)
    for variant in answer.variants:
        capacity, peak = variant.capacity, variant.provisioning
        if capacity is None:
            grid.add(variant.variant, Text("none at this SLO (see caveats)", style="yellow"))
            continue
        cells = [_variant(variant), capacity_label(capacity), number(capacity.tps_per_unit),
                 number(peak.units if peak else None),
                 share(peak.utilization if peak else None), *_side_cells(variant.rented)]
        if owned:
            power = variant.owned.power if variant.owned else None
            cells += [*_side_cells(variant.owned),
                      f"{power.w_per_unit:,.0f} {power.basis}" if power else "-"]
        grid.add(*cells)
    return grid


def api_table(answer: Answer, caption: str) -> Grid:
    grid = Grid("Hosted APIs ($/Mtok listed: input / cached input / output)", [
        "API", "tier", "listed", "batch price", "$/Mtok this traffic", "$/mo",
        "prices as of", "data of", "source"], caption, text_last=3)
    for api in answer.apis:
        grid.add(api.name, api.tier or "", _listed(api), "yes" if api.has_batch_price else "no",
                 rate(api.usd_per_mtok), usd(api.usd_per_month), api.prices_as_of.isoformat(),
                 api.price_data_date.isoformat(), api.price_source)
    return grid


def _listed(api: ApiCost) -> str:
    return " / ".join(rate(price) for price in (api.input_usd_per_mtok,
                                                 api.cached_input_usd_per_mtok,
                                                 api.output_usd_per_mtok))


def _cheaper(verdict: SideVerdict) -> str:
    compared = verdict.comparison
    if compared is None or compared.cheaper == "equal":
        return "-" if compared is None else "equal"
    ratio = compared.over_api
    times = ratio if ratio >= 1 else 1 / ratio
    color = "green" if compared.cheaper == "self-hosted" else "cyan"
    return f"[{color}]{compared.cheaper}[/{color}] {times:.{2 if times < 1.1 else 1}f}x cheaper"


def _break_even(verdict: SideVerdict, api: ApiCost) -> str:
    if not verdict.priced:
        return "-"
    if verdict.break_even_utilization is None:
        return "never: API cheaper at full load"
    text = f"U {verdict.break_even_utilization:.1%}"
    if api.usd_per_month is None:
        return text
    ranges = verdict.comparison.ranges_text if verdict.comparison else "none"
    return f"{text}; none at this peak" if ranges == "none" else f"{text}; {ranges}"


def break_even_table(answer: Answer) -> Grid:
    """Without traffic: the full-load cost against each API, and the utilization that evens it."""
    grid = Grid("Break-even utilization (no traffic given)", [
        "variant", "API", "API $/Mtok", "rented $/Mtok full load", "break-even (rented)",
        "owned $/Mtok full load", "break-even (owned)"],
        "U = the utilization at which self-hosting costs what the API does")
    for verdict in answer.verdicts:
        variant = verdict.variant
        if variant.capacity is None:
            continue
        cells = [variant.variant, verdict.api.name, rate(verdict.api.usd_per_mtok)]
        for side in SIDES:
            cost = variant.side(side)
            cells += [rate(cost.usd_per_mtok_full_load if cost else None),
                      _break_even(verdict.side(side), verdict.api)]
        grid.add(*cells)
    return grid


def verdict_table(answer: Answer, caption: str) -> Grid:
    owned = answer.priced("owned")
    columns = ["variant", "API", "API $/mo", "rented $/mo", "rented vs API",
               "break-even (rented)"]
    columns += ["owned $/mo", "owned vs API", "break-even (owned)"] if owned else []
    grid = Grid("Build or buy (a month of this traffic)", [*columns, "rests on"], caption,
                text_last=1)
    for verdict in answer.verdicts:
        if verdict.variant.capacity is None:
            continue
        cells = [_variant(verdict.variant), verdict.api.name, usd(verdict.api.usd_per_month)]
        for side in SIDES if owned else ("rented",):
            cost = verdict.variant.side(side)
            cells += [usd(cost.usd_per_month if cost else None), _cheaper(verdict.side(side)),
                      _break_even(verdict.side(side), verdict.api)]
        grid.add(*cells, Text(", ".join(_rests_on(verdict)), style="yellow"))
    return grid


def _rests_on(verdict: Verdict) -> list[str]:
    return sorted({c.code for side in SIDES for c in verdict.side(side).rests_on})


def sensitivity_table(answer: Answer) -> Grid:
    grid = Grid("What flips the decision (self-hosted minus API, $ a month; against the "
                "cheapest API)", ["variant", "side", "input", "base", "-25%", "base $", "+25%",
                                  "flips at", "change"], text_first=3)
    for row in answer.sensitivity:
        flip, change = row.flips_at, row.flips_at_change
        is_share = row.unit == "share"
        none = "no flip in [0, 1]" if is_share else "no flip in 0.1x-10x"
        moved = "-" if change is None else (f"{change:+.2f}" if is_share else f"{change:+.0%}")
        grid.add(row.variant, row.side, row.input, _value(row.base, is_share),
                 usd(row.minus_api_usd_month_at_low), usd(row.minus_api_usd_month_at_base),
                 usd(row.minus_api_usd_month_at_high),
                 none if flip is None else _value(flip, is_share), moved)
    return grid


def _value(value: float, is_share: bool = False) -> str:
    if is_share:
        return f"{value:.0%}"
    return rate(value).removeprefix("$") if abs(value) < 100 else number(value)


def detail_tables(answer: Answer) -> list[Grid]:
    """The tables `--detail` adds: self-hosted and APIs (captioned with the prices they use),
    the verdicts (or the break-even utilization without traffic) and what flips them."""
    hosting = "; ".join(line for line in answer.prices_used if not line.startswith("API"))
    apis = "; ".join(line for line in answer.prices_used if line.startswith("API"))
    found = [self_hosted_table(answer, hosting), api_table(answer, apis)]
    if all(v.capacity is None for v in answer.variants):
        pass  # nothing to compare: the caveats say why
    elif not answer.has_traffic:
        found.append(break_even_table(answer))
    else:
        found.append(verdict_table(answer, VERDICT_CAPTION))
    if answer.sensitivity:
        found.append(sensitivity_table(answer))
    return found
