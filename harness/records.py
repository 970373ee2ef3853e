"""One record per request attempt, as the client takes it, and its row layout in the point's
`<point>.requests.parquet` file (times in seconds from the start of the point's window)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

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


def requests_frame(records: list[RequestRecord], start: float) -> pd.DataFrame:
    """One row per attempt; times in seconds from the start of the point's window."""
    def rel(t: float | None) -> float | None:
        return None if t is None else t - start

    rows = [{
        "index": r.index, "attempt": r.attempt, "phase": r.phase,
        "input_tokens": r.input_tokens, "max_tokens": r.max_tokens,
        "intended_s": rel(r.intended_time), "send_s": rel(r.send_time),
        "first_token_s": rel(r.first_token_time), "last_token_s": rel(r.last_token_time),
        "done_s": rel(r.done_time),
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "finish_reason": r.finish_reason, "error": r.error, "error_kind": r.error_kind,
        "http_status": r.http_status,
        "chunk_s": np.asarray(r.chunk_times, dtype=np.float64) - start,
        "chunk_tokens": np.asarray(r.chunk_tokens, dtype=np.int64),
    } for r in records]
    frame = pd.DataFrame(rows)
    for column in ("prompt_tokens", "completion_tokens", "http_status"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame
