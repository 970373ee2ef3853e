"""Server faults injected by the mock server: each is recorded per request with its class,
counted in the point's error rate, retried when the retry policy says so, and never stops the
point."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from harness.config.load import RetryConfig
from harness.contract.records import requests_frame
from harness.load.generator import run_point
from harness.mock import MockServer, Schedule
from harness.mock.faults import parse_plan

from .loads import closed_point, workload
from .requests_files import metrics_of

VOCAB = list(range(3, 259))
TOKENS = 6
TIMEOUT_S = 1.0

# fault -> (error kind, what the error says)
FAULTS = {
    "http500": ("http", "HTTP 500: {\"error\": {\"message\": \"mock fault: 500"),
    "http429": ("http", "HTTP 429: {\"error\": {\"message\": \"mock fault: 429"),
    "reset:2": ("reset", ""),
    "stall:1": ("timeout", f"timeout after {TIMEOUT_S:g} s"),
    "malformed": ("protocol", "malformed stream"),
    "no-usage": ("protocol", "stream ended without its usage chunk"),
    "bad-usage": ("protocol", f"usage says {TOKENS + 5} tokens but the stream carried {TOKENS}"),
}


def run_against(plan: str, requests: int, concurrency: int = 1,
                retry: RetryConfig | None = None):
    with MockServer(Schedule(0.002), faults=plan) as mock:
        return asyncio.run(run_point(
            mock.handle(), closed_point(concurrency, requests),
            workload(VOCAB, 8, TOKENS), seed=0, salt=0, timeout_s=TIMEOUT_S,
            retry=retry or RetryConfig()))


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_recorded_with_its_class_and_the_point_goes_on(fault, tmp_path):
    kind, says = FAULTS[fault]
    result = run_against(f"ok,{fault}", requests=6)
    records = sorted(result.records, key=lambda r: r.index)
    assert len(records) == 6, "every request is recorded; none stops the point"
    failed = [r for r in records if not r.ok]
    assert len(failed) == 3 and all(r.error_kind == kind for r in failed), \
        [(r.error_kind, r.error) for r in failed]
    assert all(says in r.error for r in failed), failed[0].error
    ok = [r for r in records if r.ok]
    assert len(ok) == 3 and all(r.completion_tokens == TOKENS for r in ok)
    metrics = metrics_of(tmp_path, result.records, result.start, result.end)
    assert metrics.errors == 3 and metrics.error_rate == pytest.approx(0.5)
    assert metrics.errors_by_kind == {kind: 3}
    if kind == "http":
        assert {r.http_status for r in failed} == {int(fault[4:])}
    if fault == "stall:1":
        assert all(TIMEOUT_S <= r.done_time - r.send_time < TIMEOUT_S + 0.5 for r in failed)


def test_every_fault_at_once_under_concurrency_is_counted_exactly():
    plan = "ok," + ",".join(FAULTS)
    result = run_against(plan, requests=8 * 4, concurrency=4)
    frame = requests_frame(result.records, result.start)
    assert len(frame) == 32
    counts = frame["error_kind"].value_counts().to_dict()
    assert counts == {"protocol": 12, "http": 8, "reset": 4, "timeout": 4}, counts
    assert frame["error"].isna().sum() == frame["error_kind"].isna().sum() == 4
    assert frame.loc[frame["error_kind"] == "http", "http_status"].astype(int).isin(
        [500, 429]).all()
    assert pd.isna(frame.loc[frame["error"].isna(), "error_kind"]).all()


def test_retries_follow_the_policy(tmp_path):
    on_errors = run_against("http500,ok", requests=3,
                            retry=RetryConfig(max_tries=2, backoff_s=0.01))
    by_request = {}
    for record in on_errors.records:
        by_request.setdefault(record.index, []).append(record)
    assert all([r.attempt for r in tries] == [1, 2] for tries in by_request.values())
    assert all(tries[-1].ok and tries[0].error_kind == "http" for tries in by_request.values())
    metrics = metrics_of(tmp_path, on_errors.records, on_errors.start, on_errors.end)
    assert metrics.errors == 0 and metrics.retried_requests == 3

    not_on_timeout = run_against("stall:0,ok", requests=2,
                                 retry=RetryConfig(max_tries=3, backoff_s=0.01,
                                                   on_timeout=False))
    kinds = [(r.attempt, r.error_kind) for r in not_on_timeout.records]
    assert sorted(kinds, key=str) == [(1, "timeout"), (1, None)], "a timeout is not retried"


def test_a_fault_plan_is_checked():
    assert [f.name for f in parse_plan("ok, reset:3,stall")] == ["ok", "reset", "stall"]
    assert parse_plan("reset:3")[0].after == 3
    for bad in ("explode", "http500:2", "reset:x"):
        with pytest.raises(ValueError):
            parse_plan(bad)
