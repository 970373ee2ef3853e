"""A point's requests as the metrics read them: batch by batch, each batch its rows' scalar
columns (`Rows`: times, counts, status) and, when asked, their chunks (`Chunks`: arrival
times and the tokens each carried).

A long point keeps none of its requests in memory: harness/store/spool.py writes each finished
attempt to the point's requests file, and the metrics read that file back one row group at a
time (`ParquetRequests`; harness/metrics/reading.py reads it once for every figure of the
point). Times are seconds from the start of the point's window, as the file stores them, NaN
where a row has none (a count that was not reported is NaN too). `TableRequests` reads an
in-memory requests table (harness.contract.records.requests_table) the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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

    @cached_property
    def gaps_per_row(self) -> np.ndarray:
        return np.maximum(self.lengths - 1, 0)

    @cached_property
    def _later_chunk(self) -> np.ndarray:
        """Which chunks follow another chunk of their own row (each row's all but the first)."""
        row = np.repeat(np.arange(self.lengths.size), self.lengths)
        return row[1:] == row[:-1]

    @cached_property
    def gaps(self) -> np.ndarray:
        """The gap between consecutive chunks of each row, rows apart, in row order."""
        return np.diff(self.times)[self._later_chunk]

    @cached_property
    def gap_tokens(self) -> np.ndarray:
        """The tokens of the later chunk of each gap."""
        return self.tokens[1:][self._later_chunk]

    def of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Which chunks belong to the rows that the mask `rows` keeps."""
        return np.repeat(rows, self.lengths)

    def gaps_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Which gaps belong to the rows that the mask `rows` keeps."""
        return np.repeat(rows, self.gaps_per_row)

    def take(self, rows: np.ndarray) -> Chunks:
        """The chunks of the rows that the mask `rows` keeps."""
        flat = self.of_rows(rows)
        return Chunks(self.times[flat], self.tokens[flat], self.lengths[rows])


@dataclass
class Rows:
    """The scalar columns of some request attempts, one array each (names as RequestRecord's;
    times in seconds from the point's start)."""

    index: np.ndarray
    attempt: np.ndarray
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
    """A source whose `tables(columns)` reads those columns a batch at a time."""

    def __init__(self, tables: Callable[[list[str]], Iterator[pa.Table]]):
        self.tables = tables

    def batches(self, chunks: bool = False) -> Iterator[Batch]:
        for table in self.tables(SCALARS + (CHUNKS if chunks else ["chunk_tokens"])):
            yield _batch(table, chunks)


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


def _numbers(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy().astype(float)  # (nulls become NaN)


def _objects(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(object)


def _flat(table: pa.Table, name: str, kind: type) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (its values flattened, the length of each row's list)."""
    column = table.column(name).combine_chunks()
    return (column.flatten().to_numpy(zero_copy_only=False).astype(kind),
            column.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64))


def _per_row_sum(flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    per_row = np.zeros(lengths.size, dtype=np.int64)
    if flat.size:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        has = lengths > 0
        per_row[has] = np.add.reduceat(flat, starts[has])
    return per_row


def _batch(table: pa.Table, chunks: bool) -> Batch:
    tokens, lengths = _flat(table, "chunk_tokens", np.int64)
    rows = Rows(
        index=table.column("index").to_numpy().astype(np.int64),
        attempt=table.column("attempt").to_numpy().astype(np.int64),
        ok=table.column("error").is_null().to_numpy(zero_copy_only=False),
        phase=_objects(table, "phase"), error_kind=_objects(table, "error_kind"),
        input_tokens=table.column("input_tokens").to_numpy().astype(np.int64),
        max_tokens=table.column("max_tokens").to_numpy().astype(np.int64),
        intended_time=_numbers(table, "intended_s"), send_time=_numbers(table, "send_s"),
        first_token_time=_numbers(table, "first_token_s"),
        last_token_time=_numbers(table, "last_token_s"), done_time=_numbers(table, "done_s"),
        prompt_tokens=_numbers(table, "prompt_tokens"),
        completion_tokens=_numbers(table, "completion_tokens"),
        streamed_tokens=_per_row_sum(tokens, lengths))
    if not chunks:
        return Batch(rows, None)
    times, _ = _flat(table, "chunk_s", float)
    return Batch(rows, Chunks(times, tokens, lengths))
