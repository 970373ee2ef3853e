"""One point sent from several client processes that share one start, for loads one process
cannot keep up with: each process runs the executor on its Shard of the point, and the records
come back together.

perf_counter is CLOCK_MONOTONIC on Linux, so the shared start and every stamp mean the same in
each process. With one process the point is sent from this one, on a new event loop.
"""

from __future__ import annotations

import multiprocessing
import time

from harness.config.load import RetryConfig
from harness.contract.plan import Point
from harness.contract.server import ServerHandle
from harness.load.generator import LoadResult, RequestSource, Shard, run_point
from harness.load.loop import run_fast

START_LEAD_S = 0.2  # from the last process being ready to the shared start
WORKER_START_TIMEOUT_S = 60.0


def _soon() -> float:
    return time.perf_counter() + START_LEAD_S


def run_in_processes(server: ServerHandle, point: Point, requests: RequestSource, *,
                     processes: int = 1, connections: int = 0, timeout_s: float = 600.0,
                     seed: int = 0, salt: int = 0) -> LoadResult:
    """Send `point` from `processes` processes, each with connections/processes connections
    opened before the shared start. The loop lag is the worst process's."""
    share = -(-connections // max(processes, 1))
    arguments = dict(seed=seed, salt=salt, timeout_s=timeout_s, retry=RetryConfig(),
                     connections=share)
    if processes <= 1:
        return run_fast(run_point(server, point, requests, start=_soon, **arguments))
    context = multiprocessing.get_context("spawn")  # no fork: the caller may hold a loop
    pipes, workers = [], []
    try:
        for number in range(processes):
            parent, child = context.Pipe()
            worker = context.Process(target=_worker, daemon=True, args=(
                child, server, point, requests, Shard(number, processes), arguments))
            worker.start()
            pipes.append(parent)
            workers.append(worker)
        start = _start_together(pipes)
        results = [_received(pipe.recv()) for pipe in pipes]
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
            worker.join()
    return _merged(results, start)


def _start_together(pipes: list) -> float:
    """Wait until every process has connected, then hand them all one start."""
    for pipe in pipes:
        if not pipe.poll(WORKER_START_TIMEOUT_S):
            raise RuntimeError("a client process did not start")
        _received(pipe.recv())
    start = _soon()
    for pipe in pipes:
        pipe.send(start)
    return start


def _received(message: object) -> object:
    if isinstance(message, BaseException):
        raise message
    return message


def _worker(pipe, server: ServerHandle, point: Point, requests: RequestSource, shard: Shard,
            arguments: dict) -> None:
    def shared_start() -> float:
        pipe.send("ready")
        return pipe.recv()

    try:
        result = run_fast(run_point(server, point, requests, shard=shard, start=shared_start,
                                    **arguments))
    except Exception as err:  # for the parent to raise
        result = err
    pipe.send(result)


def _merged(results: list[LoadResult], start: float) -> LoadResult:
    records = sorted((r for result in results for r in result.records),
                     key=lambda r: (r.index, r.attempt))
    worst = max(results, key=lambda result: result.loop_lag.p99_ms)
    return LoadResult(records, start, max(result.end for result in results),
                      results[0].phases, worst.loop_lag)
