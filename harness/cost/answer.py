"""Build versus buy: a results directory, a traffic profile and prices -> the answer.

One row per variant (self-hosted), one per comparable API, and one per (variant, API) with the
verdict and the break-even. Reads stored results only; the formulas are in harness.cost.model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from harness.cost import model
from harness.cost.files import CostInputError
from harness.cost.prices import ApiPrice, PriceBook
from harness.cost.profile import Profile, describe_slo, latency_limits
from harness.report.tables import summary_frame
from harness.store import RunStore, read_json

DEFAULT_COMPARISON = "frontier-small"


def _number(value: object) -> float | None:
    """A finite float, or None for missing, None and NaN."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- the stored run ----------------------------------------------------------------------

@dataclass
class RunResults:
    root: Path
    info: dict
    frame: pd.DataFrame
    capacity_files: dict[str, dict]

    @property
    def config(self) -> dict:
        return self.info.get("config") or {}

    @property
    def model(self) -> str:
        return str(self.config.get("model", "?"))

    @property
    def usd_per_hour(self) -> float | None:
        return _number((self.config.get("cost") or {}).get("usd_per_hour"))

    @property
    def workload(self) -> tuple[int, int]:
        """Mean prompt and output tokens per completed request, as measured (the config may
        draw lengths from distributions)."""
        ok = self.frame[self.frame["status"] == "ok"] if "status" in self.frame else self.frame
        done = ok["completed"].sum() if "completed" in ok else 0
        if done:
            return (max(1, round(ok["prompt_tokens"].sum() / done)),
                    max(1, round(ok["output_tokens"].sum() / done)))
        workload = self.config.get("workload") or {}
        return _length(workload.get("input_tokens")), _length(workload.get("output_tokens"))

    @property
    def gpu_names(self) -> list[str]:
        gpus = ((self.info.get("host") or {}).get("gpus")) or {}
        return [str(d.get("name", "?")) for d in gpus.get("devices") or []
                if gpus.get("available")]

    @property
    def hardware(self) -> str:
        names = self.gpu_names
        if not names:
            return f"{(self.info.get('host') or {}).get('cpu', 'a CPU')} (no GPU)"
        return ", ".join(sorted(set(names)))

    @property
    def run_date(self) -> str:
        return str(self.info.get("started_at", "?"))[:10]


def load_results(root: Path) -> RunResults:
    info = read_json(root / "run.json")
    if info is None:
        raise CostInputError(f"{root}: no run.json here; give a directory made by `harness run`")
    frame = summary_frame(RunStore(root), _number((info.get("config", {}).get("cost") or {})
                                                  .get("usd_per_hour")))
    if frame.empty:
        raise CostInputError(f"{root}: no points measured yet; nothing to price")
    capacity_files = {}
    for path in sorted(root.glob("cells/*/capacity.json")):
        capacity = read_json(path)
        if isinstance(capacity, dict):
            capacity_files[path.parent.name] = capacity
    return RunResults(root, info, frame, capacity_files)


# --- the SLO -----------------------------------------------------------------------------

def slo_check(row: dict, slo) -> tuple[bool, float, str]:
    """(meets, shortfall, what misses): shortfall is the worst value / limit (<= 1 meets)."""
    if row.get("status") != "ok":
        reason = (str(row.get("reason") or "").splitlines() or [""])[0]
        return False, math.inf, f"failed: {reason}"
    worst, misses = 0.0, []
    for column, limit in latency_limits(slo).items():
        value = _number(row.get(column))
        name = column.replace("_ms_", "_") + "_ms"
        if value is None:
            worst, misses = math.inf, [*misses, f"no {name}"]
        elif value > limit:
            misses.append(f"{name} {value:,.1f} > {limit:g}")
        worst = max(worst, (value or 0) / limit)
    requests = _number(row.get("requests")) or 0
    error_rate = (_number(row.get("errors")) or 0) / requests if requests else 1.0
    if error_rate > slo.max_error_rate:
        misses.append(f"error rate {error_rate:.3g} > {slo.max_error_rate:g}")
        worst = max(worst, error_rate / slo.max_error_rate if slo.max_error_rate else
                    1 + error_rate)
    return not misses, worst, "; ".join(misses)


