"""Every figure of a point read in one pass over its requests file: the committed example run
recomputed from its files, and each figure against a direct computation, request by request,
from the whole table."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.contract.results import PointResult
from harness.metrics.point_metrics import PhaseSpan
from harness.metrics.reading import PointReading, read_point
from harness.metrics.samples import distribution
from harness.store.requests_file import ParquetRequests

RUN = Path(__file__).resolve().parent.parent / "results" / "quickstart-cpu-2vcpu"
POINTS = sorted(RUN.glob("cells/*/points/*.json"))
# a phase's window: throughputs and goodput over it, not exact once rebuilt (phase_spans)
PHASE_WINDOW = {"duration_s", "request_throughput", "output_throughput",
                "total_token_throughput", "goodput_rps"}


def phase_spans(stored: PointResult) -> list[PhaseSpan]:
    """The phases' windows as they ran, rebuilt from the plan: each starts where the one
    before was scheduled to end (the run subtracted the point's start from the clock's times,
    so these agree with its windows to the rounding of that subtraction)."""
    if len(stored.planned.phases) < 2:
        return []
    spans, start = [], 0.0
    for phase in stored.planned.phases:
        spans.append(PhaseSpan(phase.name, start, min(start + phase.duration_s,
                                                      stored.metrics.duration_s)))
        start += phase.duration_s
    return spans


def read_again(path: Path) -> tuple[PointResult, PointReading]:
    stored = PointResult.model_validate_json(path.read_text())
    requests = ParquetRequests(path.with_name(path.stem + ".requests.parquet"))
    return stored, read_point(requests, stored.metrics.duration_s, phase_spans(stored),
                              stored.slo.limits if stored.slo else None)


def assert_same(found, stored, where: str = "", loose: frozenset = frozenset()) -> None:
    """Equal, except: the bootstrap intervals (the run was measured before values were
    sorted before resampling, so its resamples differ), means to the rounding of their sum,
    and `loose` fields to the rounding of their window."""
    if isinstance(stored, dict):
        assert found.keys() == stored.keys(), where
        for key, value in stored.items():
            if not key.endswith("_ci"):
                assert_same(found[key], value, f"{where}.{key}", loose)
    elif isinstance(stored, float) and (where.endswith(".mean") or
                                        where.rsplit(".", 1)[-1] in loose):
        assert found == pytest.approx(stored, rel=1e-9), where
    else:
        assert found == stored, where


@pytest.mark.parametrize("path", POINTS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_the_committed_run_is_recomputed_from_its_requests_files(path):
    stored, reading = read_again(path)
    assert_same(reading.metrics.model_dump(), stored.metrics.model_dump(), "metrics")
    assert_same(reading.slo.model_dump(), stored.slo.model_dump(), "slo")
    assert reading.phases.keys() == stored.phases.keys()
    for name, phase in stored.phases.items():
        assert_same(reading.phases[name].model_dump(), phase.model_dump(), name,
                    frozenset(PHASE_WINDOW))
    steady = stored.steady.model_copy(update={"energy_j": None, "j_per_output_token": None})
    assert_same(reading.steady.model_dump(), steady.model_dump(), "steady")


def gaps(row: dict) -> list[float]:
    return [b - a for a, b in zip(row["chunk_s"], row["chunk_s"][1:], strict=False)]


def per_token(row: dict) -> list[float]:
    return [gap / k for gap, k in zip(gaps(row), row["chunk_tokens"][1:], strict=True)
            for _ in range(k)]


def tpot(row: dict) -> float:
    n = row["completion_tokens"]
    e2e, ttft = row["last_token_s"] - row["send_s"], row["first_token_s"] - row["send_s"]
    return (e2e - ttft) / (n - 1) if n > 1 else math.nan


@pytest.mark.parametrize("path", [p for p in POINTS if p.stem in ("c16", "peak", "trace")],
                         ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_each_figure_equals_a_direct_computation_from_the_whole_table(path):
    stored, reading = read_again(path)
    rows = pq.read_table(path.with_name(path.stem + ".requests.parquet")).to_pylist()
    ok = [row for row in rows if row["error"] is None]
    m = reading.metrics
    assert (m.requests, m.completed) == (len({row["index"] for row in rows}), len(ok))
    assert m.output_tokens == sum(row["completion_tokens"] for row in ok)
    assert m.ttft_ms == distribution([row["first_token_s"] - row["send_s"] for row in ok])
    assert m.tpot_ms == distribution([tpot(row) for row in ok])
    assert m.e2e_ms == distribution([row["last_token_s"] - row["send_s"] for row in ok])
    assert m.itl_ms == distribution([gap for row in ok for gap in gaps(row)])
    assert m.itl_per_token_ms == distribution([g for row in ok for g in per_token(row)])
    assert m.dispatch_lag_ms == distribution([
        row["send_s"] - row["intended_s"] for row in rows
        if row["attempt"] == 1 and row["intended_s"] is not None])

    start = min(row["last_token_s"] for row in ok)
    end = max(row["send_s"] for row in rows)
    sent = [row for row in ok if start <= row["send_s"] <= end]
    steady = reading.steady
    assert (steady.start_s, steady.end_s, steady.requests) == (start, end, len(sent))
    assert steady.completed == sum(start <= row["last_token_s"] <= end for row in ok)
    assert steady.output_tokens == sum(k for row in ok for t, k in zip(
        row["chunk_s"], row["chunk_tokens"], strict=True) if start <= t <= end)
    assert steady.ttft_ms == distribution([row["first_token_s"] - row["send_s"]
                                           for row in sent])
    assert steady.itl_ms == distribution([gap for row in sent for gap in gaps(row)])

    (limit,) = stored.slo.limits.limits()  # the quickstart's: a TTFT limit
    assert limit.metric == "ttft"
    good = [row for row in ok if (row["first_token_s"] - (
        row["send_s"] if row["intended_s"] is None else row["intended_s"])) * 1000 <= limit.ms]
    assert reading.slo.goodput_rps == len(good) / m.duration_s
    for name, phase in reading.phases.items():
        mine = [row for row in ok if row["phase"] == name]
        assert phase.metrics.ttft_ms == distribution([row["first_token_s"] - row["send_s"]
                                                      for row in mine])
