"""Expand a config into server cells (one engine launch each) and their load points.

A load point is a sequence of phases; the usual point is one phase: a fixed concurrency
(closed loop) or a fixed rate (open loop). Traffic profiles are several phases, e.g. an
average level, a ramp and a peak, measured back to back on the same server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config import DUMMY_PREFIX, ExperimentConfig
from harness.config.load import LoadConfig, Phase
from harness.config.trace import read_trace

TRACE_POINT = "trace"


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    duration_s: float | None  # None: until `requests` requests are done
    requests: int | None
    concurrency: int | None  # closed loop
    rate: tuple[float, float] | None  # open loop: requests/s at the start and at the end
    arrival: str = "poisson"
    burstiness: float = 1.0
    offsets: tuple[float, ...] | None = None  # open loop: explicit send times from the start

    @property
    def open_loop(self) -> bool:
        return self.rate is not None or self.offsets is not None


@dataclass(frozen=True)
class Point:
    """One measurement on a running server."""

    id: str
    kind: str  # closed, open, profile, search
    phases: tuple[PhaseSpec, ...]

    @property
    def concurrency(self) -> int | None:
        return self.phases[0].concurrency if len(self.phases) == 1 else None

    @property
    def rate(self) -> float | None:
        only = self.phases[0]
        return only.rate[0] if len(self.phases) == 1 and only.rate else None

    @property
    def requests(self) -> int | None:
        return self.phases[0].requests if len(self.phases) == 1 else None

    @property
    def duration_s(self) -> float | None:
        durations = [p.duration_s for p in self.phases]
        return None if None in durations else sum(durations)


@dataclass(frozen=True)
class Cell:
    """One server launch: a variant at one batch size (max_num_seqs) and parallelism."""

    variant: str
    max_num_seqs: int | None  # None: the engine's own default
    tensor_parallel_size: int
    model: str
    options: dict[str, Any]
    points: tuple[Point, ...]

    @property
    def id(self) -> str:
        batch = f"-b{self.max_num_seqs}" if self.max_num_seqs is not None else ""
        tp = f"-tp{self.tensor_parallel_size}" if self.tensor_parallel_size > 1 else ""
        return f"{self.variant}{batch}{tp}"

    @property
    def is_dummy(self) -> bool:
        return self.model.startswith(DUMMY_PREFIX)


def rate_point(rate: float, load: LoadConfig, *, kind: str = "open",
               duration_s: float | None = None, requests: int | None = None,
               arrival: str | None = None) -> Point:
    duration = duration_s if duration_s is not None or requests is not None else load.duration_s
    requests = requests if duration_s is not None or requests is not None else load.requests
    prefix = "search-r" if kind == "search" else "r"
    return Point(f"{prefix}{rate:g}", kind, (PhaseSpec(
        "main", duration, requests, None, (rate, rate), arrival or load.arrival,
        load.burstiness),))


def profile_point(name: str, phases: list[Phase], load: LoadConfig) -> Point:
    specs = []
    for number, phase in enumerate(phases, 1):
        rate = phase.rate
        if rate is not None:
            rate = (rate[0], rate[1]) if isinstance(rate, list) else (rate, rate)
        specs.append(PhaseSpec(phase.name or f"phase{number}", phase.duration_s, None,
                               phase.concurrency, rate, phase.arrival or load.arrival,
                               phase.burstiness or load.burstiness))
    return Point(name, "profile", tuple(specs))


def load_points(load: LoadConfig) -> tuple[Point, ...]:
    points = [Point(f"c{c}", "closed", (PhaseSpec("main", load.duration_s, load.requests, c,
                                                  None),))
              for c in load.concurrency or []]
    points += [rate_point(r, load) for r in load.rates or []]
    points += [profile_point(name, phases, load)
               for name, phases in (load.profiles or {}).items()]
    return tuple(points)


def trace_points(config: ExperimentConfig) -> tuple[Point, ...]:
    """The trace replay: an open-loop point sending at the trace's own (scaled) times."""
    if config.load.trace is None:
        return ()
    replay = read_trace(config.load.trace, config.max_model_len)
    return (Point(TRACE_POINT, "trace", (PhaseSpec(
        "trace", None, len(replay.requests), None, None, offsets=replay.offsets),)),)


def build_plan(config: ExperimentConfig) -> list[Cell]:
    """Cells in the order they run: variant, then tensor parallelism, then batch size."""
    points = load_points(config.load) + trace_points(config)
    cells = []
    for variant, variant_options in config.matrix.variants.items():
        options = {**config.engine.options, **variant_options}
        model = options.pop("model", None) or config.model
        for tp in config.matrix.tensor_parallel_size:
            for batch in config.matrix.max_num_seqs or [None]:
                cells.append(Cell(variant, batch, tp, model, options, points))
    return cells