def with_slo(frame: pd.DataFrame, slo) -> pd.DataFrame:
    checks = [slo_check(row, slo) for row in frame.to_dict("records")]
    frame = frame.copy()
    frame["meets_slo"] = [c[0] for c in checks]
    frame["slo_shortfall"] = [c[1] for c in checks]
    frame["slo_miss"] = [c[2] for c in checks]
    return frame


# --- demand ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Demand:
    input_per_output: float
    input_tokens: int                  # one request
    output_tokens: int
    average_tps: float | None          # served (retries included), input + output
    peak_tps: float | None
    retry_rate: float = 0.0
    cached_input_share: float = 0.0
    batch_share: float = 0.0
    peak_to_average: float | None = None

    @property
    def served_mtok_month(self) -> float | None:
        return None if self.average_tps is None else model.mtok_per_month(self.average_tps)

    @property
    def traffic_mtok_month(self) -> float | None:
        served = self.served_mtok_month
        return None if served is None else served / (1 + self.retry_rate)


def _length(value: object) -> int:
    """A config length: a number, or a fixed distribution's value (else 1)."""
    if isinstance(value, dict):
        value = value.get("value")
    return int(value) if isinstance(value, (int, float)) else 1


def demand_of(profile: Profile, results: RunResults) -> Demand:
    run_in, run_out = results.workload
    traffic = profile.traffic
    if traffic is None:
        return Demand(run_in / run_out, run_in, run_out, None, None)
    ratio = traffic.input_output_ratio or run_in / run_out
    output_tokens = traffic.output_tokens_per_request or run_out
    input_tokens = max(1, round(ratio * output_tokens))
    if traffic.tokens_per_day is not None:
        average = traffic.tokens_per_day / model.SECONDS_PER_DAY
    else:
        average = traffic.requests_per_s * (input_tokens + output_tokens)
    served = average * (1 + traffic.retry_rate)
    return Demand(ratio, input_tokens, output_tokens, served, served * traffic.peak_to_average,
                  traffic.retry_rate, traffic.cached_input_share, traffic.batch_share,
                  traffic.peak_to_average)


# --- capacity at the SLO -----------------------------------------------------------------

def _gpus_per_replica(row: dict) -> int:
    return int(_number(row.get("gpu_count")) or _number(row.get("tensor_parallel_size")) or 1)


def _measured_point(row: dict, ratio: float, cost_ratio: float, source: str) -> dict:
    total, output = row["total_token_throughput"], row["output_throughput"]
    return {
        "variant": row["variant"], "cell": row["cell"], "point": row["point"],
        "max_num_seqs": row["max_num_seqs"], "tensor_parallel_size": row["tensor_parallel_size"],
        "concurrency": _number(row.get("concurrency")),
        "gpus_per_replica": _gpus_per_replica(row),
        "input_tps": total - output, "output_tps": output,
        "capacity_tps": model.throughput_at_mix(total - output, output, ratio, cost_ratio),
        "mean_power_w": _number(row.get("mean_power_w")), "capacity_source": source}


def _searched_capacity(cell_rows: pd.DataFrame, capacity: dict, ratio: float,
                       cost_ratio: float) -> dict | None:
    """The capacity search's answer for a cell (None when it found no rate meeting its SLO)."""
    if not capacity.get("meets_slo"):
        return None
    first = cell_rows.iloc[0].to_dict()
    at_point = cell_rows[cell_rows["point"] == capacity.get("point")]
    row = at_point.iloc[0].to_dict() if not at_point.empty else first
    row = {**row, "total_token_throughput": float(capacity["total_token_throughput"]),
           "output_throughput": float(capacity["output_throughput"]),
           "point": capacity.get("point", row["point"])}
    found = _measured_point(row, ratio, cost_ratio, "capacity search")
    found["concurrency"] = None
    found["rate_rps"] = _number(capacity.get("rate_rps"))
    return found


def cell_capacity(cell_rows: pd.DataFrame, capacity: dict | None, ratio: float,
                  cost_ratio: float) -> dict | None:
    """A cell's capacity: its capacity search when present, else its best point at the SLO."""
    if capacity is not None:
        return _searched_capacity(cell_rows, capacity, ratio, cost_ratio)
    meeting = cell_rows[cell_rows["meets_slo"]]
    if meeting.empty:
        return None
    best = [_measured_point(r, ratio, cost_ratio, "best measured point")
            for r in meeting.to_dict("records")]
    return max(best, key=lambda c: c["capacity_tps"])


