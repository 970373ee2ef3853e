"""Load for tests that talk to a server directly: a closed-loop point of exact-length token-id
prompts, sent through the executor that `harness run` uses."""

from __future__ import annotations

from collections.abc import Sequence

from harness.config.load import RetryConfig, WorkloadConfig
from harness.contract.plan import PhaseSpec, Point
from harness.contract.server import ServerHandle
from harness.load.generator import LoadResult, run_point
from harness.load.workload import Workload


def workload(vocab: Sequence[int], input_tokens: int, output_tokens: int, seed: int = 0,
             salt: int = 1) -> Workload:
    config = WorkloadConfig(input_tokens=input_tokens, output_tokens=output_tokens)
    return Workload(config, vocab, None, seed, salt, salt + 1)


def closed_point(concurrency: int, requests: int) -> Point:
    return Point(f"c{concurrency}", "closed",
                 (PhaseSpec("main", None, requests, concurrency, None),))


async def closed_loop(server: ServerHandle, requests: Workload, concurrency: int, count: int,
                      timeout_s: float = 60.0) -> LoadResult:
    """`count` requests with `concurrency` in flight; the window runs from just before the
    first send to the last reply."""
    return await run_point(server, closed_point(concurrency, count), requests, seed=0, salt=0,
                           timeout_s=timeout_s, retry=RetryConfig())
