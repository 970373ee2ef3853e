"""The token schedule every request to the mock server follows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """What every request gets: one chunk per step, `tokens_per_chunk` tokens a chunk."""

    interval_s: float = 0.01  # between steps; 0 = steps back to back (as fast as it can)
    tokens_per_chunk: int = 1
    tokens: int | None = None  # tokens per request; None = the request's max_tokens

    def chunks(self, tokens: int) -> int:
        return -(-tokens // self.tokens_per_chunk)