def closest_miss(rows: pd.DataFrame) -> str:
    """The point closest to meeting the SLO, and what it misses."""
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return "no point measured"
    row = ok.loc[ok["slo_shortfall"].idxmin()]
    if row["meets_slo"]:
        return "its capacity search (capacity.json) found no rate that meets its SLO"
    from harness.cost.tables import point_label

    return f"no point meets the SLO; closest: {point_label(row)}: {row['slo_miss']}"


def variant_capacities(results: RunResults, frame: pd.DataFrame, ratio: float,
                       cost_ratio: float) -> pd.DataFrame:
    """Per variant: the cell with the most tokens/s per GPU at the SLO, or why there is none."""
    rows = []
    for variant, variant_rows in frame.groupby("variant", sort=False):
        cells = []
        for cell, cell_rows in variant_rows.groupby("cell", sort=False):
            found = cell_capacity(cell_rows, results.capacity_files.get(cell), ratio, cost_ratio)
            if found is not None:
                cells.append(found)
        if cells:
            best = max(cells, key=lambda c: c["capacity_tps"] / c["gpus_per_replica"])
            rows.append({**best, "slo_note": ""})
        else:
            rows.append({"variant": variant, "capacity_tps": None,
                         "slo_note": closest_miss(variant_rows)})
    return pd.DataFrame(rows)


# --- hosting prices ----------------------------------------------------------------------

@dataclass(frozen=True)
class HourlyPrice:
    usd_per_hour: float
    per_gpu: bool          # per GPU-hour, or for the whole machine that served a cell
    label: str
    source: str
    dated: str             # "checked 2026-11-26", or when the run's own price was set

    def per_replica(self, gpus_per_replica: int) -> float:
        return self.usd_per_hour * gpus_per_replica if self.per_gpu else self.usd_per_hour


def rented_price(results: RunResults, profile: Profile, book: PriceBook) -> HourlyPrice | None:
    if profile.gpu is not None:
        row = book.gpu_price(profile.gpu, profile.rent.provider, profile.rent.tier)
        note = f"; {row.note}" if row.note else ""
        own_date = f", price of {row.source_date}" if row.source_date else ""
        return HourlyPrice(row.usd_per_gpu_hour, True, f"{row.gpu} {row.provider} {row.tier}",
                           f"{row.source}{own_date}{note}", f"checked {row.checked.isoformat()}")
    if results.usd_per_hour is None:
        return None
    config_file = results.info.get("config_file", "the run's config")
    return HourlyPrice(results.usd_per_hour, False, "the run's machine",
                       f"cost.usd_per_hour in {config_file}",
                       f"the price set for the run of {results.run_date}")


def owned_usd_per_gpu_hour(profile: Profile, power_w: float) -> float:
    own = profile.own
    capital = model.capital_usd_per_hour(own.capex_per_gpu_usd + own.server_share_per_gpu_usd,
                                         own.cost_of_capital, own.years, own.availability)
    energy = model.energy_usd_per_hour(power_w, own.pue, own.usd_per_kwh)
    return model.owned_usd_per_hour(capital, energy, own.overhead_share)


# --- the answer --------------------------------------------------------------------------

@dataclass
class Answer:
    title: str
    demand: Demand
    unit: str                          # "GPU" or "machine": what capacity is counted per
    variants: pd.DataFrame             # self-hosted, one row per variant
    apis: pd.DataFrame                 # one row per API
    verdicts: pd.DataFrame             # one row per (variant, API)
    prices_used: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _self_hosted(capacity: dict, side: str, usd_per_replica_hour: float | None,
                 demand: Demand) -> dict:
    """One side's (rented or owned) cost columns for a variant's capacity."""
    if usd_per_replica_hour is None or capacity.get("capacity_tps") is None:
        return {}
    cap = capacity["capacity_tps"]
    columns = {f"{side}_usd_per_replica_hour": usd_per_replica_hour,
               f"{side}_usd_per_mtok_full_load": model.usd_per_mtok(usd_per_replica_hour, cap)}
    if demand.average_tps is not None:
        replicas = model.replicas_for_peak(demand.peak_tps, cap)
        monthly = replicas * usd_per_replica_hour * model.HOURS_PER_MONTH
        columns.update({
            "replicas": replicas,
            "utilization": model.utilization(demand.average_tps, replicas, cap),
            f"{side}_usd_per_month": monthly,
            f"{side}_usd_per_mtok_effective": monthly / demand.served_mtok_month})
    return columns


