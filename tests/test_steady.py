"""The steady window: from the first completion to the last send, computed by hand on a
closed loop of two senders, and its energy placed by the sampled power."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.contract.records import RequestRecord
from harness.metrics.steady import apportion, steady_window, with_energy

from .requests_files import requests_file


def request(index, send, chunks, prompt=10):
    return RequestRecord(index=index, input_tokens=prompt, max_tokens=len(chunks),
                         send_time=send, done_time=chunks[-1], chunk_times=list(chunks),
                         chunk_tokens=[1] * len(chunks), prompt_tokens=prompt,
                         completion_tokens=len(chunks))


def closed_loop() -> list[RequestRecord]:
    """Two senders, three requests each, every request 4 tokens at 1 s apart after a 1 s
    prefill: sends at 0, 0, then at each completion (5, 5, 10, 10)."""
    found = []
    for index, send in enumerate((0.0, 0.0, 5.0, 5.0, 10.0, 10.0)):
        found.append(request(index, 100.0 + send, [100.0 + send + k for k in (2, 3, 4, 5)]))
    return found


def steady_of(tmp_path, records, **kwargs):
    """The steady window of `records` written as a point that started at 100 s."""
    return steady_window(requests_file(tmp_path, records, start=100.0, **kwargs))


def test_window_runs_from_first_completion_to_last_send(tmp_path):
    steady = steady_of(tmp_path, closed_loop())
    assert (steady.start_s, steady.end_s) == (5.0, 10.0)


@pytest.mark.parametrize("order", ["finished", "reversed"])
@pytest.mark.parametrize("batch_records", [1, 2, 1024])
def test_steady_metrics_by_hand(tmp_path, order, batch_records):
    # however the file is cut into row groups, and even if it does not list the first
    # completion first (the window is found in the same pass that counts what falls in it)
    records = sorted(closed_loop(), key=lambda r: r.done_time, reverse=order == "reversed")
    steady = steady_of(tmp_path, records, batch_records=batch_records)
    assert (steady.start_s, steady.end_s, steady.duration_s) == (5.0, 10.0, 5.0)
    # sent in [5, 10]: the four requests of the second and third waves
    assert steady.requests == 4
    # completed in [105, 110]: the first wave at 105 and the second at 110
    assert steady.completed == 4
    assert steady.request_throughput == pytest.approx(4 / 5)
    # chunks in [105, 110]: first wave's last (2), second wave all 4 each (8), third none
    assert steady.output_tokens == 10
    assert steady.output_throughput == pytest.approx(10 / 5)
    # first tokens in [105, 110]: second wave (at 107): 2 prompts of 10 tokens
    assert steady.total_token_throughput == pytest.approx((20 + 10) / 5)
    assert steady.ttft_ms.p50 == pytest.approx(2000.0)
    assert steady.e2e_ms.p50 == pytest.approx(5000.0)
    assert steady.energy_j is None and steady.note is None


def test_no_steady_window_when_everything_is_sent_before_the_first_completion(tmp_path):
    records = [request(i, 100.0, [101.0, 102.0]) for i in range(4)]
    steady = steady_of(tmp_path, records)
    assert steady.duration_s is None and steady.completed == 0
    assert "no steady window" in steady.note


def test_failed_requests_do_not_start_the_window(tmp_path):
    records = closed_loop()
    failed = RequestRecord(index=9, input_tokens=10, max_tokens=4, send_time=100.0,
                           done_time=100.5, error="HTTP 500")
    failed.chunk_times = [100.4]
    failed.chunk_tokens = [1]
    steady = steady_of(tmp_path, [failed, *records])
    assert (steady.start_s, steady.end_s) == (5.0, 10.0)
    assert steady.requests == 4  # the failed request sent at 0 s is not counted either


def samples(points: list[tuple[float, float]], gpus: int = 2) -> pd.DataFrame:
    rows = [{"t_s": t, "gpu": g, "power_avg_w": w / gpus} for t, w in points
            for g in range(gpus)]
    return pd.DataFrame(rows)


def test_energy_is_the_counter_share_of_the_sampled_power():
    flat = samples([(0.0, 300.0), (10.0, 300.0)])
    assert apportion(1000.0, flat, (0.0, 10.0), (2.0, 7.0)) == pytest.approx(500.0, rel=0.01)
    # twice the power in the second half: it holds two thirds of the energy
    step = samples([(0.0, 100.0), (4.99, 100.0), (5.0, 200.0), (10.0, 200.0)])
    assert apportion(900.0, step, (0.0, 10.0), (5.0, 10.0)) == pytest.approx(600.0, rel=0.02)
    assert apportion(None, flat, (0.0, 10.0), (2.0, 7.0)) is None
    assert apportion(1000.0, samples([]).reindex(columns=["t_s", "gpu", "power_avg_w"]),
                     (0.0, 10.0), (2.0, 7.0)) is None


def test_steady_energy_per_output_token(tmp_path):
    # the monitor's clock: the point started at 1000 s, its energy window ran 1000-1015 s
    flat = samples([(1000.0, 100.0), (1015.0, 100.0)])
    steady = with_energy(steady_of(tmp_path, closed_loop()), 1500.0, flat, (1000.0, 1015.0),
                         point_start=1000.0)
    assert steady.energy_j == pytest.approx(500.0, rel=0.01)
    assert steady.j_per_output_token == pytest.approx(50.0, rel=0.01)
    none = with_energy(steady_of(tmp_path, closed_loop()[:2]), 1500.0, flat, (1000.0, 1015.0),
                       point_start=1000.0)
    assert none.duration_s is None and none.energy_j is None
