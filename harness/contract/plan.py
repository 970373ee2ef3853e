"""Expand a config into server cells (one engine launch each) and their load points.

A load point is a sequence of phases; the usual point is one phase: a fixed concurrency
(closed loop) or a fixed rate (open loop). Scenarios are several phases, e.g. an
average level, a ramp and a peak, measured back to back on the same server; a phase can also
replay load.trace (its send times and lengths; it lasts the trace's span).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from harness.config import DUMMY_PREFIX, ExperimentConfig
from harness.config.load import LoadConfig, Phase
from harness.config.trace import Trace

TRACE_POINT = "trace"
REPEAT_MARK = "-rep"  # c4, c4-rep2, c4-rep3: a point measured again on the same server


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
    trace: bool = False  # replays load.trace: its requests come from the trace, not the workload

    @property
    def open_loop(self) -> bool:
        return self.rate is not None or self.offsets is not None


@dataclass(frozen=True)
class Point:
    """One measurement on a running server."""

    id: str
    kind: str  # closed, open, profile (a scenario: contract/results.py), search, trace
    phases: tuple[PhaseSpec, ...]
    repeat: int = 1  # 2+: a repeat of the point named base_id

    @property
    def base_id(self) -> str:
        return base_of(self.id, self.repeat)

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

    @property
    def replays_trace(self) -> bool:
        return any(phase.trace for phase in self.phases)

    @property
    def trace_stream(self) -> str:
        """The name that seeds this point's trace requests (the `trace` point's own name, as
        it always was; a profile's `<point>/trace`, so its prompts differ from that point's)."""
        return self.id if self.id == TRACE_POINT else f"{self.id}/trace"


@dataclass(frozen=True)
class Cell:
    """One server launch: a variant at one batch size (max_num_seqs) and parallelism."""

    variant: str
    max_num_seqs: int | None  # None: the engine's own default
    tensor_parallel_size: int
    model: str
    options: dict[str, Any]
    points: tuple[Point, ...]
    # whose numbers the fidelity pass scores: the matrix variant (a tuned trial's variant is
    # its parameters, but only its quantization changes what the model computes)
    fidelity_of: str | None = None
    workload: str | None = None  # a name of matrix.workloads; None: the run's `workload`

    @property
    def fidelity_variant(self) -> str:
        return self.fidelity_of or self.variant

    @property
    def id(self) -> str:
        named = f"-{self.workload}" if self.workload is not None else ""
        batch = f"-b{self.max_num_seqs}" if self.max_num_seqs is not None else ""
        tp = f"-tp{self.tensor_parallel_size}" if self.tensor_parallel_size > 1 else ""
        return f"{self.variant}{named}{batch}{tp}"

    @property
    def is_dummy(self) -> bool:
        return self.model.startswith(DUMMY_PREFIX)

    @property
    def gpus(self) -> int:
        """The GPUs its server uses: tensor x pipeline x data parallel ranks (vLLM's world
        size), what NVML measures and a cluster reserves for it."""
        return (self.tensor_parallel_size * _ranks(self.options, "pipeline_parallel_size")
                * _ranks(self.options, "data_parallel_size"))


def _ranks(options: dict[str, Any], name: str) -> int:
    """A parallel size among the engine options (1 where unset)."""
    value = options.get(name)
    if value is None or isinstance(value, bool):
        return 1
    try:
        return int(value)
    except (TypeError, ValueError):  # not a size: the engine refuses it when it starts
        return 1


def rate_point(rate: float, load: LoadConfig, *, kind: str = "open",
               duration_s: float | None = None, requests: int | None = None,
               arrival: str | None = None) -> Point:
    duration = duration_s if duration_s is not None or requests is not None else load.duration_s
    requests = requests if duration_s is not None or requests is not None else load.requests
    prefix = "search-r" if kind == "search" else "r"
    return Point(f"{prefix}{rate:g}", kind, (PhaseSpec(
        "main", duration, requests, None, (rate, rate), arrival or load.arrival,
        load.burstiness),))


def profile_point(name: str, phases: list[Phase], load: LoadConfig,
                  trace: Trace | None = None) -> Point:
    specs = []
    for number, phase in enumerate(phases, 1):
        if phase.trace:
            specs.append(trace_phase(phase.name or f"phase{number}", trace, in_profile=True))
            continue
        rate = phase.rate
        if rate is not None:
            rate = (rate[0], rate[1]) if isinstance(rate, list) else (rate, rate)
        specs.append(PhaseSpec(phase.name or f"phase{number}", phase.duration_s, None,
                               phase.concurrency, rate, phase.arrival or load.arrival,
                               phase.burstiness or load.burstiness))
    return Point(name, "profile", tuple(specs))


def trace_phase(name: str, trace: Trace, *, in_profile: bool) -> PhaseSpec:
    """An open-loop phase at the trace's own (scaled) send times. In a profile it lasts the
    trace's span (to its last send), so the next phase starts then."""
    span = trace.offsets[-1] if in_profile else None
    return PhaseSpec(name, span, len(trace.requests), None, None, offsets=trace.offsets,
                     trace=True)


def load_points(load: LoadConfig, trace: Trace | None = None) -> tuple[Point, ...]:
    points = [Point(f"c{c}", "closed", (PhaseSpec("main", load.duration_s, load.requests, c,
                                                  None),))
              for c in load.concurrency or []]
    points += [rate_point(r, load) for r in load.rates or []]
    points += [profile_point(name, phases, load, trace)
               for name, phases in (load.scenarios or {}).items()]
    return tuple(points)


def trace_points(replay: Trace | None) -> tuple[Point, ...]:
    """The trace replay: an open-loop point sending at the trace's own (scaled) times."""
    if replay is None:
        return ()
    return (Point(TRACE_POINT, "trace", (trace_phase("trace", replay, in_profile=False),)),)


def base_of(point_id: str, repeat: int) -> str:
    """The id of the point that `point_id` (its `repeat`-th measurement) repeats."""
    return point_id.removesuffix(f"{REPEAT_MARK}{repeat}") if repeat > 1 else point_id


def repeated(point: Point, times: int) -> tuple[Point, ...]:
    """The point and its repeats, measured one after another on the same server (with the
    prefix cache reset between, as between any two points)."""
    return (point, *(replace(point, id=f"{point.id}{REPEAT_MARK}{k}", repeat=k)
                     for k in range(2, times + 1)))


def build_plan(config: ExperimentConfig, repeat: int = 1) -> list[Cell]:
    """Cells in the order they run: variant (the fidelity baseline first), then tensor
    parallelism, then batch size; each of their points `repeat` times."""
    replay = config.replayed_trace()
    points = tuple(each for point in load_points(config.load, replay) + trace_points(replay)
                   for each in repeated(point, repeat))
    cells = []
    variants = dict(config.matrix.variants)
    baseline = config.fidelity_baseline
    if baseline is not None:
        variants = {baseline: variants.pop(baseline), **variants}
    for variant, variant_options in variants.items():
        options = {**config.engine.options, **variant_options}
        model = options.pop("model", None) or config.model
        for workload in config.matrix.workloads or [None]:  # named workloads, if any
            for tp in config.matrix.tensor_parallel_size:
                for batch in config.matrix.max_num_seqs or [None]:
                    cells.append(Cell(variant, batch, tp, model, options, points,
                                      workload=workload))
    return cells
