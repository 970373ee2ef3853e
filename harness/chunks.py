"""The per-chunk side of a point's requests, read batch by batch: chunk arrival times (seconds
from the start of the point's window) and the tokens each chunk carried.

A long point does not keep its chunks in memory: harness/spool.py writes each finished request
to the point's requests file and releases its arrays, and the per-chunk metrics (ITL, burst
delivery, the steady window's tokens) read them back from that file, one row group at a time
(`ParquetChunks`). Records that still hold their chunks are read the same way through the
table they make (`TableChunks`): one code path whichever holds them.

A selection is the set of rows (record.row) a metric is taken over.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.records import RequestRecord, requests_table

COLUMNS = ["chunk_s", "chunk_tokens"]


@dataclass
class Chunks:
    """The chunks of some rows, flattened: row i's chunks are times[starts[i]:starts[i+1]]."""

    times: np.ndarray  # float64, seconds from the point's start
    tokens: np.ndarray  # int64
    lengths: np.ndarray  # chunks per row

    def gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """(gap between consecutive chunks of a row, tokens of the later chunk), rows apart."""
        if self.times.size < 2:
            return np.empty(0), np.empty(0, dtype=np.int64)
        keep = np.ones(self.times.size - 1, dtype=bool)
        ends = np.cumsum(self.lengths)[:-1] - 1  # each row's last chunk but the last row's
        keep[ends[ends >= 0]] = False
        return np.diff(self.times)[keep], self.tokens[1:][keep]


class ChunkSource(Protocol):
    def read(self, rows: np.ndarray) -> Iterator[Chunks]:
        """The chunks of `rows` (sorted row numbers), a batch at a time."""
        ...


class TableChunks:
    """Chunks of an in-memory requests table (rows are its row positions)."""

    def __init__(self, table: pa.Table):
        self.table = table.select(COLUMNS)

    def read(self, rows: np.ndarray) -> Iterator[Chunks]:
        if rows.size:
            yield _chunks(self.table.take(pa.array(rows)))


class ParquetChunks:
    """Chunks of a point's requests file, read one row group at a time."""

    def __init__(self, path: Path):
        self.path = path

    def read(self, rows: np.ndarray) -> Iterator[Chunks]:
        source = pq.ParquetFile(self.path)
        first = 0
        for group in range(source.num_row_groups):
            size = source.metadata.row_group(group).num_rows
            mine = rows[(rows >= first) & (rows < first + size)] - first
            if mine.size:
                table = source.read_row_group(group, columns=COLUMNS)
                yield _chunks(table.take(pa.array(mine)))
            first += size


def _chunks(table: pa.Table) -> Chunks:
    times = table.column("chunk_s").combine_chunks()
    tokens = table.column("chunk_tokens").combine_chunks()
    return Chunks(times.flatten().to_numpy(zero_copy_only=False).astype(float),
                  tokens.flatten().to_numpy(zero_copy_only=False).astype(np.int64),
                  times.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64))


@dataclass
class Selection:
    """Some records and where their chunks are."""

    source: ChunkSource
    rows: np.ndarray

    def read(self) -> Iterator[Chunks]:
        return self.source.read(self.rows)


def select(records: Sequence[RequestRecord], source: ChunkSource | None,
           start: float = 0.0) -> Selection:
    """Where the chunks of `records` are: in `source` at their rows, or, without a source,
    in the records themselves (which must still hold them), times from `start`."""
    if source is None:
        return Selection(TableChunks(requests_table(list(records), start)),
                         np.arange(len(records)))
    rows = [r.row for r in records]
    if None in rows:
        raise ValueError("a record without a row in the chunk source")
    return Selection(source, np.sort(np.asarray(rows, dtype=np.int64)))
