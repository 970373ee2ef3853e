"""The command line: `python -m harness.mock --port 8000 --interval-ms 10 [--workers N]`."""

from __future__ import annotations

import argparse
import sys

import harness.mock
from harness.mock.faults import parse_plan
from harness.mock.supervisor import serve
from harness.mock.token_schedule import Schedule


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.mock",
                                     description=harness.mock.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--interval-ms", type=float, default=10.0, help="between steps")
    parser.add_argument("--tokens-per-chunk", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=None,
                        help="tokens per request [default: the request's max_tokens]")
    parser.add_argument("--cpus", default=None, metavar="0,1,...",
                        help="run on these CPUs only (Linux)")
    parser.add_argument("--faults", default=None, metavar="FAULT,...",
                        help="inject faults, one per request in turn (see harness.mock.faults):"
                             " ok, http500, http429, reset:K, stall:K, malformed, no-usage, "
                             "bad-usage")
    parser.add_argument("--watch-stdin", action="store_true",
                        help="exit when stdin closes (used when started from Python)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workers < 1 or args.tokens_per_chunk < 1 or args.interval_ms < 0:
        parser.error("--workers and --tokens-per-chunk must be >= 1, --interval-ms >= 0")
    schedule = Schedule(args.interval_ms / 1000, args.tokens_per_chunk, args.tokens)
    cpus = {int(cpu) for cpu in args.cpus.split(",")} if args.cpus else None
    try:
        faults = parse_plan(args.faults)
    except ValueError as err:
        parser.error(f"--faults: {err}")
    return serve(args.port, schedule, args.workers, args.watch_stdin, cpus, faults)


if __name__ == "__main__":
    sys.exit(main())
