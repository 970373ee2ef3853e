"""The harness's streaming client against `vllm bench serve`'s, on the same mock server with
the same workload.

    .venv/bin/python benchmarks/client_benchmark.py [--streams 1,64,512] [--rate-streams 512]

Each client runs in its own process, the way its tool runs it:
  harness           run_point, the executor `harness run` uses (StreamSession), on run_fast
  harness/asyncio   the same under plain asyncio.run (what run_fast adds: uvloop, gc.freeze)
  vllm bench serve  vllm.benchmarks.lib.endpoint_request_func.async_request_openai_completions
                    behind an asyncio.Semaphore(streams) with vllm bench serve's connector and
                    session settings, under asyncio.run: what --max-concurrency does
Workload: `streams` requests in flight, each of --tokens tokens, until --duration is covered.
The mock server (harness.mock, its own process) writes one chunk per stream per step
and stamps each; a chunk's timing error is the client's arrival stamp minus that stamp
(vLLM's client keeps ttft and itl: its arrivals are start + ttft + the running sum of itl).

Part 1, timing: a step every --interval-ms (10) at each of --streams.
Part 2, rate: at --rate-streams, ever shorter steps. "Kept up" = every chunk arrived and the
timing error p99 stayed within one step; a client's sustained rate is the highest chunk rate
it kept up with; "most" is the highest rate it took at all (kept up or not).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import time
from datetime import date

from harness.load.health import LagSummary
from harness.load.loop import run_fast
from harness.mock import MockServer, Schedule
from harness.run.selftest import cpus_apart

CLIENTS = ("harness", "harness/asyncio", "vllm bench serve")
INPUT_TOKENS = 4


# --- the clients (each in its own process) ---------------------------------------------------

async def harness_run(base_url: str, streams: int, requests: int, tokens: int) -> dict:
    """`harness run`'s own path: a closed-loop point through the executor (run_point)."""
    from harness.config.load import RetryConfig
    from harness.contract.plan import PhaseSpec, Point
    from harness.contract.server import ServerHandle
    from harness.engines.vllm import VLLM_EXTENSIONS
    from harness.load.generator import run_point
    from harness.run.selftest import KeyedRequests

    server = ServerHandle(base_url, "mock", VLLM_EXTENSIONS)
    point = Point(f"c{streams}", "closed", (PhaseSpec("main", None, requests, streams, None),))
    cpu = time.process_time()
    load = await run_point(server, point, KeyedRequests(tokens), seed=0, salt=0, timeout_s=120,
                           retry=RetryConfig())
    cpu = time.process_time() - cpu
    records, start = load.records, load.start
    arrivals = {r.index + 1: r.chunk_times for r in records if r.ok}
    return {"start": start, "cpu_s": cpu, "arrivals": arrivals,
            "failed": sum(not r.ok for r in records)}


async def vllm_run(base_url: str, streams: int, requests: int, tokens: int) -> dict:
    """As vllm/benchmarks/serve.py `benchmark()` drives the request function."""
    import aiohttp
    from vllm.benchmarks.lib.endpoint_request_func import (
        RequestFuncInput,
        async_request_openai_completions,
    )

    connector = aiohttp.TCPConnector(limit=streams, limit_per_host=streams, ttl_dns_cache=300,
                                     use_dns_cache=True, keepalive_timeout=60,
                                     enable_cleanup_closed=True, force_close=False, ssl=False)
    semaphore = asyncio.Semaphore(streams)
    from harness.run.selftest import KeyedRequests

    prompts = KeyedRequests(tokens)

    async def one(session, index: int):
        request = RequestFuncInput(prompt=prompts.chain(index)[0].prompt, api_url=base_url +
                                   "/v1/completions", prompt_len=INPUT_TOKENS,
                                   output_len=tokens, model="mock", ignore_eos=True,
                                   request_id=f"bench-{index}")
        async with semaphore:
            return index, await async_request_openai_completions(request, session)

    async with aiohttp.ClientSession(connector=connector, trust_env=True,
                                     timeout=aiohttp.ClientTimeout(total=6 * 3600)) as session:
        cpu = time.process_time()
        start = time.perf_counter()
        outputs = await asyncio.gather(*(one(session, i) for i in range(requests)))
        cpu = time.process_time() - cpu
    arrivals = {}
    for index, out in outputs:
        if out.success:
            stamp = out.start_time + out.ttft
            stamps = [stamp]
            for gap in out.itl:
                stamp += gap
                stamps.append(stamp)
            arrivals[index + 1] = stamps
    return {"start": start, "cpu_s": cpu, "arrivals": arrivals,
            "failed": sum(not out.success for _, out in outputs)}


def client_worker(kind: str, pipe) -> None:
    if kind == "vllm bench serve":
        import vllm.benchmarks.lib.endpoint_request_func  # noqa: F401  (its 10 s import, once)
    pipe.send("ready")
    while (job := pipe.recv()) is not None:
        if kind == "harness":
            pipe.send(run_fast(harness_run(*job)))
        elif kind == "harness/asyncio":
            pipe.send(asyncio.run(harness_run(*job)))
        else:
            pipe.send(asyncio.run(vllm_run(*job)))


# --- one measurement -------------------------------------------------------------------------

