"""What a run stores of its measurements: typed models, one schema version (contract/stored.py).

Points (PointResult, with its metrics, SLO verdict, phases, engine view, client health and
energy), a cell's capacity search (CapacityRecord) and a failed cell (CellFailure); where each
file lives: contract/layout.py. run/point_measurer.py builds them, harness/store/ writes and
reads them, and everything that reads results (runner, capacity, report, cost) reads these
models, never raw dict keys. Metrics are computed in harness/metrics/; the models here only
hold them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.config.slo import Slo
from harness.contract.placement import NodeRef
from harness.contract.stored import SCHEMA_VERSION, Stored

PointKind = Literal["closed", "open", "profile", "search", "trace"]
# A point of `load.scenarios` is stored as kind "profile" (the key's old name), so runs from
# before the rename read unchanged; every view (summary.csv, tables) says "scenario".
KIND_LABELS = {"profile": "scenario"}
# how tables list points (by stored kind or by label)
KIND_ORDER = {"closed": 0, "open": 1, "profile": 2, "scenario": 2, "search": 3, "trace": 4}


def kind_label(kind: str) -> str:
    """The name views give a stored point kind: "scenario" for "profile"."""
    return KIND_LABELS.get(kind, kind)


# --- metrics -------------------------------------------------------------------------------

class Distribution(Stored):
    """Summary of a sample in milliseconds, always with its sample count and 95% bootstrap
    confidence intervals of the percentiles."""

    n: int
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p50_ci: list[float] | None = None
    p90_ci: list[float] | None = None
    p95_ci: list[float] | None = None
    p99_ci: list[float] | None = None
    p99_low_n: bool = True  # fewer than 100 samples: read the p99 as an upper bound

    def stat(self, name: str) -> float | None:
        """`mean`, `p50`, ... by name (the statistics an SLO limit can name)."""
        return getattr(self, name)


class PointMetrics(Stored):
    """Every metric of a load point (or of one phase); formulas in
    harness/metrics/point_metrics.py."""

    requests: int  # logical requests (a retried request counts once)
    attempts: int
    completed: int
    errors: int  # requests whose last attempt failed
    error_rate: float
    failed_attempts: int
    errors_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description="failed requests by cause (harness.contract.records.ErrorKind)")
    retried_requests: int
    retry_prompt_tokens: int  # prompt tokens sent in attempts that failed
    retry_output_tokens: int  # tokens streamed by attempts that failed
    duration_s: float
    prompt_tokens: int
    output_tokens: int
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    ttft_ms: Distribution
    tpot_ms: Distribution
    itl_ms: Distribution
    itl_per_token_ms: Distribution
    e2e_ms: Distribution
    ttft_from_intended_ms: Distribution
    e2e_from_intended_ms: Distribution
    dispatch_lag_ms: Distribution
    output_length_mismatches: int  # successful requests whose output != max_tokens
    input_length_mismatches: int  # successful requests whose server-counted prompt != intended
    burst_share: float | None  # share of tokens that arrived in bursts
    burst_delivery: bool  # tokens came in bursts: TTFT/TPOT/ITL are not per-token truths


class SloVerdict(Stored):
    limits: Slo
    meets: bool
    violations: list[str]  # 'ttft_p95_ms 812.0 > 500', one per missed limit
    goodput_rps: float | None = None  # requests/s that met every limit of their own


# --- what one point stores ------------------------------------------------------------------

class PlannedPhase(Stored):
    name: str
    duration_s: float | None
    requests: int | None
    concurrency: int | None
    rate: tuple[float, float] | None  # requests/s at the start and at the end
    arrival: str
    burstiness: float
    trace: bool = False  # replays load.trace (its lengths and send times)


class Planned(Stored):
    phases: list[PlannedPhase]
    input_tokens: str  # the length distribution, described
    output_tokens: str
    request_timeout_s: float


class PhaseResult(Stored):
    metrics: PointMetrics
    slo: SloVerdict | None


class EngineStats(Stored):
    """The engine's own view over the point, from its /metrics."""

    samples: int
    running_mean: float | None
    running_max: float | None
    max_num_seqs: int | None
    waiting_max: float | None
    kv_cache_usage_peak: float | None
    preemptions: int | None
    prefix_cache_queries: int | None
    prefix_cache_hits: int | None
    prefix_hit_rate: float | None


