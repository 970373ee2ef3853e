"""What the cost answer rests on: a stored run's points, each judged against the profile's SLO
by the one evaluator (harness.metrics.slo), and the facts of the run (model, hardware, price,
mix)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config.slo import Slo
from harness.contract.manifest import RunManifest
from harness.contract.results import CapacityRecord, PointResult
from harness.cost.inputs.files import CostInputError
from harness.metrics.slo import Judgement, judge
from harness.store.run_store import ResultsError, RunStore, StoredRun


@dataclass(frozen=True)
class JudgedPoint:
    """A measured point and its verdict against the profile's SLO."""

    result: PointResult
    judged: Judgement

    @property
    def gpus_per_replica(self) -> int:
        """GPUs one server of this cell used (measured, else its tensor parallelism)."""
        return self.result.gpu_count or self.result.tensor_parallel_size or 1


@dataclass
class MeasuredRun:
    stored: StoredRun
    points: list[JudgedPoint]
    slo: Slo          # the SLO every point was judged against (the profile's)

    @property
    def root(self) -> Path:
        return self.stored.root

    @property
    def manifest(self) -> RunManifest:
        return self.stored.manifest

    @property
    def capacities(self) -> dict[str, CapacityRecord]:
        return self.stored.capacities

    @property
    def model(self) -> str:
        return self.manifest.config.model

    @property
    def usd_per_hour(self) -> float | None:
        return self.manifest.config.cost.usd_per_hour

    @property
    def workload(self) -> tuple[int, int]:
        """Mean prompt and output tokens per completed request, as measured (the config may
        draw lengths from distributions)."""
        metrics = [p.result.metrics for p in self.points]
        done = sum(m.completed for m in metrics)
        if not done:
            return 1, 1
        return (max(1, round(sum(m.prompt_tokens for m in metrics) / done)),
                max(1, round(sum(m.output_tokens for m in metrics) / done)))


def load_results(root: Path) -> StoredRun:
    """A results directory to price; CostInputError (one line) when it is not a readable run
    or has nothing measured."""
    try:
        stored = RunStore(root).load()
    except ResultsError as err:
        raise CostInputError(str(err)) from None
    if not stored.points:
        raise CostInputError(f"{root}: no points measured yet; nothing to price")
    return stored


def judged(stored: StoredRun, slo: Slo) -> MeasuredRun:
    """The run's points in table order, each judged against `slo`."""
    points = sorted(stored.points, key=lambda p: p.sort_key)
    return MeasuredRun(stored, [JudgedPoint(p, judge(p.metrics, slo, p.sustained))
                                for p in points], slo)
