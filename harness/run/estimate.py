"""What a plan will cost in wall time, before anything starts (`harness run --dry-run`): the
server launches, the seconds of load its points and capacity searches are planned for, and
what cannot be known upfront (a point of N requests lasts as long as the server takes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.config import ExperimentConfig
from harness.contract.plan import Cell


@dataclass(frozen=True)
class PlanEstimate:
    launches: int
    startup_timeout_s: float  # each launch takes at most this
    points: int
    timed_load_s: float  # seconds of arrivals the timed points are planned for
    untimed_points: int  # points of a request count: as long as the server takes
    search_steps: int  # capacity search measurements, at most
    search_load_s: float  # their seconds of arrivals, at most
    idle_s: float  # idle baselines, at most (one per cell, where energy can be measured)
    fidelity_passes: int  # one per variant

    @property
    def load_s(self) -> float:
        """The seconds of arrivals the plan sends (a search may stop before its last step)."""
        return self.timed_load_s + self.search_load_s


def estimate(config: ExperimentConfig, plan: list[Cell]) -> PlanEstimate:
    timed, untimed = 0.0, 0
    for cell in plan:
        for point in cell.points:
            if point.duration_s is None:
                untimed += 1
            else:
                timed += point.duration_s
    search = config.capacity_search
    # a top that meets grows by doubling up to grow_to x itself, and the capacity and the
    # bracket are measured capacity.repeats times: those steps come on top
    per_cell = (search.steps + math.ceil(math.log2(search.grow_to)) + 2 * (search.repeats - 1)
                if search else 0)
    steps = per_cell * len(plan)
    return PlanEstimate(
        launches=len(plan), startup_timeout_s=config.engine.startup_timeout_s,
        points=sum(len(cell.points) for cell in plan), timed_load_s=timed,
        untimed_points=untimed, search_steps=steps,
        search_load_s=steps * search.duration_s if search is not None else 0.0,
        idle_s=config.telemetry.idle_baseline_s * len(plan),
        fidelity_passes=len({cell.variant for cell in plan}) if config.fidelity else 0)