def variant_rows(capacities: pd.DataFrame, rented: HourlyPrice | None, profile: Profile,
                 demand: Demand) -> pd.DataFrame:
    rows = []
    for capacity in capacities.to_dict("records"):
        row = dict(capacity)
        if _number(capacity.get("capacity_tps")) is not None:
            gpus = capacity["gpus_per_replica"]
            row["capacity_tps_per_unit"] = capacity["capacity_tps"] / gpus
            if rented is not None:
                row.update(_split(capacity, rented.per_replica(gpus), profile))
                row.update(_self_hosted(capacity, "rented", rented.per_replica(gpus), demand))
            row.update(_owned(capacity, profile, demand))
            if "replicas" in row:
                row["units"] = row["replicas"] * gpus
        rows.append(row)
    return pd.DataFrame(rows)


def _split(capacity: dict, usd_per_replica_hour: float, profile: Profile) -> dict:
    split_in, split_out = model.split_usd_per_mtok(
        usd_per_replica_hour, capacity["input_tps"], capacity["output_tps"],
        profile.input_output_cost_ratio)
    return {"rented_usd_per_mtok_input": split_in, "rented_usd_per_mtok_output": split_out}


def _owned(capacity: dict, profile: Profile, demand: Demand) -> dict:
    if profile.own is None:
        return {}
    gpus = capacity["gpus_per_replica"]
    measured = _number(capacity.get("mean_power_w"))
    power = measured / gpus if measured is not None else profile.own.power_w_per_gpu
    columns = _self_hosted(capacity, "owned", owned_usd_per_gpu_hour(profile, power) * gpus,
                           demand)
    columns["owned_power_w_per_unit"] = power
    columns["owned_power_basis"] = "measured" if measured is not None else "assumed"
    return columns


def api_rows(prices: list[ApiPrice], demand: Demand) -> pd.DataFrame:
    rows = []
    tokens = demand.input_tokens + demand.output_tokens
    for price in prices:
        per_request = price.request_usd(demand.input_tokens, demand.output_tokens,
                                        demand.cached_input_share, demand.batch_share)
        per_mtok = per_request / (tokens / model.TOKENS_PER_MTOK)
        rows.append({
            "api": price.name, "api_tier": price.tier,
            "api_input_usd_per_mtok": price.per_mtok("input_mtok"),
            "api_cached_input_usd_per_mtok": price.per_mtok("cache_read_mtok"),
            "api_output_usd_per_mtok": price.per_mtok("output_mtok"),
            "api_has_batch_price": price.batch is not None,
            "api_usd_per_mtok": per_mtok,
            "api_usd_per_month": (None if demand.average_tps is None
                                  else model.api_monthly_usd(demand.average_tps, per_mtok)),
            "api_prices_as_of": price.price_date.isoformat(), "api_price_data": price.data,
            "api_tier_checked": price.tier_checked.isoformat() if price.tier_checked else None,
            "api_price_source": price.source})
    return pd.DataFrame(rows)


def _verdict(variant: dict, api: dict, side: str, demand: Demand) -> dict:
    full_load = _number(variant.get(f"{side}_usd_per_mtok_full_load"))
    if full_load is None:
        return {}
    api_per_mtok = api["api_usd_per_mtok"]
    columns = {f"{side}_break_even_utilization":
               model.break_even_utilization(full_load, api_per_mtok)}
    if demand.average_tps is None:
        return columns
    volume = model.break_even_monthly_mtok(variant[f"{side}_usd_per_replica_hour"],
                                           variant["capacity_tps"], api_per_mtok,
                                           demand.peak_to_average)
    self_bill, api_bill = variant[f"{side}_usd_per_month"], api["api_usd_per_month"]
    cheaper = ("self-hosted" if self_bill < api_bill else "API" if api_bill < self_bill
               else "equal")
    columns.update({
        f"{side}_break_even_traffic_mtok_month":
            None if volume is None else volume / (1 + demand.retry_rate),
        f"{side}_cheaper": cheaper,
        f"{side}_minus_api_usd_per_month": self_bill - api_bill,
        f"{side}_over_api": self_bill / api_bill})
    return columns