def measure(pipe, mock: MockServer, streams: int, tokens: int, duration_s: float) -> dict:
    schedule = mock.schedule
    period = (schedule.chunks(tokens) + 1) * schedule.interval_s
    requests = streams * max(1, round(duration_s / period))
    mock.take_stamps()
    pipe.send((mock.base_url, streams, requests, tokens))
    run = pipe.recv()
    reports = mock.take_stamps()
    written = {key: stamps for report in reports for key, stamps in report["requests"]}
    errors, chunks, last = [], 0, run["start"]
    for key, arrived in run["arrivals"].items():
        chunks += len(arrived)
        last = max(last, arrived[-1])
        errors += [a - w for a, w in zip(arrived, written.get(key, []), strict=False)]
    expected = requests * schedule.chunks(tokens)
    error = LagSummary.of(errors)
    kept_up = (not run["failed"] and chunks == expected
               and error.p99_ms <= schedule.interval_s * 1e3)
    return {"streams": streams, "interval_ms": schedule.interval_s * 1e3,
            "offered": streams / schedule.interval_s, "rate": chunks / (last - run["start"]),
            "p50": error.p50_ms, "p99": error.p99_ms, "cpu_us": run["cpu_s"] / chunks * 1e6,
            "failed": run["failed"], "chunks": chunks, "expected": expected,
            "server_lag_ms": max(r["step_lag_p99_s"] for r in reports) * 1e3,
            "kept_up": kept_up}


def start_clients() -> dict:
    context = multiprocessing.get_context("spawn")
    clients = {}
    for kind in CLIENTS:
        parent, child = context.Pipe()
        process = context.Process(target=client_worker, args=(kind, child), daemon=True)
        process.start()
        clients[kind] = (process, parent)
    for _, pipe in clients.values():
        pipe.recv()
    return clients


def stop_clients(clients: dict) -> None:
    for process, pipe in clients.values():
        if process.is_alive():
            pipe.send(None)
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


# --- the report ------------------------------------------------------------------------------

def row(kind: str, m: dict) -> str:
    verdict = "kept up" if m["kept_up"] else "fell behind"
    return (f"| {kind} | {m['streams']} | {m['interval_ms']:g} | {m['offered']:,.0f} | "
            f"{m['rate']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['cpu_us']:.1f} | "
            f"{m['server_lag_ms']:.1f} | {verdict} |")


HEADER = ("| client | streams | step ms | offered chunks/s | chunks/s | error p50 ms | "
          "error p99 ms | client CPU us/chunk | server step lag p99 ms | verdict |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_gib = int(handle.readline().split()[1]) / 2**20
    return (f"{os.cpu_count()} x {model}, {mem_gib:.0f} GiB, Python {platform.python_version()}"
            f", {date.today().isoformat()}")


def load_average() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="1,64,512")
    parser.add_argument("--rate-streams", type=int, default=512)
    parser.add_argument("--rate-intervals-ms", default="50,40,30,20,10,7,5,4,3,2")
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average before: {load_average()}")
    with cpus_apart(1) as server_cpus:  # the clients (started in here) inherit the rest
        clients = start_clients()
    print(f"mock server on CPU {server_cpus}, clients on the others")
    try:
        print(f"\n## Timing: a step every {args.interval_ms:g} ms, {args.tokens} tokens a request"
              f"\n\n{HEADER}")
        with MockServer(Schedule(args.interval_ms / 1000), cpus=server_cpus) as mock:
            for streams in [int(s) for s in args.streams.split(",")]:
                for kind, (_, pipe) in clients.items():
                    print(row(kind, measure(pipe, mock, streams, args.tokens, args.duration)),
                          flush=True)
        print(f"\n## Rate: {args.rate_streams} streams, ever shorter steps\n\n{HEADER}")
        runs: dict[str, list[dict]] = {kind: [] for kind in clients}
        for interval in [float(i) for i in args.rate_intervals_ms.split(",")]:
            with MockServer(Schedule(interval / 1000), cpus=server_cpus) as mock:
                for kind, (_, pipe) in clients.items():
                    runs[kind].append(measure(pipe, mock, args.rate_streams, args.tokens,
                                              args.duration))
                    print(row(kind, runs[kind][-1]), flush=True)
    finally:
        stop_clients(clients)
    print(summary(runs, args.rate_streams))
    print(f"\nload average after: {load_average()}")


def summary(runs: dict[str, list[dict]], streams: int) -> str:
    """Per client: the highest rate it kept up with, and the highest it took at all (marked
    when the mock server itself could not keep its steps: the client may do more)."""
    def sustained(kind: str) -> float:
        return max((m["rate"] for m in runs[kind] if m["kept_up"]), default=0.0)

    def most(kind: str) -> dict:
        return max(runs[kind], key=lambda m: m["rate"])

    base_s, base_m = sustained("vllm bench serve"), most("vllm bench serve")["rate"]
    lines = [f"\n## Summary at {streams} streams\n",
             "| client | sustained chunks/s | x vllm | most chunks/s | x vllm |",
             "|---|---:|---:|---:|---:|"]
    for kind in runs:
        top = most(kind)
        bound = " (server-bound)" if top["server_lag_ms"] > top["interval_ms"] else ""
        ratio = f"{sustained(kind) / base_s:.2f}" if base_s else "n/a"
        lines.append(f"| {kind} | {sustained(kind):,.0f} | {ratio} | {top['rate']:,.0f}{bound}"
                     f" | {top['rate'] / base_m:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
