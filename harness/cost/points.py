"""Every measured point priced (`harness cost --points`): whether it meets the profile's SLO,
its $/Mtok at its own throughput (InferenceX: per output and per total token), the GKE split
between input and output tokens, and its $/Mtok at the profile's mix. A failed cell's points
are listed too, unmeasured."""

from __future__ import annotations

from dataclasses import dataclass

from harness.cost import formulas
from harness.cost.capacity import measured_capacity
from harness.cost.demand import Demand, demand_of
from harness.cost.hosting import rented_price
from harness.cost.inputs.prices import PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.measured import JudgedPoint, judged
from harness.store.run_store import StoredRun


@dataclass(frozen=True)
class PointPrices:
    """$/Mtok of a point at the rented price, each "as if every token were of this kind"
    except the split, whose input and output prices add up to the hour."""
    usd_per_mtok_output: float | None
    usd_per_mtok_total: float | None
    usd_per_mtok_input_split: float
    usd_per_mtok_output_split: float
    usd_per_mtok_at_profile_mix: float | None


@dataclass(frozen=True)
class PointCost:
    variant: str
    max_num_seqs: int | None
    tensor_parallel_size: int | None
    concurrency: int | None
    point: str
    measured: bool                # False: its cell failed before it was measured
    meets_slo: bool
    slo_miss: str                 # what it misses, or why it was not measured
    rate: float | None = None
    kind: str | None = None
    measured_at: str | None = None
    output_throughput: float | None = None
    total_token_throughput: float | None = None
    prices: PointPrices | None = None   # None: no rented price

    @property
    def status(self) -> str:
        return "ok" if self.measured else "failed"


def point_costs(stored: StoredRun, profile: Profile, book: PriceBook) -> list[PointCost]:
    """Every measured point, then every point of a failed cell."""
    run = judged(stored, profile.slo)
    demand = demand_of(profile, run)
    rented = rented_price(run, profile, book)
    found = []
    for point in run.points:
        result, m = point.result, point.result.metrics
        prices = None
        if rented is not None:
            prices = _prices(point, rented.per_replica(point.gpus_per_replica), profile, demand)
        found.append(PointCost(
            result.variant, result.max_num_seqs, result.tensor_parallel_size, result.concurrency,
            result.point, True, point.judged.meets, "; ".join(point.judged.violations),
            result.rate, result.kind, measured_at(result), m.output_throughput,
            m.total_token_throughput, prices))
    for failure in run.stored.failures:
        found += [PointCost(failure.variant, failure.max_num_seqs, failure.tensor_parallel_size,
                            ref.concurrency, ref.id, False, False,
                            f"failed: {failure.reason.splitlines()[0]}")
                  for ref in failure.points]
    return found


def measured_at(result) -> str:
    """What a point's throughput is: the server saturated (closed loop with every batch slot
    kept busy), a closed loop below that, or an offered load (open loop, profiles, searches)."""
    if result.kind != "closed":
        return "at offered load"
    if result.max_num_seqs is None or result.concurrency >= result.max_num_seqs:
        return "at saturation"
    return f"at concurrency {result.concurrency}"


def _prices(point: JudgedPoint, hourly: float, profile: Profile, demand: Demand) -> PointPrices:
    capacity = measured_capacity(point, demand.input_per_output, profile.input_output_cost_ratio)
    split_in, split_out = formulas.split_usd_per_mtok(
        hourly, capacity.input_tps, capacity.output_tps, profile.input_output_cost_ratio)
    return PointPrices(
        formulas.usd_per_mtok(hourly, capacity.output_tps),
        formulas.usd_per_mtok(hourly, capacity.input_tps + capacity.output_tps),
        split_in, split_out, formulas.usd_per_mtok(hourly, capacity.tps))
