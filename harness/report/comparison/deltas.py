"""`harness compare`: runs side by side. Points are aligned by (model, variant, batch size,
parallelism, load point; a capacity search's points by their step in the search); each
metric's delta against the first run is judged against the noise: where both runs measured
the point several times (`--repeat`), against the run-to-run noise of those repeats (beyond
it when the 95% t-intervals of the two means do not overlap); otherwise against one run's
sampling noise only (the two points' 95% bootstrap intervals of a percentile). Every setting
that differs between the runs is listed, so unlike is never compared with unlike
unknowingly."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import pandas as pd

from harness.contract.results import Distribution, PointResult
from harness.store.run_store import StoredRun

# (label, distribution field or None for a plain number, statistic or PointMetrics field)
METRICS = [("output tok/s", None, "output_throughput"),
           ("requests/s", None, "request_throughput"),
           ("TTFT p50 ms", "ttft_ms", "p50"), ("TTFT p99 ms", "ttft_ms", "p99"),
           ("TPOT p50 ms", "tpot_ms", "p50"), ("TPOT p99 ms", "tpot_ms", "p99"),
           ("E2E p50 ms", "e2e_ms", "p50"), ("E2E p99 ms", "e2e_ms", "p99")]
KEY = ["model", "variant", "max_num_seqs", "tensor_parallel_size", "point"]
ESSENTIAL = ("model", "workload")  # runs differing in both have nothing in common
SPEED_TOLERANCE = 1.15  # host calibrations this close are the same machine's speed
# Student's t, 97.5th percentile, by degrees of freedom (repeats - 1): the 95% interval of a mean
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262}
REPEATS, SAMPLING = "repeats", "sampling noise only"


class NothingInCommon(ValueError):
    """Runs that share no point: the message names what differs."""


@dataclass
class Comparison:
    runs: list[str]
    deltas: pd.DataFrame                        # one row per (point, metric, run after the first)
    settings: list[tuple[str, list[str]]]       # setting -> its value in each run
    incidental: list[tuple[str, list[str]]]     # times, commits, hosts: expected to differ
    unmatched: list[str] = field(default_factory=list)


def distinct_names(runs: list[StoredRun]) -> list[StoredRun]:
    """Runs named apart: where two share a name, each is called by its directory."""
    names = [run.name for run in runs]
    if len(set(names)) == len(names):
        return runs
    return [dataclasses.replace(run, manifest=run.manifest.model_copy(
        update={"run": run.root.name})) for run in runs]


def _flat(prefix: str, value: object) -> dict[str, str]:
    if isinstance(value, dict) and value:
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat |= _flat(f"{prefix}.{key}", item)
        return flat
    return {prefix: "-" if value is None else str(value)}


def settings_of(run: StoredRun) -> tuple[dict[str, str], dict[str, str]]:
    """What was measured and on what (settings), and what differs between any two runs
    (incidental: times, the harness commit, the host's name)."""
    m, config = run.manifest, run.manifest.config
    engine = f"{m.engine_package.package} {m.engine_package.version}" if m.engine_package \
        else "-"
    settings = {"model": config.model, "engine package": engine, "GPU": m.hardware,
                "driver": m.host.gpus.driver or "-", "config hash": m.config_hash,
                "harness version": m.harness_version,
                "machine": f"{m.host.cpu}, {m.host.cpu_count} CPUs, {m.host.memory_gib} GiB"}
    for key, value in config.model_dump().items():  # every field of the config, dotted
        settings |= _flat(key, value)
    incidental = {"started at": m.started_at, "ended at": m.ended_at or "-",
                  "harness commit": m.harness_git_sha or "-", "host": m.host.hostname,
                  "status": m.status}
    return settings, incidental


def _differing(values: list[dict[str, str]]) -> list[tuple[str, list[str]]]:
    keys = list(dict.fromkeys(k for v in values for k in v))
    rows = [(k, [v.get(k, "-") for v in values]) for k in keys]
    return [(k, vals) for k, vals in rows if len(set(vals)) > 1]


def host_speed(runs: list[StoredRun]) -> list[tuple[str, list[str]]]:
    """'host speed differs: 2.3x' where the machines' calibrations (run.json host.speed) differ
    by more than SPEED_TOLERANCE: the same CPU model can be a different machine's speed."""
    speeds = [run.manifest.host.speed for run in runs]
    if any(speed is None for speed in speeds):
        return []
    ratio = max(speed.ratio(speeds[0]) for speed in speeds[1:])
    if ratio <= SPEED_TOLERANCE:
        return []
    return [(f"host speed differs: {ratio:.1f}x",
             [f"single core {s.single_core_mops:g} Mops/s, memory {s.memory_gbps:g} GB/s"
              for s in speeds])]


def search_steps(run: StoredRun) -> dict[tuple[str, str], str]:
    """(cell, point) -> 'search step N' for every capacity-search point: a search's rates
    follow from what the server held, so two runs' searches are matched step by step (in the
    order the search tried them), never by the rate in a point's name."""
    found: dict[tuple[str, str], str] = {}
    searched = sorted((p for p in run.points if p.kind == "search" and p.repeat == 1),
                      key=lambda p: p.started_at)
    for cell in dict.fromkeys(p.cell for p in searched):
        record = run.capacities.get(cell)
        tried = [step.point for step in record.steps] if record is not None else []
        tried += [p.point for p in searched if p.cell == cell and p.point not in tried]
        found |= {(cell, name): f"search step {k}" for k, name in enumerate(tried, 1)}
    return found


def _key(run: StoredRun, result: PointResult, steps: dict[tuple[str, str], str]) -> tuple:
    point = steps.get((result.cell, result.base_point), result.base_point)
    variant = result.variant if result.workload is None else f"{result.variant} {result.workload}"
    return (run.manifest.config.model, variant, result.max_num_seqs,
            result.tensor_parallel_size, point)


def mean_interval(values: list[float]) -> list[float] | None:
    """The 95% t-interval of the mean of repeated measurements (None for fewer than two)."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = T_975.get(len(values) - 1, 2.262) * spread / math.sqrt(len(values))
    return [mean - half, mean + half]


def _value(result: PointResult, dist_name: str | None, stat: str):
    if dist_name is None:
        return getattr(result.metrics, stat), None
    dist: Distribution = getattr(result.metrics, dist_name)
    return dist.stat(stat), getattr(dist, f"{stat}_ci")


def noise(base_ci: list[float] | None, other_ci: list[float] | None) -> str:
    """'within noise' when the intervals overlap, 'beyond noise' when they do not."""
    if not base_ci or not other_ci:
        return "no CI stored"
    overlap = base_ci[0] <= other_ci[1] and other_ci[0] <= base_ci[1]
    return "within noise" if overlap else "beyond noise"


def _measured(results: list[PointResult], dist_name: str | None, stat: str
              ) -> tuple[float | None, list[float] | None]:
    """A metric of a point: with repeats, their mean and its t-interval; else the one value
    and its sampling interval."""
    if len(results) == 1:
        return _value(results[0], dist_name, stat)
    values = [v for v in (_value(r, dist_name, stat)[0] for r in results) if v is not None]
    if not values:
        return None, None
    return sum(values) / len(values), mean_interval(values)


def _rows(key: tuple, base: list[PointResult], other: list[PointResult], other_name: str
          ) -> list[dict]:
    basis = REPEATS if len(base) > 1 and len(other) > 1 else SAMPLING
    if basis == SAMPLING:
        base, other = base[:1], other[:1]  # the first measurement of each
    rows = []
    for label, dist_name, stat in METRICS:
        (a, a_ci), (b, b_ci) = _measured(base, dist_name, stat), _measured(other, dist_name, stat)
        delta = None if a is None or b is None else b - a
        rows.append({**dict(zip(KEY, key, strict=True)), "metric": label, "run": other_name,
                     "base_point": base[0].base_point, "run_point": other[0].base_point,
                     "base": a, "value": b, "delta": delta,
                     "delta_pct": None if delta is None or not a else 100 * delta / a,
                     "base_ci": a_ci, "value_ci": b_ci, "noise": noise(a_ci, b_ci),
                     "noise_from": basis if basis == SAMPLING
                     else f"{REPEATS} ({len(base)} and {len(other)})"})
    return rows


def _grouped(run: StoredRun) -> dict[tuple, list[PointResult]]:
    """The run's points by key, each with its repeats (first measurement first)."""
    found: dict[tuple, list[PointResult]] = {}
    steps = search_steps(run)
    for result in sorted(run.points, key=lambda r: r.repeat):
        found.setdefault(_key(run, result, steps), []).append(result)
    return found


def compare(runs: list[StoredRun]) -> Comparison:
    """Every shared point's metrics against the first run's; NothingInCommon where none is."""
    runs = distinct_names(runs)
    names = [run.name for run in runs]
    pairs = [settings_of(run) for run in runs]
    settings = _differing([s for s, _ in pairs]) + host_speed(runs)
    incidental = _differing([i for _, i in pairs])
    indexed = [_grouped(run) for run in runs]
    shared = sorted((k for k in indexed[0] if all(k in other for other in indexed[1:])),
                    key=lambda k: indexed[0][k][0].sort_key)
    if not shared:
        differs = [f"{name} ({' vs '.join(vals)})" for name, vals in settings
                   if name.split(".")[0] in ESSENTIAL][:4]
        what = "; ".join(differs) or "no point (model, variant, batch size, load) is in all"
        raise NothingInCommon(f"{', '.join(names)} have no point in common: {what}")
    rows = [row for k in shared for other, name in zip(indexed[1:], names[1:], strict=True)
            for row in _rows(k, indexed[0][k], other[k], name)]
    unmatched = [f"{'/'.join(str(p) for p in k[1:])} only in "
                 f"{', '.join(n for n, ix in zip(names, indexed, strict=True) if k in ix)}"
                 for k in dict.fromkeys(k for ix in indexed for k in ix) if k not in shared]
    return Comparison(names, pd.DataFrame(rows), settings, incidental, unmatched)
