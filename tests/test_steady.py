"""The steady window: from the first completion to the last send, computed by hand on a
closed loop of two senders, and its energy from the GPUs' counters at its edges."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.contract.records import RequestRecord
from harness.contract.results import SteadyWindow
from harness.metrics.steady import RULE, counter_energy_j, steady_window, with_energy

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


def counter_samples(watts: dict[str, float], start: float, end: float, hz: float = 10.0,
                    skew_s: float = 0.0) -> pd.DataFrame:
    """Counter readings (mJ) of GPUs drawing constant `watts` each, sampled at `hz` over
    [start, end]; GPU k is read `k * skew_s` after the tick (a sample reads GPUs in turn)."""
    rows = []
    for k, (uuid, power) in enumerate(watts.items()):
        for tick in range(int((end - start) * hz) + 1):
            t = start + tick / hz + k * skew_s
            rows.append({"t_s": t, "gpu": k, "uuid": uuid,
                         "energy_mj": round(1e9 + power * (t - start) * 1000)})
    return pd.DataFrame(rows)


def test_steady_energy_is_the_counter_between_its_edges_summed_over_gpus(tmp_path):
    # the monitor's clock: the point started at 1000 s; the steady window is 1005-1010 s
    steady = steady_of(tmp_path, closed_loop())
    two = counter_samples({"GPU-a": 300.0, "GPU-b": 100.0}, 1000.0, 1015.0, skew_s=0.013)
    found = with_energy(steady, two, point_start=1000.0)
    assert found.energy_j == pytest.approx(5.0 * (300.0 + 100.0), rel=1e-6)
    assert found.j_per_output_token == pytest.approx(found.energy_j / steady.output_tokens)
    assert found.energy_note is None
    # rows stamped per GPU never share a time: every GPU still counts
    assert not set(two[two.uuid == "GPU-a"].t_s) & set(two[two.uuid == "GPU-b"].t_s)


def test_steady_energy_follows_a_load_step_the_averaged_power_would_smear():
    # 100 W, then 500 W from 5 s: [4, 6] holds 1 s of each, 600 J
    rows = [{"t_s": t / 10, "uuid": "GPU-a",
             "energy_mj": round(1000 * (100 * min(t / 10, 5) + 500 * max(t / 10 - 5, 0)))}
            for t in range(101)]
    assert counter_energy_j(pd.DataFrame(rows), (4.0, 6.0)) == (pytest.approx(600.0), None)


def test_steady_energy_not_measured_says_why(tmp_path):
    steady = steady_of(tmp_path, closed_loop())
    samples = counter_samples({"GPU-a": 300.0}, 1000.0, 1015.0)
    cases = {
        "no GPU samples": None,
        "the GPU samples hold no energy counter (energy_mj)": samples.drop(columns="energy_mj"),
        "the energy counter samples of GPU-a do not cover the steady window":
            samples[samples.t_s < 1008.0],
        "NVML unavailable: Driver Not Loaded": samples,
    }
    for why, frame in cases.items():
        unmeasured = why if why.startswith("NVML") else None
        found = with_energy(steady, frame, point_start=1000.0, unmeasured=unmeasured)
        assert found.energy_j is None and found.j_per_output_token is None
        assert found.energy_note == f"not measured: {why}"
    none = with_energy(steady_of(tmp_path, closed_loop()[:2]), samples, point_start=1000.0)
    assert none.duration_s is None and none.energy_j is None and none.energy_note is None


def test_stored_steady_windows_without_the_energy_note_still_read():
    old = {"rule": RULE, "start_s": 5.0, "end_s": 10.0, "duration_s": 5.0, "energy_j": 12.0}
    assert SteadyWindow.model_validate(old).energy_note is None
