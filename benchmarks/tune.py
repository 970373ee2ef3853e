"""`harness tune` against the full grid of its space, on one machine in one run.

    .venv/bin/python benchmarks/tune.py [--config configs/tune-cpu.yaml] [--out /tmp/tune-bench]

Runs the config's space twice, with the same measurement per trial (one server launch, the
config's load points, the sustained-rate capacity search at the SLO with its repeats):

1. the full grid (`tune.sampler: grid`, one trial per combination);
2. `harness tune` as configured (TPE, its `tune.trials` budget: at most half the grid).

Then prints, for each: the best capacity found (output tok/s at the SLO, and its cell), the
server launches and the minutes; and whether tune's best lies within the grid best's
run-to-run noise. It does when tune's best is the grid's best configuration (what differs is
then that configuration's own launch-to-launch noise), or when the grid's measurement of
tune's best configuration overlaps the grid best's (each the spread of the repeated
measurements at its capacity rate, `capacity.repeats`). --json writes the table; --summary
prints it again from an earlier --out without measuring.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run_tune(config: Path, out: Path, trials: int | None) -> float:
    """`harness tune CONFIG --out OUT`; its wall time in minutes."""
    command = [sys.executable, "-m", "harness", "tune", str(config), "--out", str(out)]
    if trials is not None:
        command += ["--trials", str(trials)]
    began = time.monotonic()
    subprocess.run(command, check=False, cwd=ROOT)
    return (time.monotonic() - began) / 60


def capacity_spread(out: Path, cell: str) -> tuple[float, float]:
    """(lowest, highest) output tok/s measured at the cell's capacity rate (the search's own
    measurement and its repeats)."""
    record = json.loads((out / "cells" / cell / "capacity.json").read_text())
    values = [record["output_throughput"]] + [
        r["output_throughput"] for r in record.get("repeats", [])
        if r["rate_rps"] == record["rate_rps"]]
    return min(values), max(values)


def summary(name: str, out: Path, minutes: float) -> dict:
    record = json.loads((out / "tune" / "trials.json").read_text())
    trials = {t["number"]: t for t in record["trials"]}
    best = trials[record["best"][0]] if record["best"] else None
    row = {"search": name, "trials": len(trials), "launches": record["launches"],
           "minutes": round(minutes, 1), "best cell": best["cell"] if best else None,
           "best out tok/s": best["output_throughput"] if best else None,
           "best req/s": best["capacity_rps"] if best else None}
    if best is not None:
        row["spread"] = capacity_spread(out, best["cell"])
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "tune-cpu.yaml")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tune-bench"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--summary", action="store_true",
                        help="print the table of an earlier --out; measure nothing")
    args = parser.parse_args()
    raw = yaml.safe_load(args.config.read_text())
    grid_config = args.out / "grid.yaml"
    args.out.mkdir(parents=True, exist_ok=True)
    grid = dict(raw, name="tune-grid", tune={**raw["tune"], "sampler": "grid"})
    grid["tune"].pop("trials", None)
    grid_config.write_text(yaml.safe_dump(grid, sort_keys=False))
    from harness.config import load_config
    from harness.run.tune_space import TuneSpace

    size = TuneSpace(load_config(grid_config)).grid_size()
    minutes = {"grid": None, "tune": None}
    if args.summary:
        minutes = json.loads(args.json.read_text())["minutes"] if args.json and \
            args.json.exists() else minutes
    else:
        minutes = {"grid": run_tune(grid_config, args.out / "grid", size),
                   "tune": run_tune(args.config, args.out / "tune", None)}
    rows = [summary("full grid", args.out / "grid", minutes["grid"] or 0.0),
            summary("harness tune", args.out / "tune", minutes["tune"] or 0.0)]
    grid_row, tune_row = rows
    same = tune_row["best cell"] == grid_row["best cell"]
    within = same
    if not same and tune_row["best cell"] is not None and \
            (args.out / "grid" / "cells" / tune_row["best cell"] / "capacity.json").exists():
        low, high = capacity_spread(args.out / "grid", tune_row["best cell"])
        within = high >= grid_row["spread"][0]
    print(f"\n{'search':<14} {'trials':>6} {'launches':>8} {'minutes':>7}  "
          f"{'best out tok/s':>14} {'repeats':>19}  best cell")
    for row in rows:
        spread = row.get("spread")
        repeats = f"{spread[0]:,.1f}-{spread[1]:,.1f}" if spread else "-"
        best = f"{row['best out tok/s']:,.1f}" if row["best out tok/s"] else "-"
        print(f"{row['search']:<14} {row['trials']:>6} {row['launches']:>8} "
              f"{row['minutes']:>7} {best:>15} {repeats:>19}  {row['best cell']}")
    why = ("it is the grid's best configuration; the two launches measured it "
           f"{tune_row['best out tok/s']:,.1f} and {grid_row['best out tok/s']:,.1f} out tok/s"
           if same else "the grid's own measurements of the two configurations "
           + ("overlap" if within else "do not overlap"))
    print(f"\ntune's best {'is' if within else 'is NOT'} within the grid best's run-to-run "
          f"noise: {why}; launches {tune_row['launches']} of the grid's "
          f"{grid_row['launches']}.")
    if args.json and not args.summary:
        args.json.write_text(json.dumps({"rows": rows, "within_noise": within,
                                         "minutes": minutes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
