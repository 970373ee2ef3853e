"""One record per request attempt, as the client takes it, and its row layout in the point's
`<point>.requests.parquet` file (times in seconds from the start of the point's window)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

# What went wrong with a failed attempt, for counting errors by cause:
#   timeout   no end of the stream within request_timeout_s
#   http      the server answered with a status other than 200 (http_status says which)
#   reset     the connection was reset or closed before the response ended
#   connect   no connection could be made
#   server    the server reported an error inside a 200 stream
#   protocol  a stream the client cannot trust: a malformed event, no token, no usage chunk
#             though one was asked for, or usage that disagrees with the tokens streamed
ErrorKind = Literal["timeout", "http", "reset", "connect", "server", "protocol"]


@dataclass(slots=True)
class RequestRecord:
    index: int
    input_tokens: int  # what was sent
    max_tokens: int  # what was asked for
    send_time: float
    done_time: float = 0.0  # stream closed (after the usage chunk and [DONE])
    # Compact arrays, not lists of Python numbers: 12 bytes a chunk instead of about 100.
    chunk_times: array = field(default_factory=lambda: array("d"))  # perf_counter, each chunk
    chunk_tokens: array = field(default_factory=lambda: array("i"))  # tokens in each chunk
    prompt_tokens: int | None = None  # server usage
    completion_tokens: int | None = None  # server usage
    finish_reason: str | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    http_status: int | None = None  # of a non-200 answer
    intended_time: float | None = None  # open loop: when the schedule meant it to be sent
    phase: str | None = None  # the traffic phase it belongs to
    attempt: int = 1  # 2+ for retries of the same request

    @property
    def ok(self) -> bool:
        return self.error is None

    def fail(self, kind: ErrorKind, error: str) -> None:
        """Mark the attempt failed (the first cause found stands)."""
        if self.error is None:
            self.error, self.error_kind = error, kind

    @property
    def first_token_time(self) -> float | None:
        return self.chunk_times[0] if self.chunk_times else None

    @property
    def last_token_time(self) -> float | None:
        return self.chunk_times[-1] if self.chunk_times else None

    @property
    def streamed_tokens(self) -> int:
        """Tokens the stream's chunks carried (server usage aside)."""
        return sum(self.chunk_tokens)


def requests_table(records: list[RequestRecord], start: float) -> pa.Table:
    """One row per attempt; times in seconds from the start of the point's window. Built
    column by column: the chunk times go from the records' arrays into one flat arrow array,
    never through a Python float each."""
    def rel(t: float | None) -> float | None:
        return None if t is None else t - start

    def column(get, kind: pa.DataType) -> pa.Array:
        return pa.array([get(r) for r in records], type=kind)

    def chunks(get, kind: pa.DataType, shift: float = 0.0) -> pa.Array:
        lengths = np.fromiter((len(get(r)) for r in records), dtype=np.int32, count=len(records))
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)])
        flat = np.concatenate([np.empty(0), *(np.asarray(get(r), dtype=float)
                                              for r in records)]) - shift
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()),
                                        pa.array(flat.astype(kind.to_pandas_dtype())))

    i64, f64, text = pa.int64(), pa.float64(), pa.string()
    return pa.table({
        "index": column(lambda r: r.index, i64), "attempt": column(lambda r: r.attempt, i64),
        "phase": column(lambda r: r.phase, text),
        "input_tokens": column(lambda r: r.input_tokens, i64),
        "max_tokens": column(lambda r: r.max_tokens, i64),
        "intended_s": column(lambda r: rel(r.intended_time), f64),
        "send_s": column(lambda r: rel(r.send_time), f64),
        "first_token_s": column(lambda r: rel(r.first_token_time), f64),
        "last_token_s": column(lambda r: rel(r.last_token_time), f64),
        "done_s": column(lambda r: rel(r.done_time), f64),
        "prompt_tokens": column(lambda r: r.prompt_tokens, i64),
        "completion_tokens": column(lambda r: r.completion_tokens, i64),
        "finish_reason": column(lambda r: r.finish_reason, text),
        "error": column(lambda r: r.error, text),
        "error_kind": column(lambda r: r.error_kind, text),
        "http_status": column(lambda r: r.http_status, i64),
        "chunk_s": chunks(lambda r: r.chunk_times, f64, start),
        "chunk_tokens": chunks(lambda r: r.chunk_tokens, i64),
    })


def requests_frame(records: list[RequestRecord], start: float) -> pd.DataFrame:
    """requests_table as a DataFrame (counts that can be missing as pandas' Int64)."""
    frame = requests_table(records, start).to_pandas()
    for name in ("prompt_tokens", "completion_tokens", "http_status"):
        frame[name] = frame[name].astype("Int64")
    return frame
