"""A point's records written in batches as they finish: the file holds every attempt, the
records let their chunks go, and every metric read back from the file equals the metric of
the same records held whole."""

from __future__ import annotations

import copy
import errno

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.chunks import ParquetChunks
from harness.load.executor import PhaseWindow
from harness.metrics import phase_metrics, point_metrics
from harness.records import RequestRecord
from harness.spool import RequestSpool, spool_path
from harness.steady import steady_window

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
    written = copy.deepcopy(held)
    for record in reversed(written):  # finishing order need not be index order
        spool.add(record)
    return held, written, spool.close()


def test_records_are_written_in_batches_and_let_their_chunks_go(tmp_path):
    held, written, path = spooled(tmp_path)
    assert path.name == ".c4.requests.parquet.spool"
    file = pq.ParquetFile(path)
    assert file.metadata.num_rows == len(held)
    assert file.num_row_groups == -(-len(held) // 7)
    assert sorted(r.row for r in written) == list(range(len(held)))
    assert all(r.released and len(r.chunk_times) == 0 for r in written)
    for kept, whole in zip(written, held, strict=True):
        assert kept.first_token_time == whole.first_token_time
        assert kept.last_token_time == whole.last_token_time
        assert kept.streamed_tokens == sum(whole.chunk_tokens)
    rows = file.read().to_pandas()
    assert rows["index"].tolist() == [r.index for r in reversed(held)]


def test_metrics_read_back_from_the_file_equal_the_metrics_of_the_records_held(tmp_path):
    held, written, path = spooled(tmp_path)
    chunks = ParquetChunks(path)
    end = max(r.done_time for r in held)
    whole = point_metrics(held, START, end)
    assert point_metrics(written, START, end, chunks) == whole
    assert whole.itl_ms.n == sum(len(r.chunk_times) - 1 for r in held if r.ok)
    assert whole.burst_share is not None
    windows = [PhaseWindow("warm", START, START + 1.0), PhaseWindow("hot", START + 1.0, end)]
    assert phase_metrics(written, windows, chunks) == phase_metrics(held, windows)
    assert steady_window(written, START, chunks=chunks) == steady_window(held, START)
    assert steady_window(held, START).output_tokens > 0


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
    assert not any(r.released for r in held)
    with pytest.raises(OSError, match="No space left"):
        spool.close()
    spool.discard()
    assert not spool.path.exists()


def test_a_point_without_requests_writes_an_empty_file(tmp_path):
    spool = RequestSpool(spool_path(tmp_path / "c1.requests.parquet"))
    spool.begin(START)
    assert pq.ParquetFile(spool.close()).metadata.num_rows == 0
