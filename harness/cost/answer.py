"""Build versus buy: a stored run, a traffic profile and prices -> the answer.

One row per variant (self-hosted), one per comparable API, and one per (variant, API) with the
verdict and the break-even. Reads stored results only; the formulas are in harness.cost.formulas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.cost import formulas
from harness.cost.capacity import capacity_caveats, measured_row, variant_capacities
from harness.cost.caveats import Caveat, codes, row_caveats, worst
from harness.cost.decision import decision_frame
from harness.cost.demand import Demand, demand_of
from harness.cost.fidelity import fidelity_caveats, mark_fidelity
from harness.cost.hosting import (
    HourlyPrice,
    owned_applies,
    owned_units,
    owned_usd_per_gpu_hour,
    rented_price,
)
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.prices import ApiPrice, PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.labels import missing
from harness.cost.measured import JudgedPoint, MeasuredRun, judged
from harness.cost.notes import notes, price_caveats, price_rows, prices_used
from harness.cost.ranges import break_even_frame, describe, side_ranges
from harness.cost.sensitivity import sensitivity_frame
from harness.store.run_store import StoredRun

DEFAULT_COMPARISON = "frontier-small"


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
    prices: pd.DataFrame = field(default_factory=pd.DataFrame)      # each price, with its dates
    caveats: list[Caveat] = field(default_factory=list)
    break_even: pd.DataFrame = field(default_factory=pd.DataFrame)  # (variant, side, API) ranges
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)
    decision: pd.DataFrame = field(default_factory=pd.DataFrame)    # one row per variant

    @property
    def notes(self) -> list[str]:
        """The caveats' sentences, in order."""
        return [c.text for c in self.caveats]

    def caveat_frame(self) -> pd.DataFrame:
        return pd.DataFrame([c.as_dict() for c in self.caveats],
                            columns=["code", "text", "severity", "variant", "side", "api"])


def _self_hosted(capacity: dict, side: str, usd_per_replica_hour: float | None,
                 demand: Demand) -> dict:
    """One side's (rented or owned) cost columns for a variant's capacity."""
    if usd_per_replica_hour is None or capacity.get("capacity_tps") is None:
        return {}
    cap = capacity["capacity_tps"]
    columns = {f"{side}_usd_per_replica_hour": usd_per_replica_hour,
               f"{side}_usd_per_mtok_full_load": formulas.usd_per_mtok(usd_per_replica_hour, cap)}
    if demand.average_tps is not None:
        replicas = formulas.replicas_for_peak(demand.peak_tps, cap)
        monthly = formulas.self_hosted_monthly_usd(demand.average_tps, demand.peak_to_average, cap,
                                                usd_per_replica_hour)
        columns.update({
            "replicas": replicas,
            "utilization": formulas.utilization(demand.average_tps, replicas, cap),
            f"{side}_usd_per_month": monthly,
            f"{side}_usd_per_mtok_effective": monthly / demand.served_mtok_month})
    return columns


def variant_rows(capacities: pd.DataFrame, rented: HourlyPrice | None, profile: Profile,
                 demand: Demand, owned: bool = True) -> pd.DataFrame:
    rows = []
    for capacity in capacities.to_dict("records"):
        row = dict(capacity)
        if not missing(capacity.get("capacity_tps")):
            gpus = capacity["gpus_per_replica"]
            row["capacity_tps_per_unit"] = capacity["capacity_tps"] / gpus
            if rented is not None:
                row.update(_split(capacity, rented.per_replica(gpus), profile))
                row.update(_self_hosted(capacity, "rented", rented.per_replica(gpus), demand))
            if owned:
                row.update(_owned(capacity, profile, demand))
            if "replicas" in row:
                row["units"] = row["replicas"] * gpus
        rows.append(row)
    return pd.DataFrame(rows)


def _split(capacity: dict, usd_per_replica_hour: float, profile: Profile) -> dict:
    split_in, split_out = formulas.split_usd_per_mtok(
        usd_per_replica_hour, capacity["input_tps"], capacity["output_tps"],
        profile.input_output_cost_ratio)
    return {"rented_usd_per_mtok_input": split_in, "rented_usd_per_mtok_output": split_out}