class ServerView(Stored):
    """The engine's token counters over the point against the client's usage totals."""

    prompt_tokens: int | None
    generation_tokens: int | None
    client_prompt_tokens: int
    client_generation_tokens: int
    token_check: str  # match, mismatch, unverifiable (N errors), no server counters
    engine: EngineStats | None = None


class LagStats(Stored):
    n: int
    p50: float
    p99: float
    max: float


class ClientHealth(Stored):
    """Did the client keep up? Its event-loop lag, and the verdict on that and on the
    dispatch lag of the point's metrics (metrics.dispatch_lag_ms)."""

    kept_up: bool
    problems: list[str]
    limit_ms: float
    loop_lag_ms: LagStats


class WindowSummary(Stored):
    """One GPU energy window (NVML counter delta), without its samples."""

    name: str
    duration_s: float
    energy_j: float | None
    energy_j_per_gpu: dict[str, float] | None
    mean_power_w: float | None
    short_window: bool
    reason: str | None
    notes: list[str]
    samples: int
    sources: dict[str, str] = Field(
        default_factory=dict, description="reading -> the NVML call that served it, where "
        "the call depends on the driver (temperature: nvmlDeviceGetTemperature)")


class CpuEnergy(Stored):
    """One CPU package energy window (RAPL)."""

    name: str
    duration_s: float
    energy_j: float | None
    energy_j_per_zone: dict[str, float] | None
    reason: str | None


class Energy(Stored):
    """Energy of the point's GPUs: counter energy, per-token figures, samples' extremes."""

    energy_j: float | None
    mean_power_w: float | None
    idle_power_w: float | None
    mean_power_above_idle_w: float | None
    j_per_output_token: float | None
    j_per_token: float | None
    output_tokens_per_j: float | None
    peak_temp_c: float | None
    throttle_reasons: str | None
    mean_gpu_util_pct: float | None
    peak_mem_used_gib: float | None
    energy_short_window: bool
    energy_note: str | None  # "not measured: <why>" when energy_j is None
    cpu_energy_j: float | None = None  # the CPU packages over the same window (RAPL)
    window: WindowSummary
    idle: WindowSummary


class SteadyWindow(Stored):
    """The point without its ramp-up and drain (harness/metrics/steady.py has the rule): None
    figures and a note where the point never reached it."""

    rule: str
    start_s: float | None = None  # from the start of the point's window
    end_s: float | None = None
    duration_s: float | None = None
    requests: int = 0  # sent in the window
    completed: int = 0  # completed in the window
    output_tokens: int = 0  # arrived in the window
    request_throughput: float | None = None
    output_throughput: float | None = None
    total_token_throughput: float | None = None
    ttft_ms: Distribution = Field(default_factory=lambda: Distribution(n=0))
    tpot_ms: Distribution = Field(default_factory=lambda: Distribution(n=0))
    itl_ms: Distribution = Field(default_factory=lambda: Distribution(n=0))
    e2e_ms: Distribution = Field(default_factory=lambda: Distribution(n=0))
    energy_j: float | None = None  # GPU energy in the window (the counter at its edges)
    j_per_output_token: float | None = None
    energy_note: str | None = None  # "not measured: <why>" where a window has no energy_j
    note: str | None = None


