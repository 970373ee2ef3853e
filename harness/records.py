"""One record per request attempt, as the client takes it, and its row layout in the point's
`<point>.requests.parquet` file (times in seconds from the start of the point's window)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class RequestRecord:
    index: int
    input_tokens: int  # what was sent
    max_tokens: int  # what was asked for
    send_time: float
    done_time: float = 0.0  # stream closed (after the usage chunk and [DONE])
    chunk_times: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    prompt_tokens: int | None = None  # server usage
    completion_tokens: int | None = None  # server usage
    finish_reason: str | None = None
    error: str | None = None
    intended_time: float | None = None  # open loop: when the schedule meant it to be sent
    phase: str | None = None  # the traffic phase it belongs to
    attempt: int = 1  # 2+ for retries of the same request

    @property
    def ok(self) -> bool:
        return self.error is None

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
        "finish_reason": r.finish_reason, "error": r.error,
        "chunk_s": [t - start for t in r.chunk_times], "chunk_tokens": list(r.chunk_tokens),
    } for r in records]
    frame = pd.DataFrame(rows)
    for column in ("prompt_tokens", "completion_tokens"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame
