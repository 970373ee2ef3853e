"""`harness tune` against the full grid of its space, on one machine in one run.

    .venv/bin/python benchmarks/tune.py [--config configs/tune-cpu.yaml] [--out /tmp/tune-bench]

Runs the config's space twice, with the same measurement per trial (one server launch, the
config's load points, the sustained-rate capacity search at the SLO with its repeats):

1. the full grid (`tune.sampler: grid`, one trial per combination);
2. `harness tune` as configured (TPE, its `tune.trials` budget: at most half the grid).

Then prints, for each: the best capacity found (output tok/s at the SLO, and its cell), the
server launches and the minutes; and whether tune's best lies within the grid best's
run-to-run noise, which is the spread of the repeated measurements at each best's capacity
rate (`capacity.repeats`). --json writes the table.
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
    rows = [summary("full grid", args.out / "grid",
                    run_tune(grid_config, args.out / "grid", size)),
            summary("harness tune", args.out / "tune",
                    run_tune(args.config, args.out / "tune", None))]
    grid_row, tune_row = rows
    low, _ = grid_row["spread"]
    _, high = tune_row.get("spread", (0.0, 0.0))
    within = tune_row["best out tok/s"] is not None and high >= low
    print(f"\n{'search':<14} {'trials':>6} {'launches':>8} {'minutes':>7}  "
          f"{'best out tok/s':>14} {'repeats':>19}  best cell")
    for row in rows:
        spread = row.get("spread")
        repeats = f"{spread[0]:,.1f}-{spread[1]:,.1f}" if spread else "-"
        best = f"{row['best out tok/s']:,.1f}" if row["best out tok/s"] else "-"
        print(f"{row['search']:<14} {row['trials']:>6} {row['launches']:>8} "
              f"{row['minutes']:>7} {best:>15} {repeats:>19}  {row['best cell']}")
    print(f"\ntune's best {'is' if within else 'is NOT'} within the grid best's run-to-run "
          f"noise (their repeated measurements {'overlap' if within else 'do not overlap'}); "
          f"launches {tune_row['launches']} of the grid's {grid_row['launches']}.")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "within_noise": within}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
