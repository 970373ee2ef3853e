"""A point's request records, written to its requests file as they finish.

Each finished attempt joins a batch; a full batch (BATCH_RECORDS records or BATCH_CHUNKS
chunks) is written as one row group of the parquet file and let go. So the client holds its
requests in flight and one batch, however long the point runs (`harness run` keeps no record
beyond: harness.load.generator.run_point's keep_records); the metrics read the file back, in
one pass for every figure of the point (harness/store/requests_file.py ParquetRequests,
harness/metrics/reading.py). Rows are in the order the attempts finished.

The file is written under a hidden name beside the point's (`.c4.requests.parquet.spool`),
moved into place when the point is saved (RunStore.save_point) and removed if it is not.
A write that fails (disk full) is kept and raised when the point closes: the point then fails
as any failed save does, earlier points untouched.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from harness.contract.records import RequestRecord, requests_table

BATCH_RECORDS = 1024  # as the store's ROW_GROUP
BATCH_CHUNKS = 262_144  # about 3 MB of chunk arrays


def spool_path(requests_file: Path) -> Path:
    return requests_file.with_name(f".{requests_file.name}.spool")


class RequestSpool:
    def __init__(self, path: Path, batch_records: int = BATCH_RECORDS,
                 batch_chunks: int = BATCH_CHUNKS):
        self.path = path
        self.batch_records, self.batch_chunks = batch_records, batch_chunks
        self.start: float | None = None
        self.rows = 0
        self.error: OSError | None = None
        self._batch: list[RequestRecord] = []
        self._chunks = 0
        self._writer: pq.ParquetWriter | None = None

    def begin(self, start: float) -> float:
        """The point's start (times in the file count from it); returns it, so that it can
        wrap the executor's `start`."""
        self.start = start
        return start

    def add(self, record: RequestRecord) -> None:
        self.rows += 1
        self._batch.append(record)
        self._chunks += len(record.chunk_times)
        if len(self._batch) >= self.batch_records or self._chunks >= self.batch_chunks:
            self.flush()

    def flush(self) -> None:
        if not self._batch or self.error is not None:
            return  # after a failed write, the batch is kept: nothing is lost
        if self.start is None:
            raise RuntimeError("RequestSpool.begin was not called")
        table = requests_table(self._batch, self.start)
        try:
            if self._writer is None:  # (its folder is made before the point: a folder
                # removed meanwhile is not made again)
                self._writer = pq.ParquetWriter(self.path, table.schema)
            self._writer.write_table(table, row_group_size=len(self._batch))
        except OSError as err:
            self.error = err
            return
        self._batch.clear()
        self._chunks = 0

    def close(self) -> Path:
        """Write what is left and close the file; raises the first failed write."""
        if self.start is None:
            self.start = 0.0  # no request was sent: an empty file, times from nowhere
        if self._writer is None and self.error is None:
            try:
                self._writer = pq.ParquetWriter(self.path, requests_table([], 0.0).schema)
            except OSError as err:
                self.error = err
        self.flush()
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError as err:
                self.error = self.error or err
        if self.error is not None:
            raise self.error
        return self.path

    def discard(self) -> None:
        """The point will not be saved: close and remove the file."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError:
                pass
        self.path.unlink(missing_ok=True)
