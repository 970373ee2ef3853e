"""Several stored runs priced together (`harness cost RUN [RUN...]`): each variant on the
machine of its run is a deployment, and each deployment's server setups (batch size,
parallelism) hold the workloads measured on them.

One variant name stands for one model: two runs that give it different models are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config.fidelity import FidelityConfig
from harness.config.slo import Slo
from harness.contract.fidelity import FidelityRecord
from harness.contract.results import CapacityRecord, PointResult
from harness.cost.capacity import cell_capacity
from harness.cost.hosting import HourlyPrice, rented_price
from harness.cost.inputs.files import CostInputError
from harness.cost.inputs.prices import PriceBook
from harness.cost.inputs.profile import Profile
from harness.cost.measured import JudgedPoint, MeasuredRun, judged
from harness.cost.parts import Capacity
from harness.metrics.fidelity import misses
from harness.metrics.slo import judge
from harness.store.run_store import StoredRun

Setup = tuple[int | None, int]     # (max_num_seqs, tensor_parallel_size): one server's settings


@dataclass(frozen=True)
class MeasuredWorkload:
    """One workload as measured on one server setup: its cell, its mean lengths as served and
    the prefix share its prompts had."""
    name: str | None              # a named workload, or None: the run's own `workload`
    cell: str
    input_tokens: float
    output_tokens: float
    prefix_share: float
    points: tuple[PointResult, ...]
    record: CapacityRecord | None  # its capacity search, if any

    def capacity(self, slo: Slo, ratio: float, cost_ratio: float) -> Capacity | None:
        """Its capacity at `slo`, in tokens/s at the mix `ratio` (capacity.cell_capacity)."""
        points = [JudgedPoint(p, judge(p.metrics, slo, p.sustained)) for p in self.points]
        return cell_capacity(points, self.record, ratio, cost_ratio)

    @property
    def label(self) -> str:
        return (f"{self.name or 'the run workload'} ({self.input_tokens:,.0f} in / "
                f"{self.output_tokens:,.0f} out)")


@dataclass
class Deployment:
    """A variant served on the machine of one run."""
    key: str                      # the variant's name, or 'variant on run' where two runs have it
    variant: str
    model: str
    run: MeasuredRun
    price: HourlyPrice | None
    setups: dict[Setup, list[MeasuredWorkload]] = field(default_factory=dict)

    @property
    def fidelity(self) -> FidelityRecord | None:
        return self.run.stored.fidelity.get(self.variant)

    def fidelity_miss(self, floor: FidelityConfig | None) -> str | None:
        """What the variant misses of a tier's fidelity floor; None: it keeps to it (or the
        run scored no fidelity: see fidelity_unchecked)."""
        record = self.fidelity
        if floor is None or record is None:
            return None
        return "; ".join(misses(record, floor)) or None

    def workload_names(self) -> set[str | None]:
        return {w.name for found in self.setups.values() for w in found}


def variant_model(stored: StoredRun, variant: str) -> str:
    config = stored.manifest.config
    options = config.matrix.variants.get(variant, {})
    model = options.get("model")
    return model if isinstance(model, str) else config.model


def _measured(stored: StoredRun, variant: str) -> dict[Setup, list[MeasuredWorkload]]:
    config = stored.manifest.config
    cells: dict[str, list[PointResult]] = {}
    for point in stored.points:
        if point.variant == variant:
            cells.setdefault(point.cell, []).append(point)
    setups: dict[Setup, list[MeasuredWorkload]] = {}
    for cell, points in cells.items():
        first = points[0]
        done = sum(p.metrics.completed for p in points)
        if not done:
            continue
        prefix = config.workload_of(first.workload).shared_prefix
        setups.setdefault((first.max_num_seqs, first.tensor_parallel_size), []).append(
            MeasuredWorkload(first.workload, cell,
                             sum(p.metrics.prompt_tokens for p in points) / done,
                             sum(p.metrics.output_tokens for p in points) / done,
                             prefix.share if prefix else 0.0, tuple(points),
                             stored.capacities.get(cell)))
    return setups


def _keys(runs: list[StoredRun]) -> dict[tuple[int, str], str]:
    """Each (run, variant) its name in the answer, refusing one name for two models."""
    models: dict[str, tuple[str, StoredRun]] = {}
    count: dict[str, int] = {}
    for stored in runs:
        for variant in sorted({p.variant for p in stored.points}):
            model = variant_model(stored, variant)
            seen = models.setdefault(variant, (model, stored))
            if seen[0] != model:
                raise CostInputError(
                    f"variant {variant!r} serves {seen[0]} in {seen[1].root} but {model} in "
                    f"{stored.root}: one variant name is one model; rename one of them")
            count[variant] = count.get(variant, 0) + 1
    return {(index, variant): variant if count[variant] == 1 else f"{variant} on {stored.root.name}"
            for index, stored in enumerate(runs)
            for variant in sorted({p.variant for p in stored.points})}


def deployments(runs: list[StoredRun], profile: Profile, book: PriceBook) -> list[Deployment]:
    """Every variant of every run, priced at its run's machine (or the profile's GPU)."""
    names = _keys(runs)
    found = []
    for index, stored in enumerate(runs):
        measured = judged(stored, profile.slo)
        price = rented_price(measured, profile, book)
        for (at, variant), key in names.items():
            if at == index:
                found.append(Deployment(key, variant, variant_model(stored, variant), measured,
                                        price, _measured(stored, variant)))
    return found
