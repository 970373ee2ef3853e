"""Requests files for tests: records written as `harness run` writes a point's requests (the
request spool, harness/store/spool.py) and read back as the metrics read them, with times in
seconds from `start`."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

from harness.contract.records import RequestRecord
from harness.contract.results import PointMetrics
from harness.metrics.point_metrics import point_metrics
from harness.store.requests_file import ParquetRequests, Rows
from harness.store.spool import BATCH_RECORDS, RequestSpool

_numbers = itertools.count()


def requests_file(directory: Path, records: Iterable[RequestRecord], start: float = 0.0,
                  batch_records: int = BATCH_RECORDS) -> ParquetRequests:
    """`records` written in the order given to a new requests file under `directory`."""
    spool = RequestSpool(directory / f"{next(_numbers)}.requests.parquet", batch_records)
    spool.begin(start)
    for record in records:
        spool.add(record)
    return ParquetRequests(spool.close())


def rows_of(directory: Path, records: Iterable[RequestRecord], start: float = 0.0) -> Rows:
    """The rows of `records` as the metrics read them (one batch)."""
    return next(requests_file(directory, records, start).batches()).rows


def metrics_of(directory: Path, records: Iterable[RequestRecord], start: float, end: float
               ) -> PointMetrics:
    """The metrics of a point's records (a LoadResult's, its start and end on their clock)."""
    return point_metrics(requests_file(directory, records, start), end - start)