class Sustained(Stored):
    """Whether an open-loop point's server sustained its rate over the steady window
    (harness/metrics/sustained.py has the rule): a point that is not sustained misses its SLO,
    whatever its percentiles say."""

    sustained: bool
    reason: str | None = None  # why not, in the words every view shows
    window_s: float | None = None
    offered_rps: float | None = None  # arrivals in the window / its length
    achieved_rps: float | None = None  # completions in the window / its length
    waiting: int | None = None  # arrived and not ended when the window closed
    arrived: int | None = None
    ttft_first_quarter_ms: float | None = None  # median, from the intended send
    ttft_last_quarter_ms: float | None = None
    e2e_first_quarter_ms: float | None = None  # median, from the intended send


class PointResult(Stored):
    schema_version: int = SCHEMA_VERSION
    run: str
    cell: str
    point: str
    kind: PointKind
    engine: str
    variant: str
    max_num_seqs: int | None
    tensor_parallel_size: int
    concurrency: int | None
    rate: float | None
    planned: Planned
    metrics: PointMetrics
    slo: SloVerdict | None
    phases: dict[str, PhaseResult] = Field(default_factory=dict)
    server: ServerView
    client: ClientHealth
    energy: Energy
    cpu_energy: CpuEnergy
    started_at: str
    ended_at: str
    prefix_cache: str
    steady: SteadyWindow | None = None  # absent in runs measured before it existed
    sustained: Sustained | None = None  # open-loop points; absent before it was judged
    repeat: int = 1  # 2+: the point's repeat number (its id ends -rep<N>)
    node: NodeRef | None = None
    workload: str | None = None  # its cell's named workload (matrix.workloads); None: the run's

    @property
    def sort_key(self) -> tuple:
        """Tables list points by variant, parallelism, batch size, kind, load, repeat."""
        def number(value: float | None) -> float:
            return -1.0 if value is None else float(value)

        return (self.variant, self.workload or "", self.tensor_parallel_size,
                number(self.max_num_seqs),
                KIND_ORDER[self.kind], number(self.concurrency), number(self.rate),
                self.repeat)

    @property
    def base_point(self) -> str:
        """The point this one repeats (its own id for a first measurement)."""
        return self.point.removesuffix(f"-rep{self.repeat}") if self.repeat > 1 else self.point

    @property
    def gpu_count(self) -> int | None:
        """GPUs whose energy was measured (None where none was)."""
        return len(self.energy.window.energy_j_per_gpu or {}) or None


# --- cells ---------------------------------------------------------------------------------

class PointRef(Stored):
    """A point of a cell, named without its results (what a failed cell could not measure)."""

    id: str
    kind: PointKind
    concurrency: int | None
    rate: float | None


class CellFailure(Stored):
    schema_version: int = SCHEMA_VERSION
    cell: str
    variant: str
    max_num_seqs: int | None
    tensor_parallel_size: int
    reason: str
    log_tail: str
    points: list[PointRef]  # the points left unmeasured
    failed_at: str
    node: NodeRef | None = None


class CapacityStep(Stored):
    rate_rps: float
    point: str
    meets_slo: bool
    violations: list[str]


class CapacityRepeat(Stored):
    """One more measurement of a rate the search settled on (capacity.repeats)."""

    rate_rps: float
    point: str
    meets_slo: bool
    output_throughput: float
    total_token_throughput: float


class CapacityRecord(Stored):
    """The capacity search of one cell: the highest open-loop rate that met the SLO (and was
    sustained), and the bracket above it."""

    schema_version: int = SCHEMA_VERSION
    slo: Slo
    steps: list[CapacityStep]
    meets_slo: bool
    rate_rps: float | None = None
    point: str | None = None
    output_throughput: float | None = None
    total_token_throughput: float | None = None
    request_throughput: float | None = None
    at_upper_bound: bool = False  # met at the search's cap: the capacity is at least it
    reason: str | None = None  # why there is none
    cap_rps: float | None = None  # the highest rate the search would try
    # the lowest rate above the capacity that missed, and what the server delivered there
    bracket_rate_rps: float | None = None
    bracket_point: str | None = None
    bracket_output_throughput: float | None = None
    bracket_total_token_throughput: float | None = None
    repeats: list[CapacityRepeat] = Field(default_factory=list)  # of the rate and the bracket
