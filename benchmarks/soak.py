"""Soak: one long load point against the mock server, through the path `harness run` takes
(run_point keeping no record, the request spool writing the point's parquet as requests
finish, read_point reading every figure of the point back from it), with the client's memory
sampled as it runs.

    .venv/bin/python benchmarks/soak.py --duration 600 [--streams 64 | --rate R] [--tokens 256]

Prints the resident memory (VmRSS) every --every seconds with the requests and tokens so far,
then the memory per streamed token, records written to the point's parquet against requests
sent (they must be equal) and the client's health (event-loop lag, dispatch lag). The mock
server runs on the last CPU and the client on the others (harness.run.selftest.cpus_apart).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from harness.config.load import RetryConfig
from harness.contract.plan import PhaseSpec, Point
from harness.contract.server import ServerHandle
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.load.generator import run_point, soon
from harness.load.health import client_problems
from harness.load.loop import run_fast
from harness.metrics.reading import read_point
from harness.mock import MockServer, Schedule
from harness.run.selftest import KeyedRequests, cpus_apart
from harness.store.requests_file import ParquetRequests
from harness.store.spool import RequestSpool


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (VmRSS) or at its highest so far (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


class Progress:
    """What the point has done so far, counted as records arrive; sampled from a thread."""

    def __init__(self) -> None:
        self.requests = self.tokens = 0

    def record(self, record) -> None:
        self.requests += 1
        self.tokens += sum(record.chunk_tokens)


def sample(progress: Progress, every_s: float, stop: threading.Event, rows: list) -> None:
    began = time.monotonic()
    while not stop.wait(every_s):
        rows.append((time.monotonic() - began, rss_mb(), progress.requests, progress.tokens))
        t, rss, requests, tokens = rows[-1]
        print(f"{t:7.0f} s  RSS {rss:7.1f} MB  {requests:9,d} requests  {tokens:12,d} tokens",
              flush=True)


def soak(duration_s: float, streams: int, tokens: int, interval_ms: float,
         every_s: float, rate: float | None = None) -> None:
    progress, rows, stop = Progress(), [], threading.Event()
    with cpus_apart(1) as server_cpus, MockServer(Schedule(interval_ms / 1000),
                                                  cpus=server_cpus) as mock, \
            tempfile.TemporaryDirectory() as tmp:
        server = ServerHandle(mock.base_url, "mock", VLLM_EXTENSIONS)
        point = Point(f"c{streams}", "closed",
                      (PhaseSpec("main", duration_s, None, streams, None),)) if rate is None \
            else Point(f"r{rate:g}", "open",
                       (PhaseSpec("main", duration_s, None, None, (rate, rate), "poisson"),))
        spool = RequestSpool(Path(tmp) / f".{point.id}.requests.parquet.spool")

        def record(finished) -> None:
            progress.record(finished)
            spool.add(finished)

        start_rss = rss_mb()
        sampler = threading.Thread(target=sample, args=(progress, every_s, stop, rows))
        sampler.start()
        try:
            load = run_fast(run_point(server, point, KeyedRequests(tokens), seed=0, salt=0,
                                      timeout_s=120, retry=RetryConfig(), on_record=record,
                                      start=lambda: spool.begin(soon()),
                                      keep_records=False))
        finally:
            stop.set()
            sampler.join()
        end_rss = rss_mb()
        parquet = spool.close()
        read_from = time.monotonic()
        metrics = read_point(ParquetRequests(parquet), load.end - load.start).metrics
        read_s = time.monotonic() - read_from
        written = pq.ParquetFile(parquet).metadata.num_rows
        size_mb = parquet.stat().st_size / 2**20
    streamed = progress.tokens
    lag = load.loop_lag
    problems = client_problems(lag, metrics.dispatch_lag_ms.p99)
    load_is = f"{streams} streams" if rate is None else f"open loop at {rate:g} requests/s"
    print(f"\nmock server: a step every {interval_ms:g} ms, {load_is} x {tokens} tokens, "
          f"{duration_s:g} s; {os.cpu_count()} CPUs")
    sent = progress.requests
    print(f"requests sent {sent:,}, records written {written:,} "
          f"({'equal' if written == sent else 'LOST RECORDS'}), "
          f"errors {metrics.errors}; parquet {size_mb:.1f} MB, its metrics read in {read_s:.1f} s")
    print(f"tokens streamed {streamed:,} ({streamed / max(load.end - load.start, 1e-9):,.0f}/s); "
          f"ITL p50 {ms(metrics.itl_ms.p50)} over {metrics.itl_ms.n:,} gaps")
    print(f"RSS {start_rss:.1f} MB at the start, {end_rss:.1f} MB at the end of the point, "
          f"peak {rss_mb('VmHWM'):.1f} MB (with the point's metrics read back)")
    if len(rows) >= 4:  # growth while streaming, past the first samples (the ramp)
        later = rows[len(rows) // 4:]
        slope = np.polyfit([r[3] for r in later], [r[1] * 2**20 for r in later], 1)[0]
        per_request = np.polyfit([r[2] for r in later], [r[1] * 2**20 for r in later], 1)[0]
        print(f"memory growth while streaming (after the first quarter): {slope:.2f} bytes "
              f"per streamed token, {per_request:.0f} bytes per request")
    print(f"client health: loop lag p99 {ms(lag.p99_ms)}, max {ms(lag.max_ms)}; dispatch "
          f"lag p99 {ms(metrics.dispatch_lag_ms.p99)}; "
          f"{'kept up' if not problems else '; '.join(problems)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--streams", type=int, default=64, help="requests in flight")
    parser.add_argument("--rate", type=float, default=None,
                        help="an open loop of Poisson arrivals at this rate instead")
    parser.add_argument("--tokens", type=int, default=256, help="tokens per request")
    parser.add_argument("--interval-ms", type=float, default=2.0, help="mock server step")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    soak(args.duration, args.streams, args.tokens, args.interval_ms, args.every, args.rate)


if __name__ == "__main__":
    main()
