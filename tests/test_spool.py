"""A point's records written in batches as they finish: the file holds every attempt, and
every metric read back from the file equals the metric of the same records held whole."""

from __future__ import annotations

import copy
import errno

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.config.slo import Slo
from harness.contract.records import RequestRecord
from harness.load.generator import PhaseWindow
from harness.metrics.point_metrics import phase_metrics, point_metrics
from harness.metrics.slo import verdict
from harness.metrics.steady import steady_window
from harness.store.requests_file import ParquetRequests
from harness.store.spool import RequestSpool, spool_path

START = 100.0


def records(n: int = 40, seed: int = 1) -> list[RequestRecord]:
    """Attempts with uneven chunk counts, multi-token chunks, a failure and a retry."""
    rng = np.random.default_rng(seed)
    found = []
    for index in range(n):
        send = START + 0.05 * index
        count = int(rng.integers(1, 12))
        times = send + 0.02 + np.cumsum(rng.exponential(0.01, count))
        tokens = rng.integers(1, 3, count)
        record = RequestRecord(index, 16, int(tokens.sum()), send_time=send,
                               done_time=float(times[-1]) + 0.001,
                               prompt_tokens=16, completion_tokens=int(tokens.sum()),
                               phase="warm" if index < n // 2 else "hot")
        record.chunk_times.extend(times.tolist())
        record.chunk_tokens.extend(tokens.tolist())
        found.append(record)
    found[3].fail("reset", "ConnectionResetError")
    retry = copy.deepcopy(found[3])
    retry.error = retry.error_kind = None
    retry.attempt = 2
    return [*found, retry]


def spooled(tmp_path, batch_records=7):
    held = records()
    spool = RequestSpool(spool_path(tmp_path / "c4.requests.parquet"), batch_records)
    spool.begin(START)
    for record in reversed(copy.deepcopy(held)):  # finishing order need not be index order
        spool.add(record)
    return held, spool.close()


def test_records_are_written_in_batches_in_the_order_they_finish(tmp_path):
    held, path = spooled(tmp_path)
    assert path.name == ".c4.requests.parquet.spool"
    file = pq.ParquetFile(path)
    assert file.metadata.num_rows == len(held)
    assert file.num_row_groups == -(-len(held) // 7)
    rows = file.read().to_pandas()
    assert rows["index"].tolist() == [r.index for r in reversed(held)]
    assert rows["send_s"].tolist() == pytest.approx([r.send_time - START
                                                     for r in reversed(held)])


def test_metrics_read_back_from_the_file_equal_the_metrics_of_the_records_held(tmp_path):
    held, path = spooled(tmp_path)
    stored = ParquetRequests(path)
    end = max(r.done_time for r in held)
    whole = point_metrics(held, START, end)
    assert point_metrics(stored, START, end) == whole
    assert whole.itl_ms.n == sum(len(r.chunk_times) - 1 for r in held if r.ok)
    assert (whole.requests, whole.attempts, whole.retried_requests) == (40, 41, 1)
    assert whole.burst_share is not None
    windows = [PhaseWindow("warm", START, START + 1.0), PhaseWindow("hot", START + 1.0, end)]
    assert phase_metrics(stored, windows, START) == phase_metrics(held, windows, START)
    assert steady_window(stored, START) == steady_window(held, START)
    assert steady_window(held, START).output_tokens > 0
    slo = Slo(ttft_p95_ms=25, itl_p50_ms=12)
    assert verdict(stored, whole, slo) == verdict(held, whole, slo, start=START)
    assert 0 < verdict(stored, whole, slo).goodput_rps < whole.request_throughput


def test_a_failed_write_keeps_every_chunk_and_is_raised_when_the_point_closes(tmp_path,
                                                                              monkeypatch):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    spool = RequestSpool(spool_path(tmp_path / "c1.requests.parquet"), batch_records=2)
    spool.begin(START)
    held = records(5)
    for record in held:
        spool.add(record)
    assert len(spool._batch) == len(held)  # kept, every chunk with it
    with pytest.raises(OSError, match="No space left"):
        spool.close()
    spool.discard()
    assert not spool.path.exists()


def test_a_point_without_requests_writes_an_empty_file(tmp_path):
    spool = RequestSpool(spool_path(tmp_path / "c1.requests.parquet"))
    spool.begin(START)
    assert pq.ParquetFile(spool.close()).metadata.num_rows == 0
