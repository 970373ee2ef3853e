"""What each option costs for the traffic: per variant the rented and owned side (an hour of a
replica, $/Mtok at full load and, with traffic, the monthly bill of the replicas the peak
needs), and per hosted API its $/Mtok at this traffic's mix and its monthly bill."""

from __future__ import annotations

from harness.cost import formulas
from harness.cost.demand import Demand
from harness.cost.hosting import HourlyPrice, owned_units, owned_usd_per_gpu_hour
from harness.cost.inputs.prices import ApiPrice
from harness.cost.inputs.profile import Profile
from harness.cost.parts import (
    ApiCost,
    Capacity,
    FidelityMark,
    Power,
    Provisioning,
    SideCost,
    TokenSplit,
    VariantCapacity,
    VariantCost,
)


def variant_costs(capacities: list[VariantCapacity], rented: HourlyPrice | None,
                  profile: Profile, demand: Demand, owned: bool,
                  fidelity: dict[str, FidelityMark] | None = None) -> list[VariantCost]:
    """Each variant's sides (where it has a capacity), its replicas for the peak (with
    traffic) and its fidelity mark (where the run has fidelity scores)."""
    found = []
    for measured in capacities:
        capacity = measured.capacity
        mark = None if fidelity is None else fidelity[measured.variant]
        if capacity is None:
            found.append(VariantCost(measured.variant, None, measured.slo_note, fidelity=mark))
            continue
        rented_cost = None
        if rented is not None:
            hourly = rented.per_replica(capacity.gpus_per_replica)
            rented_cost = _side(capacity, hourly, demand, split=_split(capacity, hourly, profile))
        owned_cost = _owned(capacity, profile, demand) if owned else None
        found.append(VariantCost(measured.variant, capacity, measured.slo_note, rented_cost,
                                 owned_cost, _provisioning(capacity, demand, rented_cost,
                                                           owned_cost), mark))
    return found


def _side(capacity: Capacity, usd_per_replica_hour: float, demand: Demand,
          **extra: TokenSplit | Power) -> SideCost:
    """One side's cost for a variant's capacity: full load, and with traffic its monthly bill."""
    full_load = formulas.usd_per_mtok(usd_per_replica_hour, capacity.tps)
    if demand.average_tps is None:
        return SideCost(usd_per_replica_hour, full_load, **extra)
    monthly = formulas.self_hosted_monthly_usd(demand.average_tps, demand.peak_to_average,
                                               capacity.tps, usd_per_replica_hour)
    return SideCost(usd_per_replica_hour, full_load, monthly,
                    monthly / demand.served_mtok_month, **extra)


def _provisioning(capacity: Capacity, demand: Demand,
                  *sides: SideCost | None) -> Provisioning | None:
    if demand.average_tps is None or all(side is None for side in sides):
        return None
    replicas = formulas.replicas_for_peak(demand.peak_tps, capacity.tps)
    return Provisioning(replicas, formulas.utilization(demand.average_tps, replicas,
                                                       capacity.tps),
                        replicas * capacity.gpus_per_replica)


def _split(capacity: Capacity, usd_per_replica_hour: float, profile: Profile) -> TokenSplit:
    return TokenSplit(*formulas.split_usd_per_mtok(
        usd_per_replica_hour, capacity.input_tps, capacity.output_tps,
        profile.input_output_cost_ratio))


def _owned(capacity: Capacity, profile: Profile, demand: Demand) -> SideCost:
    """Owned hardware at the measured power where the results have some, else the profile's."""
    units = owned_units(capacity.gpus_per_replica, profile)
    measured = capacity.mean_power_w
    power = measured / units if measured is not None else profile.own.power_w_per_gpu
    return _side(capacity, owned_usd_per_gpu_hour(profile, power) * units, demand,
                 power=Power(power, "measured" if measured is not None else "assumed"))


def api_costs(prices: list[ApiPrice], demand: Demand) -> list[ApiCost]:
    found = []
    tokens = demand.input_tokens + demand.output_tokens
    for price in prices:
        per_request = price.request_usd(demand.input_tokens, demand.output_tokens,
                                        demand.cached_input_share, demand.batch_share)
        per_mtok = per_request / (tokens / formulas.TOKENS_PER_MTOK)
        found.append(ApiCost(
            name=price.name, tier=price.tier,
            input_usd_per_mtok=price.per_mtok("input_mtok"),
            cached_input_usd_per_mtok=price.per_mtok("cache_read_mtok"),
            output_usd_per_mtok=price.per_mtok("output_mtok"),
            has_batch_price=price.batch is not None, usd_per_mtok=per_mtok,
            usd_per_month=(None if demand.average_tps is None
                           else formulas.api_monthly_usd(demand.average_tps, per_mtok)),
            prices_as_of=price.price_date, price_data=price.data,
            price_data_date=price.data_date, tier_checked=price.tier_checked,
            price_source=price.source))
    return found
