"""The human view of the cost answer and the price lists: rich tables, each with its dates."""

from __future__ import annotations

import pandas as pd
from rich.table import Table
from rich.text import Text

from harness.cost.answer import Answer
from harness.cost.labels import missing, point_label


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


def make_table(title: str, columns: list[str], caption: str | None = None, text_first: int = 2,
           text_last: int = 0) -> Table:
    """Numbers right-aligned; the first `text_first` and last `text_last` columns are text."""
    table = Table(title=title, caption=caption, header_style="bold", caption_justify="left",
                  title_justify="left")
    for index, name in enumerate(columns):
        text = index < text_first or index >= len(columns) - text_last
        table.add_column(name, justify="left" if text else "right")
    return table


# --- harness cost ------------------------------------------------------------------------

def capacity_label(row: dict) -> str:
    """'batch 16 conc 16, closed loop (unverified), n=48' / 'batch 16 @ 46.1 req/s, capacity
    search (at least)'."""
    source = row.get("capacity_source") or ""
    if source == "closed loop":
        source = "unverified: closed loop"
    if row.get("capacity_at_least") is True:
        source += ", at least"
    n = row.get("capacity_n")
    return f"{point_label(row)}, {source}" + ("" if missing(n) else f", n={int(n)}")


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


def self_hosted_table(answer: Answer, caption: str) -> Table:
    unit = answer.unit
    owned = "owned_usd_per_replica_hour" in answer.variants
    columns = ["variant", "capacity at SLO from", f"tok/s per {unit}", f"{unit}s for peak",
               "utilization", "rented $/h per replica", "rented $/month",
               "rented $/Mtok full/eff"]
    columns += ["owned $/h per replica", "owned $/month", "owned $/Mtok full/eff",
                f"power W/{unit}"] if owned else []
    table = make_table("Self-hosted", columns, caption)
    for row in answer.variants.to_dict("records"):
        if missing(row.get("capacity_tps")):
            table.add_row(row["variant"], Text("none at this SLO (see caveats)", style="yellow"))
            continue
        cells = [_variant(row), capacity_label(row), number(row["capacity_tps_per_unit"]),
                 number(row.get("units")), share(row.get("utilization")),
                 rate(row.get("rented_usd_per_replica_hour")),
                 usd(row.get("rented_usd_per_month")),
                 f"{rate(row.get('rented_usd_per_mtok_full_load'))}/"
                 f"{rate(row.get('rented_usd_per_mtok_effective'))}"]
        if owned:
            power = "-"
            if not missing(row.get("owned_power_w_per_unit")):
                power = f"{row['owned_power_w_per_unit']:,.0f} {row['owned_power_basis']}"
            cells += [rate(row.get("owned_usd_per_replica_hour")),
                      usd(row.get("owned_usd_per_month")),
                      f"{rate(row.get('owned_usd_per_mtok_full_load'))}/"
                      f"{rate(row.get('owned_usd_per_mtok_effective'))}", power]
        table.add_row(*cells)
    return table


def _variant(row: dict) -> str:
    """The variant's name, marked where it misses the fidelity limits (the caveats say why)."""
    if missing(row.get("fidelity_miss")):
        return row["variant"]
    return f"{row['variant']} [red](misses fidelity)[/red]"


def api_table(answer: Answer, caption: str) -> Table:
    table = make_table("Hosted APIs ($/Mtok listed: input / cached input / output)", [
        "API", "tier", "listed", "batch price", "$/Mtok this traffic", "$/mo",
        "prices as of", "data of", "source"], caption, text_last=3)
    for row in answer.apis.to_dict("records"):
        listed = " / ".join(rate(row[k]) for k in ("api_input_usd_per_mtok",
                                                  "api_cached_input_usd_per_mtok",
                                                  "api_output_usd_per_mtok"))
        table.add_row(row["api"], row["api_tier"] or "", listed,
                      "yes" if row["api_has_batch_price"] else "no",
                      rate(row["api_usd_per_mtok"]), usd(row["api_usd_per_month"]),
                      row["api_prices_as_of"], row["api_price_data_date"],
                      row["api_price_source"])
    return table


def _cheaper(row: dict, side: str) -> str:
    cheaper = row.get(f"{side}_cheaper")
    if missing(cheaper) or cheaper == "equal":
        return "-" if missing(cheaper) else "equal"
    ratio = row[f"{side}_over_api"]
    times = ratio if ratio >= 1 else 1 / ratio
    color = "green" if cheaper == "self-hosted" else "cyan"
    return f"[{color}]{cheaper}[/{color}] {times:.{2 if times < 1.1 else 1}f}x cheaper"


def _break_even(row: dict, side: str) -> str:
    if missing(row.get(f"{side}_usd_per_mtok_full_load")):
        return "-"
    utilization = row.get(f"{side}_break_even_utilization")
    if missing(utilization):
        return "never: API cheaper at full load"
    text = f"U {utilization:.1%}"
    if missing(row.get("api_usd_per_month")):
        return text
    ranges = row.get(f"{side}_break_even_ranges")
    if missing(ranges) or ranges == "none":
        return f"{text}; none at this peak"
    return f"{text}; {ranges}"


