"""How long a point's metrics take to read back from its requests file, and how often the file
is read to get them.

    .venv/bin/python benchmarks/metrics_read.py [--file PATH] [--phases 1] [--json OUT] [--traced]

The file is a synthetic 10-minute closed-loop point (written once to --file, default
/tmp/metrics-read.requests.parquet, by the request spool as `harness run` writes it): 64
streams of 256 tokens each, one chunk a token every ~2 ms with some jitter, missed steps and
bursts, about 74,000 requests and 19 million tokens, as the 10-minute soak (soak.py). With
--phases N its requests are split by send time into N phases of a traffic profile.

It then computes everything `harness run` computes of a point from that file (the point's
metrics, each phase's metrics, the steady window, the SLO verdicts with goodput) and prints
the seconds it took, the row groups read (each `read_row_group` call; with the chunk columns
or without) and the peak memory it added (VmHWM after less VmRSS before; with --traced also
the peak of what Python allocated, numpy's arrays included). --json writes the results, to
compare two versions of the code on the same file (run it with PYTHONPATH set to the other
checkout).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from array import array
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from harness.config.slo import Slo
from harness.contract.records import RequestRecord
from harness.store.requests_file import ParquetRequests
from harness.store.spool import RequestSpool

DURATION_S = 600.0
STREAMS = 64
TOKENS = 256
STEP_S = 0.002
SLO = Slo(ttft_p95_ms=50, itl_p99_ms=10)


def synthetic_records(seed: int = 0) -> list[RequestRecord]:
    """A closed loop of STREAMS streams for DURATION_S, in the order the requests finished."""
    rng = np.random.default_rng(seed)
    records, index = [], 0
    for stream in range(STREAMS):
        send = stream * STEP_S / STREAMS
        while send < DURATION_S:
            steps = 1 + (rng.random(TOKENS) < 0.02)  # now and then a missed step
            gaps = steps * STEP_S + rng.normal(0.0, 1e-4, TOKENS)
            gaps[rng.random(TOKENS) < 0.01] = 5e-5  # and a burst
            times = send + 0.004 + np.cumsum(np.maximum(gaps, 1e-5))
            record = RequestRecord(index, 128, TOKENS, send_time=send,
                                   done_time=float(times[-1]) + 2e-4, prompt_tokens=128,
                                   completion_tokens=TOKENS)
            record.chunk_times = array("d", times.tolist())
            record.chunk_tokens = array("i", [1] * TOKENS)
            records.append(record)
            index += 1
            send = record.done_time + 1e-4
    records.sort(key=lambda r: r.done_time)
    return records


def write(path: Path, phases: int) -> None:
    spool = RequestSpool(path)
    spool.begin(0.0)
    for record in synthetic_records():
        record.phase = phase_name(int(record.send_time / DURATION_S * phases), phases)
        spool.add(record)
    spool.close()


def phase_name(number: int, phases: int) -> str | None:
    return f"phase{number}" if phases > 1 else None


def spans(phases: int) -> list[tuple[str, float, float]]:
    """(name, start, end) of each phase, seconds from the point's start."""
    if phases < 2:
        return []
    width = DURATION_S / phases
    return [(phase_name(k, phases), k * width, (k + 1) * width) for k in range(phases)]


def compute(path: Path, duration_s: float, phases: int) -> dict:
    """Everything the point measurer computes of a point, as JSON-ready dicts."""
    stored = ParquetRequests(path)
    try:
        from harness.metrics.reading import read_point
    except ImportError:  # the code before the metrics were read in one pass
        return compute_before(stored, duration_s, phases)
    from harness.metrics.point_metrics import PhaseSpan

    found = read_point(stored, duration_s, [PhaseSpan(*span) for span in spans(phases)], SLO)
    return {"metrics": found.metrics.model_dump(), "slo": found.slo.model_dump(),
            "phases": {name: phase.model_dump() for name, phase in found.phases.items()},
            "steady": found.steady.model_dump()}


def compute_before(stored, duration_s: float, phases: int) -> dict:
    from harness.load.generator import PhaseWindow
    from harness.metrics.point_metrics import in_phase, phase_metrics, point_metrics
    from harness.metrics.slo import verdict
    from harness.metrics.steady import steady_window

    metrics = point_metrics(stored, 0.0, duration_s)
    by_phase = phase_metrics(stored, [PhaseWindow(*span) for span in spans(phases)], 0.0)
    return {"metrics": metrics.model_dump(), "slo": verdict(stored, metrics, SLO).model_dump(),
            "phases": {name: {"metrics": m.model_dump(), "slo": verdict(
                stored, m, SLO, in_phase(name)).model_dump()} for name, m in by_phase.items()},
            "steady": steady_window(stored, 0.0).model_dump()}


class RowGroupReads:
    """Counts pyarrow's read_row_group calls: with the chunk columns, and without."""

    def __init__(self) -> None:
        self.with_chunks = self.without = 0
        original = pq.ParquetFile.read_row_group

        def counted(file, group, columns=None, **kwargs):
            if columns is None or "chunk_s" in columns:
                self.with_chunks += 1
            else:
                self.without += 1
            return original(file, group, columns=columns, **kwargs)

        pq.ParquetFile.read_row_group = counted


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=Path("/tmp/metrics-read.requests.parquet"))
    parser.add_argument("--phases", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--traced", action="store_true",
                        help="also the peak of Python's own allocations (tracemalloc, slower)")
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write(args.file, args.phases)
        return
    if not args.file.exists():  # written by a child, so that this process's peak is the read's
        print(f"writing {args.file} ...", flush=True)
        subprocess.run([sys.executable, __file__, "--write", "--file", str(args.file),
                        "--phases", str(args.phases)], check=True)
    meta = pq.ParquetFile(args.file).metadata
    duration_s = float(pq.read_table(args.file, columns=["done_s"]).column("done_s")
                       .to_numpy().max())
    import harness

    reads, before_mb = RowGroupReads(), rss_mb("VmRSS")
    if args.traced:
        tracemalloc.start()
    began = time.perf_counter()
    results = compute(args.file, duration_s, args.phases)
    took = time.perf_counter() - began
    traced = (f" (allocations {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MB at most)"
              if args.traced else "")
    m = results["metrics"]
    print(f"harness from {Path(harness.__file__).parent}")
    print(f"{args.file}: {meta.num_rows:,} requests in {meta.num_row_groups} row groups, "
          f"{m['output_tokens']:,} tokens, {args.phases} phase(s), {duration_s:.0f} s")
    print(f"metrics of the point (its phases, steady window and SLO verdicts too): {took:.1f} s, "
          f"{reads.with_chunks + reads.without} row-group reads ({reads.with_chunks} with the "
          f"chunk columns, {reads.without} without), peak memory +"
          f"{rss_mb('VmHWM') - before_mb:.0f} MB{traced}")
    print(f"ITL p50 {m['itl_ms']['p50']:.4f} ms over {m['itl_ms']['n']:,} gaps; steady window "
          f"{results['steady']['duration_s']:.1f} s; goodput {results['slo']['goodput_rps']:.2f} "
          f"requests/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
