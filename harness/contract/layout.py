"""The results directory's layout, described once: where each stored shape lives.

    <run>/run.json                                 RunManifest (contract/manifest.py)
    <run>/summary.csv                              one row per (cell, point, phase)
    <run>/cells/<cell>/server.log                  the engine's own log
    <run>/cells/<cell>/failed.json                 CellFailure (if the cell failed)
    <run>/cells/<cell>/capacity.json               CapacityRecord (with a capacity search)
    <run>/cells/<cell>/points/<point>.json         PointResult (contract/results.py)
    <run>/cells/<cell>/points/<point>.requests.parquet    one row per request attempt
                                                   (contract/records.py: requests_table)
    <run>/cells/<cell>/points/<point>.telemetry.parquet   NVML samples (where measured)
    <run>/cells/<cell>/points/<point>.sha256       the point's files' SHA-256, as `sha256sum`
    <run>/fidelity/<variant>.json                  FidelityRecord (contract/fidelity.py)
    <run>/fidelity/<variant>.tokens.parquet        its tokens and top-k logprobs per position
    <run>/tune/trials.json                         TuneRecord (contract/tune.py), `harness tune`
    <run>/tune/study.db                            the Optuna study a rerun continues
    <run>/tune/best.yaml, best-serve.sh            the best trial as a config and as `vllm serve`

Cells are named `<variant>[-b<max_num_seqs>][-tp<N>]` (contract/plan.py, Cell.id); points
`c<N>` (closed loop), `r<rate>` (open loop), `search-r<rate>` (capacity search), `trace`, or
a traffic profile's name. harness/store/ writes and reads these files.
"""

from __future__ import annotations

from pathlib import Path

# glob patterns of the stored shapes, from the run's root
POINT_FILES = "cells/*/points/*.json"
FAILURE_FILES = "cells/*/failed.json"
CAPACITY_FILES = "cells/*/capacity.json"
FIDELITY_FILES = "fidelity/*.json"
POINT_PARQUETS = "cells/*/points/*.parquet"


class RunLayout:
    """The paths of one results directory."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def summary_csv(self) -> Path:
        return self.root / "summary.csv"

    def cell_dir(self, cell: str) -> Path:
        return self.root / "cells" / cell

    def server_log(self, cell: str) -> Path:
        return self.cell_dir(cell) / "server.log"

    def point_json(self, cell: str, point: str) -> Path:
        return self.cell_dir(cell) / "points" / f"{point}.json"

    def requests_parquet(self, cell: str, point: str) -> Path:
        return self.cell_dir(cell) / "points" / f"{point}.requests.parquet"

    def telemetry_parquet(self, cell: str, point: str) -> Path:
        return self.cell_dir(cell) / "points" / f"{point}.telemetry.parquet"

    def checksums(self, cell: str, point: str) -> Path:
        return self.cell_dir(cell) / "points" / f"{point}.sha256"

    def capacity_json(self, cell: str) -> Path:
        return self.cell_dir(cell) / "capacity.json"

    def failure_json(self, cell: str) -> Path:
        return self.cell_dir(cell) / "failed.json"

    def fidelity_json(self, variant: str) -> Path:
        return self.root / "fidelity" / f"{variant}.json"

    def fidelity_parquet(self, variant: str) -> Path:
        return self.root / "fidelity" / f"{variant}.tokens.parquet"

    @property
    def tune_dir(self) -> Path:
        return self.root / "tune"

    @property
    def trials_json(self) -> Path:
        return self.tune_dir / "trials.json"
