"""A point's records written in batches as they finish: the file holds every attempt, and
every figure read back from it does not depend on how the file is cut into row groups, nor on
whether the figures are read together or one by one."""

from __future__ import annotations

import copy
import errno

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.config.slo import Slo
from harness.contract.records import RequestRecord
from harness.metrics.point_metrics import PhaseSpan, phase_metrics, point_metrics
from harness.metrics.reading import read_point
from harness.metrics.slo import goodput
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


def spooled(tmp_path, batch_records=7, name="c4"):
    held = records()
    spool = RequestSpool(spool_path(tmp_path / f"{name}.requests.parquet"), batch_records)
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


def test_every_figure_is_the_same_whatever_the_row_groups_and_read_alone_or_together(tmp_path):
    held, path = spooled(tmp_path)
    _, whole_path = spooled(tmp_path, batch_records=len(held), name="whole")
    stored, whole = ParquetRequests(path), ParquetRequests(whole_path)
    end = max(r.done_time for r in held) - START
    spans = [PhaseSpan("warm", 0.0, 1.0), PhaseSpan("hot", 1.0, end)]
    slo = Slo(ttft_p95_ms=25, itl_p50_ms=12)
    together = read_point(stored, end, spans, slo)
    assert together == read_point(whole, end, spans, slo)
    assert together.metrics == point_metrics(stored, end)
    assert {name: phase.metrics for name, phase in together.phases.items()} == phase_metrics(
        stored, spans)
    assert together.steady == steady_window(stored)
    assert together.slo.goodput_rps == goodput(stored, end, slo)
    m = together.metrics
    assert m.itl_ms.n == sum(len(r.chunk_times) - 1 for r in held if r.ok)
    assert (m.requests, m.attempts, m.retried_requests) == (40, 41, 1)
    assert m.burst_share is not None and together.steady.output_tokens > 0
    assert 0 < together.slo.goodput_rps < m.request_throughput
    assert together.phases["hot"].slo.goodput_rps > 0


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