def break_even_table(answer: Answer) -> Table:
    """Without traffic: the full-load cost against each API, and the utilization that evens it."""
    table = make_table("Break-even utilization (no traffic given)", [
        "variant", "API", "API $/Mtok", "rented $/Mtok full load", "break-even (rented)",
        "owned $/Mtok full load", "break-even (owned)"],
        "U = the utilization at which self-hosting costs what the API does")
    for row in answer.verdicts.to_dict("records"):
        if missing(row.get("capacity_tps")):
            continue
        table.add_row(row["variant"], row["api"], rate(row["api_usd_per_mtok"]),
                      rate(row.get("rented_usd_per_mtok_full_load")), _break_even(row, "rented"),
                      rate(row.get("owned_usd_per_mtok_full_load")), _break_even(row, "owned"))
    return table


def verdict_table(answer: Answer, caption: str) -> Table:
    owned = "owned_usd_per_month" in answer.verdicts
    columns = ["variant", "API", "API $/mo", "rented $/mo", "rented vs API",
               "break-even (rented)"]
    columns += ["owned $/mo", "owned vs API", "break-even (owned)"] if owned else []
    table = make_table("Build or buy (a month of this traffic)", [*columns, "rests on"], caption,
                   text_last=1)
    for row in answer.verdicts.to_dict("records"):
        if missing(row.get("capacity_tps")):
            continue
        cells = [_variant(row), row["api"], usd(row.get("api_usd_per_month")),
                 usd(row.get("rented_usd_per_month")), _cheaper(row, "rented"),
                 _break_even(row, "rented")]
        if owned:
            cells += [usd(row.get("owned_usd_per_month")), _cheaper(row, "owned"),
                      _break_even(row, "owned")]
        rests = sorted({c for side in ("rented", "owned")
                        for c in str(row.get(f"{side}_caveats") or "").split("; ") if c})
        table.add_row(*cells, Text(", ".join(rests), style="yellow"))
    return table


def points_table(frame: pd.DataFrame, caption: str) -> Table:
    table = make_table("Measured points ($/Mtok, rented, at each point's throughput)", [
        "variant", "batch", "load", "measured", "meets SLO", "out tok/s", "total tok/s",
        "$/Mtok out", "$/Mtok total", "split in/out", "at profile mix"], caption)
    for row in frame.to_dict("records"):
        meets = ("[green]yes[/green]" if row["meets_slo"]
                 else f"[yellow]no[/yellow] {row['slo_miss']}")
        table.add_row(
            row["variant"], number(row["max_num_seqs"]), _load(row),
            row.get("measured_at") or "-", meets,
            number(row.get("output_throughput"), 1), number(row.get("total_token_throughput"), 1),
            rate(row.get("usd_per_mtok_output")), rate(row.get("usd_per_mtok_total")),
            f"{rate(row.get('usd_per_mtok_input_split'))}/"
            f"{rate(row.get('usd_per_mtok_output_split'))}",
            rate(row.get("usd_per_mtok_at_profile_mix")))
    return table


def _load(row: dict) -> str:
    if not missing(row.get("concurrency")):
        return f"conc {float(row['concurrency']):g}"
    if not missing(row.get("rate")):
        return f"{float(row['rate']):g} req/s"
    return str(row.get("point", "-"))


# --- harness prices ----------------------------------------------------------------------

def gpu_price_table(frame: pd.DataFrame) -> Table:
    table = make_table("GPU rental ($ per GPU-hour)", [
        "GPU", "provider", "tier", "$/GPU-h", "checked", "source"], text_first=3, text_last=2)
    for row in frame.to_dict("records"):
        source = row["source"]
        if not missing(row.get("source_date")):
            source += f" (price of {row['source_date']})"
        if not missing(row.get("note")):
            source += f"; {row['note']}"
        table.add_row(row["gpu"], row["provider"], row["tier"], rate(row["usd_per_gpu_hour"]),
                      str(row["checked"]), source)
    return table


def api_price_table(frame: pd.DataFrame) -> Table:
    data = ", ".join(sorted(set(frame["data"]))) if not frame.empty else ""
    table = make_table("Hosted APIs ($ per million tokens)", [
        "tier", "API", "input", "cached input", "output", "batch in/out", "prices as of",
        "data of", "tier checked", "source"], f"prices: {data}", text_last=4)
    for row in frame.to_dict("records"):
        batch = "-"
        if not missing(row["batch_input_usd_per_mtok"]):
            batch = (f"{rate(row['batch_input_usd_per_mtok'])}/"
                     f"{rate(row['batch_output_usd_per_mtok'])}")
        tiered = " (tiered by prompt length)" if row["tiered_by_prompt_length"] else ""
        table.add_row("" if missing(row["tier"]) else row["tier"], row["api"] + tiered,
                      rate(row["input_usd_per_mtok"]), rate(row["cached_input_usd_per_mtok"]),
                      rate(row["output_usd_per_mtok"]), batch, row["prices_as_of"],
                      row["data_date"] + (" STALE" if row["stale"] else ""),
                      "-" if missing(row["tier_checked"]) else row["tier_checked"],
                      row["source"])
    return table
