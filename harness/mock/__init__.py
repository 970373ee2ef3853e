"""A mock OpenAI-compatible streaming server with a known token schedule, for measuring the
client itself (`harness selftest client`, benchmarks/) and for tests. It is no stand-in for
vLLM in end-to-end tests.

    python -m harness.mock --port 8000 --interval-ms 10 [--workers N]

It serves POST /v1/completions (streaming only), GET /health and GET /v1/models. Like a vLLM
engine, each worker runs in *steps*: every `interval_s` each running stream gets its next chunk
of `tokens_per_chunk` tokens; a new request joins at the next step. Chunks are byte for byte in
vLLM 0.32's format (usage on every chunk when `continuous_usage_stats` is asked for, then a
usage chunk and `[DONE]`), so the real client counts tokens exactly.

Every token chunk is stamped with `time.perf_counter()` just before its bytes are handed to
the kernel. On Linux perf_counter is CLOCK_MONOTONIC, one clock for every process on the
machine, so a client's arrival stamps and these write stamps can be subtracted. The stamps stay
in the server (the stream carries nothing extra) and are fetched afterwards from each worker's
control port (GET /mock/stamps); a request is known by the first token id of its prompt.

`--faults` (MockServer(faults=...)) injects server faults, one per request in turn: HTTP 500
and 429, a reset after k chunks, a stall, a malformed event, a missing or wrong usage chunk
(harness/mock/faults.py).
"""

from harness.mock.launcher import MockServer
from harness.mock.token_schedule import Schedule

__all__ = ["MockServer", "Schedule"]