def _owned(capacity: dict, profile: Profile, demand: Demand) -> dict:
    if profile.own is None:
        return {}
    units = owned_units(capacity, profile)
    measured = capacity.get("mean_power_w")
    measured = None if missing(measured) else measured
    power = measured / units if measured is not None else profile.own.power_w_per_gpu
    columns = _self_hosted(capacity, "owned", owned_usd_per_gpu_hour(profile, power) * units,
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
        per_mtok = per_request / (tokens / formulas.TOKENS_PER_MTOK)
        rows.append({
            "api": price.name, "api_tier": price.tier,
            "api_input_usd_per_mtok": price.per_mtok("input_mtok"),
            "api_cached_input_usd_per_mtok": price.per_mtok("cache_read_mtok"),
            "api_output_usd_per_mtok": price.per_mtok("output_mtok"),
            "api_has_batch_price": price.batch is not None,
            "api_usd_per_mtok": per_mtok,
            "api_usd_per_month": (None if demand.average_tps is None
                                  else formulas.api_monthly_usd(demand.average_tps, per_mtok)),
            "api_prices_as_of": price.price_date.isoformat(), "api_price_data": price.data,
            "api_price_data_date": price.data_date.isoformat(),
            "api_tier_checked": price.tier_checked.isoformat() if price.tier_checked else None,
            "api_price_source": price.source})
    return pd.DataFrame(rows)


def _verdict(variant: dict, api: dict, side: str, demand: Demand) -> dict:
    full_load = variant.get(f"{side}_usd_per_mtok_full_load")
    if missing(full_load):
        return {}
    api_per_mtok = api["api_usd_per_mtok"]
    columns = {f"{side}_break_even_utilization":
               formulas.break_even_utilization(full_load, api_per_mtok)}
    if demand.average_tps is None:
        return columns
    ranges = side_ranges({**variant, **api}, side, demand)
    single = ranges[0][0] if len(ranges) == 1 else None   # one number only where one range
    self_bill, api_bill = variant[f"{side}_usd_per_month"], api["api_usd_per_month"]
    cheaper = ("self-hosted" if self_bill < api_bill else "API" if api_bill < self_bill
               else "equal")
    columns.update({
        f"{side}_break_even_traffic_mtok_month": single,
        f"{side}_break_even_ranges": describe(ranges),
        f"{side}_break_even_range_count": len(ranges),
        f"{side}_cheaper": cheaper,
        f"{side}_minus_api_usd_per_month": self_bill - api_bill,
        f"{side}_over_api": self_bill / api_bill})
    return columns


def verdict_rows(variants: pd.DataFrame, apis: pd.DataFrame, demand: Demand) -> pd.DataFrame:
    """One row per (variant, API), each side's verdict."""
    rows = []
    for variant in variants.to_dict("records"):
        for api in apis.to_dict("records"):
            row = {**variant, **api}
            for side in ("rented", "owned"):
                row.update(_verdict(variant, api, side, demand))
            rows.append(row)
    return pd.DataFrame(rows)


def tag_caveats(verdicts: pd.DataFrame, caveats: list[Caveat]) -> None:
    """Each side's verdict gets the codes (and worst severity) of the caveats it rests on."""
    for side in ("rented", "owned"):
        found = [row_caveats(caveats, row["variant"], side, row["api"])
                 for row in verdicts[["variant", "api"]].to_dict("records")]
        verdicts[f"{side}_caveats"] = [codes(c) for c in found]
        verdicts[f"{side}_caveat_severity"] = [worst(c) for c in found]


def _flip_caveats(sensitivity: pd.DataFrame) -> list[Caveat]:
    """A verdict that flips at a capacity inside the capacity's own interval is not settled."""
    if sensitivity.empty or "flips_within_interval" not in sensitivity:
        return []
    return [Caveat("flip_within_capacity_interval",
                   f"{row['variant']}: the {row['side']} verdict against {row['api']} flips at "
                   f"{row['flips_at']:,.0f} tok/s, inside the capacity's interval "
                   f"[{row['interval_low']:,.0f}, {row['interval_high']:,.0f}): measure rates "
                   "between the searched ones (more capacity.steps) to settle it", "warning",
                   row["variant"], row["side"])
            for row in sensitivity.to_dict("records") if row.get("flips_within_interval") is True]


def compared_apis(profile: Profile, run: MeasuredRun, book: PriceBook) -> list[str]:
    if profile.apis:
        return list(profile.apis)
    tier = book.tier_for_model(run.model)
    return [tier, DEFAULT_COMPARISON] if tier else [DEFAULT_COMPARISON]


def build_answer(stored: StoredRun, profile: Profile, book: PriceBook,
                 profile_name: str | None = None) -> Answer:
    """Everything `harness cost` says, as frames and caveats."""
    run = judged(stored, profile.slo)
    demand = demand_of(profile, run)
    rented = rented_price(run, profile, book)
    owned = owned_applies(profile, run)
    if rented is None and not owned:
        raise CostInputError(
            "no hourly price for self-hosting: set cost.usd_per_hour in the run's config, name a "
            "GPU in the profile (gpu: H100; see `harness prices`) or add an `own` section")
    per_gpu = profile.gpu is not None or bool(run.manifest.gpu_names)
    capacities = variant_capacities(run, demand.input_per_output,
                                    profile.input_output_cost_ratio)
    variants = variant_rows(capacities, rented, profile, demand, owned)
    if "capacity_tps_per_unit" in variants:   # tok/s per GPU (or machine); $/h per replica
        variants["capacity_tps_per_unit_is"] = "per GPU" if per_gpu else "per machine"
        variants["usd_per_hour_is"] = "per replica (a server with gpus_per_replica GPUs)"
    variants = mark_fidelity(variants, stored)
    prices = book.api_prices(compared_apis(profile, run, book))
    apis = api_rows(prices, demand)
    title = f"{run.manifest.run} ({run.root})"
    if profile_name:
        title += f", profile {profile_name}"
    caveats = notes(run, profile, book, variants, prices, demand)
    caveats += capacity_caveats(run, profile.slo, capacities)
    caveats += price_caveats(rented, prices, book)
    caveats += fidelity_caveats(stored)
    if profile.own is not None and not owned:
        caveats.append(Caveat(
            "owned_left_out", "owned: left out: the run had no GPU and the profile's `own` "
            "inputs are per GPU; give per-machine inputs (own.per: machine) to price owned "
            "machines", "info", side="owned"))
    verdicts = verdict_rows(variants, apis, demand)
    if rented is not None:
        verdicts["rented_price"] = f"${rented.usd_per_hour:g}/h per " + (
            "GPU" if rented.per_gpu else "machine") + f", {rented.label}"
        verdicts["rented_price_source"] = rented.source
        verdicts["rented_price_dated"] = rented.dated
        verdicts["rented_price_data_date"] = rented.data_date.isoformat()
    answer = Answer(title, demand, "GPU" if per_gpu else "machine", variants, apis, verdicts)
    answer.prices_used = prices_used(rented, profile, variants, prices, book)
    answer.prices = price_rows(rented, prices, book)
    answer.caveats = caveats
    if demand.average_tps is not None:
        answer.break_even = break_even_frame(verdicts, demand)
        answer.sensitivity = sensitivity_frame(verdicts, prices, profile, demand)
        caveats += _flip_caveats(answer.sensitivity)
    tag_caveats(verdicts, caveats)
    answer.decision = decision_frame(verdicts, caveats)
    return answer


def points_frame(stored: StoredRun, profile: Profile, book: PriceBook) -> pd.DataFrame:
    """Every measured point: SLO, $/Mtok at full load (InferenceX) and the input/output split."""
    run = judged(stored, profile.slo)
    demand = demand_of(profile, run)
    rented = rented_price(run, profile, book)
    rows = []
    for point in run.points:
        result, m = point.result, point.result.metrics
        entry = {"variant": result.variant, "max_num_seqs": result.max_num_seqs,
                 "tensor_parallel_size": result.tensor_parallel_size,
                 "concurrency": result.concurrency, "rate": result.rate,
                 "point": result.point, "kind": result.kind,
                 "measured_at": measured_at(result), "status": "ok",
                 "meets_slo": point.judged.meets, "slo_miss": "; ".join(point.judged.violations),
                 "output_throughput": m.output_throughput,
                 "total_token_throughput": m.total_token_throughput}
        if rented is not None:
            entry.update(_point_prices(point, rented.per_replica(point.gpus_per_replica),
                                       profile, demand))
        rows.append(entry)
    for failure in run.stored.failures:
        rows += [{"variant": failure.variant, "max_num_seqs": failure.max_num_seqs,
                  "tensor_parallel_size": failure.tensor_parallel_size,
                  "concurrency": ref.concurrency, "point": ref.id, "status": "failed",
                  "meets_slo": False, "slo_miss": f"failed: {failure.reason.splitlines()[0]}"}
                 for ref in failure.points]
    return pd.DataFrame(rows)


def measured_at(result) -> str:
    """What a point's throughput is: the server saturated (closed loop with every batch slot
    kept busy), a closed loop below that, or an offered load (open loop, profiles, searches)."""
    if result.kind != "closed":
        return "at offered load"
    if result.max_num_seqs is None or result.concurrency >= result.max_num_seqs:
        return "at saturation"
    return f"at concurrency {result.concurrency}"


def _point_prices(point: JudgedPoint, hourly: float, profile: Profile, demand: Demand) -> dict:
    row = measured_row(point, demand.input_per_output, profile.input_output_cost_ratio)
    split_in, split_out = formulas.split_usd_per_mtok(
        hourly, row["input_tps"], row["output_tps"], profile.input_output_cost_ratio)
    return {"usd_per_mtok_output": formulas.usd_per_mtok(hourly, row["output_tps"]),
            "usd_per_mtok_total": formulas.usd_per_mtok(hourly,
                                                        row["input_tps"] + row["output_tps"]),
            "usd_per_mtok_input_split": split_in, "usd_per_mtok_output_split": split_out,
            "usd_per_mtok_at_profile_mix": formulas.usd_per_mtok(hourly, row["capacity_tps"])}