def verdict_rows(variants: pd.DataFrame, apis: pd.DataFrame, demand: Demand) -> pd.DataFrame:
    rows = []
    for variant in variants.to_dict("records"):
        for api in apis.to_dict("records"):
            row = {**variant, **api}
            for side in ("rented", "owned"):
                row.update(_verdict(variant, api, side, demand))
            rows.append(row)
    return pd.DataFrame(rows)


def compared_apis(profile: Profile, results: RunResults, book: PriceBook) -> list[str]:
    if profile.apis:
        return list(profile.apis)
    tier = book.tier_for_model(results.model)
    return [tier, DEFAULT_COMPARISON] if tier else [DEFAULT_COMPARISON]


def build_answer(results: RunResults, profile: Profile, book: PriceBook,
                 profile_name: str | None = None) -> Answer:
    """Everything `harness cost` prints, as frames and lines."""
    demand = demand_of(profile, results)
    rented = rented_price(results, profile, book)
    if rented is None and profile.own is None:
        raise CostInputError(
            "no hourly price for self-hosting: set cost.usd_per_hour in the run's config, name a "
            "GPU in the profile (gpu: H100; see `harness prices`) or add an `own` section")
    per_gpu = profile.gpu is not None or bool(results.gpu_names)
    frame = with_slo(results.frame, profile.slo)
    capacities = variant_capacities(results, frame, demand.input_per_output,
                                    profile.input_output_cost_ratio)
    variants = variant_rows(capacities, rented, profile, demand)
    prices = book.api_prices(compared_apis(profile, results, book))
    apis = api_rows(prices, demand)
    title = f"{results.info.get('run', results.root.name)} ({results.root})"
    if profile_name:
        title += f", profile {profile_name}"
    verdicts = verdict_rows(variants, apis, demand)
    if rented is not None:
        verdicts["rented_price"] = f"${rented.usd_per_hour:g}/h per " + (
            "GPU" if rented.per_gpu else "machine") + f", {rented.label}"
        verdicts["rented_price_source"] = rented.source
        verdicts["rented_price_dated"] = rented.dated
    answer = Answer(title, demand, "GPU" if per_gpu else "machine", variants, apis, verdicts)
    answer.prices_used = prices_used(rented, profile, variants, prices, book.price_date)
    answer.notes = notes(results, profile, book, variants, prices, demand)
    return answer


def prices_used(rented: HourlyPrice | None, profile: Profile, variants: pd.DataFrame,
                prices: list[ApiPrice], price_date: date) -> list[str]:
    lines = []
    if rented is not None:
        lines.append(f"rented: ${rented.usd_per_hour:,.2f}/h per "
                     f"{'GPU' if rented.per_gpu else 'machine'}, {rented.label}: {rented.source} "
                     f"({rented.dated})")
    if profile.own is not None:
        own = profile.own
        lines.append(
            f"owned: capex ${own.capex_per_gpu_usd:,.0f} + ${own.server_share_per_gpu_usd:,.0f} "
            f"per GPU over {own.years:g} years at {own.cost_of_capital:.1%}, availability "
            f"{own.availability:.0%}, PUE {own.pue:g}, ${own.usd_per_kwh:g}/kWh, overhead "
            f"{own.overhead_share:.0%}: the profile's inputs")
        if "owned_power_basis" in variants and (variants["owned_power_basis"] == "assumed").any():
            lines.append(f"owned power: {own.power_w_per_gpu:g} W per GPU ASSUMED (the profile's "
                         "own.power_w_per_gpu; the results have no measured power)")
    sources = sorted({p.data for p in prices})
    lines.append(f"APIs: {', '.join(sources)}, prices in force on {price_date.isoformat()}")
    tiers = sorted({(p.tier, p.tier_checked) for p in prices if p.tier})
    if tiers:
        lines.append("API tiers: " + ", ".join(f"{t} checked {c.isoformat()}" for t, c in tiers))
    return lines


