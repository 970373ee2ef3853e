"""A point's requests as the metrics read them: batch by batch, each batch its rows' scalar
columns (`Rows`: times, counts, status) and, when asked, their chunks (`Chunks`: arrival
times and the tokens each carried).

A long point keeps none of its requests in memory: harness/store/spool.py writes each finished
attempt to the point's requests file, and every metric reads that file back one row group at
a time (`ParquetRequests`). Records still in memory are read the same way through the table
they make (`TableRequests`): one code path whichever holds them. Times are seconds from the
start of the point's window, NaN where a row has none (a count that was not reported is NaN
too).

A selection is the rows a metric is taken over: a source and a test of each batch's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.contract.records import RequestRecord, requests_table

SCALARS = ["index", "attempt", "phase", "input_tokens", "max_tokens", "intended_s", "send_s",
           "first_token_s", "last_token_s", "done_s", "prompt_tokens", "completion_tokens",
           "error", "error_kind"]
CHUNKS = ["chunk_s", "chunk_tokens"]


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

    def take(self, mask: np.ndarray) -> Chunks:
        flat = np.repeat(mask, self.lengths)
        return Chunks(self.times[flat], self.tokens[flat], self.lengths[mask])


@dataclass
class Rows:
    """The scalar columns of some request attempts, one array each (names as RequestRecord's;
    times in seconds from the point's start)."""

    index: np.ndarray
    attempt: np.ndarray
    final: np.ndarray  # the last attempt of its request
    ok: np.ndarray
    phase: np.ndarray  # object: str or None
    error_kind: np.ndarray  # object: str or None
    input_tokens: np.ndarray
    max_tokens: np.ndarray
    intended_time: np.ndarray  # NaN: closed loop
    send_time: np.ndarray
    first_token_time: np.ndarray  # NaN: no token came
    last_token_time: np.ndarray
    done_time: np.ndarray
    prompt_tokens: np.ndarray  # float: NaN where the server reported no usage
    completion_tokens: np.ndarray
    streamed_tokens: np.ndarray  # tokens the chunks carried

    def __len__(self) -> int:
        return self.index.size

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


@dataclass
class Batch:
    rows: Rows
    chunks: Chunks | None  # of the same rows, when asked for

    def take(self, mask: np.ndarray) -> Batch:
        return Batch(self.rows.take(mask), self.chunks.take(mask) if self.chunks else None)


class StoredRequests(Protocol):
    def batches(self, chunks: bool = False) -> Iterator[Batch]:
        """Every row, a batch at a time (with their chunks if `chunks`)."""
        ...


class _Source:
    """A source whose `tables(columns)` reads those columns a batch at a time; it finds which
    attempt of each request is its last."""

    def __init__(self, tables: Callable[[list[str]], Iterator[pa.Table]]):
        self.tables = tables
        self._last: dict[int, int] | None = None

    def batches(self, chunks: bool = False) -> Iterator[Batch]:
        last = self.last_attempts()
        for table in self.tables(SCALARS + (CHUNKS if chunks else ["chunk_tokens"])):
            yield _batch(table, last, chunks)

    def last_attempts(self) -> dict[int, int]:
        """The last attempt of every request that was retried (the others have one): a pass
        over two columns, holding an entry per retried request only."""
        if self._last is None:
            self._last = {}
            for table in self.tables(["index", "attempt"]):
                index, attempt = (table.column(name).to_numpy() for name in ("index", "attempt"))
                for i, a in zip(index[attempt > 1].tolist(), attempt[attempt > 1].tolist(),
                                strict=True):
                    self._last[i] = max(a, self._last.get(i, 0))
        return self._last


class TableRequests(_Source):
    """The requests of an in-memory requests table (harness.contract.records.requests_table)."""

    def __init__(self, table: pa.Table):
        super().__init__(lambda columns: iter([table.select(columns)]))


class ParquetRequests(_Source):
    """The requests of a point's requests file, one row group at a time."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__(self._row_groups)

    def _row_groups(self, columns: list[str]) -> Iterator[pa.Table]:
        source = pq.ParquetFile(self.path)
        for group in range(source.num_row_groups):
            yield source.read_row_group(group, columns=columns)


def in_memory(records: Sequence[RequestRecord], start: float = 0.0) -> TableRequests:
    """Records that still hold their chunks, as a source (times from `start`)."""
    return TableRequests(requests_table(list(records), start))


def _numbers(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy().astype(float)  # (nulls become NaN)


def _objects(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(object)


def _chunks(table: pa.Table) -> Chunks:
    times = table.column("chunk_s").combine_chunks()
    tokens = table.column("chunk_tokens").combine_chunks()
    return Chunks(times.flatten().to_numpy(zero_copy_only=False).astype(float),
                  tokens.flatten().to_numpy(zero_copy_only=False).astype(np.int64),
                  times.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64))


def _streamed(table: pa.Table) -> np.ndarray:
    tokens = table.column("chunk_tokens").combine_chunks()
    lengths = tokens.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    flat = tokens.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    per_row = np.zeros(lengths.size, dtype=np.int64)
    if flat.size:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        has = lengths > 0
        per_row[has] = np.add.reduceat(flat, starts[has])
    return per_row


def _batch(table: pa.Table, last: dict[int, int], chunks: bool) -> Batch:
    index = table.column("index").to_numpy().astype(np.int64)
    attempt = table.column("attempt").to_numpy().astype(np.int64)
    final = attempt == np.fromiter((last.get(i, 1) for i in index.tolist()), dtype=np.int64,
                                   count=index.size) if last else attempt == 1
    rows = Rows(
        index=index, attempt=attempt,
        final=final, ok=table.column("error").is_null().to_numpy(zero_copy_only=False),
        phase=_objects(table, "phase"), error_kind=_objects(table, "error_kind"),
        input_tokens=table.column("input_tokens").to_numpy().astype(np.int64),
        max_tokens=table.column("max_tokens").to_numpy().astype(np.int64),
        intended_time=_numbers(table, "intended_s"), send_time=_numbers(table, "send_s"),
        first_token_time=_numbers(table, "first_token_s"),
        last_token_time=_numbers(table, "last_token_s"), done_time=_numbers(table, "done_s"),
        prompt_tokens=_numbers(table, "prompt_tokens"),
        completion_tokens=_numbers(table, "completion_tokens"),
        streamed_tokens=_streamed(table))
    return Batch(rows, _chunks(table) if chunks else None)


Where = Callable[[Rows], np.ndarray]


def everything(rows: Rows) -> np.ndarray:
    return np.ones(len(rows), dtype=bool)


@dataclass
class Selection:
    """Some rows of a source: those `where` is true of."""

    source: StoredRequests
    where: Where = everything

    def batches(self, chunks: bool = True) -> Iterator[Batch]:
        for batch in self.source.batches(chunks):
            mask = self.where(batch.rows)
            if mask.any():
                yield batch.take(mask)

    def rows(self) -> Iterator[Rows]:
        return (batch.rows for batch in self.batches(chunks=False))

    def read(self) -> Iterator[Chunks]:
        """The chunks of the selected rows, a batch at a time."""
        return (batch.chunks for batch in self.batches(chunks=True))

    def narrow(self, where: Where) -> Selection:
        """The rows of this selection that `where` is also true of."""
        outer = self.where
        return Selection(self.source, lambda rows: outer(rows) & where(rows))


def select(records: Sequence[RequestRecord], start: float = 0.0) -> Selection:
    """Every one of `records` (which must still hold their chunks), times from `start`."""
    return Selection(in_memory(records, start))


def rows_of(records: Sequence[RequestRecord], start: float = 0.0) -> Rows:
    """The rows of `records` (which must still hold their chunks), times from `start`."""
    return next(in_memory(records, start).batches()).rows