def notes(results: RunResults, profile: Profile, book: PriceBook, variants: pd.DataFrame,
          prices: list[ApiPrice], demand: Demand) -> list[str]:
    found = [f"measured on {results.hardware}, model {results.model}, "
             f"run of {results.run_date}; SLO: {describe_slo(profile.slo)}"]
    found += _hardware_notes(results, profile)
    if profile.own is not None and profile.gpu is None and not results.gpu_names:
        found.append("owned: the profile's per-GPU inputs are applied per machine (the run had no "
                     "GPU)")
    if results.model == "dummy:tiny":
        found.append("the run served dummy:tiny, a tiny random-weight model: its throughput "
                     "exercises the pipeline and says nothing about serving a real model")
    for tier in sorted({p.tier for p in prices if p.tier}):
        patterns = book.tiers[tier].models
        if patterns and book.tier_for_model(results.model) != tier:
            found.append(f"tier {tier} ({book.tiers[tier].description}) is not the model the run "
                         f"served ({results.model}): it prices the same tokens, not the same model")
    found += _mix_notes(results, profile, demand)
    found += _capacity_search_notes(results, profile, variants)
    for row in variants.to_dict("records"):
        if _number(row.get("capacity_tps")) is None:
            found.append(f"{row['variant']}: {row['slo_note']}")
    if "capacity_tps" in variants and variants["capacity_tps"].isna().all():
        found.append("no measured point meets the SLO: no capacity, so no self-hosted cost "
                     "(each variant's closest point is shown)")
    if profile.traffic is None:
        found.append("no traffic profile: give --profile FILE with a `traffic` section for GPUs "
                     "for peak, monthly bills, break-even volume and the verdict")
    return found


def _hardware_notes(results: RunResults, profile: Profile) -> list[str]:
    if profile.gpu is None:
        return []
    base = profile.gpu.split("-")[0].lower()
    if not results.gpu_names:
        return [f"the results were measured without a GPU, yet priced as {profile.gpu} hours: "
                f"the figures are what this throughput would cost at {profile.gpu} prices"]
    if not any(base in name.lower() for name in results.gpu_names):
        return [f"the results were measured on {results.hardware}, yet priced as {profile.gpu}"]
    return []


def _capacity_search_notes(results: RunResults, profile: Profile,
                           variants: pd.DataFrame) -> list[str]:
    """Say so where a capacity search was run at another SLO than the profile's."""
    wanted = {k: v for k, v in profile.slo.model_dump().items() if v}
    used = variants.get("cell", pd.Series(dtype=object)).dropna()
    found = []
    for cell in used:
        searched = results.capacity_files.get(cell, {}).get("slo")
        if searched is not None and searched != wanted:
            found.append(f"{cell}: capacity from its capacity search at SLO {searched}; the "
                         f"profile asks {wanted}")
    return found


def _mix_notes(results: RunResults, profile: Profile, demand: Demand) -> list[str]:
    run_in, run_out = results.workload
    if math.isclose(run_in / run_out, demand.input_per_output, rel_tol=1e-6):
        return []
    return [f"capacity converted from the measured mix {run_in / run_out:g}:1 to the profile's "
            f"{demand.input_per_output:g}:1, an input token weighing 1/R of an output token "
            f"(R = {profile.input_output_cost_ratio:g})"]


def points_frame(results: RunResults, profile: Profile, book: PriceBook) -> pd.DataFrame:
    """Every measured point: SLO, $/Mtok at full load (InferenceX) and the input/output split."""
    demand = demand_of(profile, results)
    rented = rented_price(results, profile, book)
    rows = []
    for row in with_slo(results.frame, profile.slo).to_dict("records"):
        entry = {k: row.get(k) for k in ("variant", "max_num_seqs", "tensor_parallel_size",
                                         "concurrency", "status", "meets_slo", "slo_miss",
                                         "output_throughput", "total_token_throughput")}
        if row.get("status") == "ok" and rented is not None:
            hourly = rented.per_replica(_gpus_per_replica(row))
            total, output = row["total_token_throughput"], row["output_throughput"]
            split_in, split_out = model.split_usd_per_mtok(
                hourly, total - output, output, profile.input_output_cost_ratio)
            entry.update({
                "usd_per_mtok_output": model.usd_per_mtok(hourly, output),
                "usd_per_mtok_total": model.usd_per_mtok(hourly, total),
                "usd_per_mtok_input_split": split_in, "usd_per_mtok_output_split": split_out,
                "usd_per_mtok_at_profile_mix": model.usd_per_mtok(hourly, model.throughput_at_mix(
                    total - output, output, demand.input_per_output,
                    profile.input_output_cost_ratio))})
        rows.append(entry)
    return pd.DataFrame(rows)
