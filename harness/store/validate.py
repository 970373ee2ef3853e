"""Checking a results directory file by file: run.json and every point, failure and capacity
file readable and of this schema, each point's requests parquet readable with one row per
attempt the point counts, and the checksums written at save time matching the files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from harness.contract.layout import CAPACITY_FILES, FAILURE_FILES, POINT_FILES, POINT_PARQUETS
from harness.contract.manifest import RunManifest
from harness.contract.results import CapacityRecord, CellFailure, PointResult
from harness.store.run_store import ResultsError, RunStore, read_checksums, read_model, sha256_of


@dataclass
class Validation:
    root: Path
    points: int = 0
    broken: list[str] = field(default_factory=list)  # what is wrong: exit 1
    notes: list[str] = field(default_factory=list)  # worth saying, nothing lost
    no_checksum: list[Path] = field(default_factory=list)  # points saved without checksums

    @property
    def ok(self) -> bool:
        return not self.broken


def validate_run(root: Path) -> Validation:
    """Everything wrong with the run in `root`; ResultsError when it is not a run at all."""
    store = RunStore(root)
    if not store.run_json.exists():
        store.read_run()  # raises: not a results directory
    found = Validation(root)
    _readable(store.run_json, RunManifest, found)
    for path in sorted(root.glob(POINT_FILES)):
        found.points += 1
        _check_point(store, path, found)
    for pattern, model in ((FAILURE_FILES, CellFailure), (CAPACITY_FILES, CapacityRecord)):
        for path in sorted(root.glob(pattern)):
            _readable(path, model, found)
    for path in sorted(root.glob(POINT_PARQUETS)):
        point = path.name.removesuffix(".requests.parquet").removesuffix(".telemetry.parquet")
        if not path.with_name(point + ".json").exists():
            found.notes.append(f"{path}: no point file beside it (a point that did not "
                               "finish; it is measured again on resume)")
    return found


def _readable(path: Path, model: type, found: Validation):
    try:
        return read_model(path, model)
    except ResultsError as err:
        found.broken.append(str(err))
        return None


def _check_point(store: RunStore, path: Path, found: Validation) -> None:
    result = _readable(path, PointResult, found)
    if result is None:
        return
    requests = store.requests_parquet(result.cell, result.point)
    if path != store.point_json(result.cell, result.point):
        found.broken.append(f"{path}: holds point {result.cell}/{result.point}, not the one "
                            "its name says")
        return
    try:
        rows = pq.ParquetFile(requests).metadata.num_rows
        pq.read_table(requests)  # every page readable, not just the footer
    except (OSError, ValueError) as err:
        found.broken.append(f"{requests}: not readable ({str(err).splitlines()[0]})")
    else:
        if rows != result.metrics.attempts:
            found.broken.append(f"{requests}: {rows} request rows, but {path.name} counts "
                                f"{result.metrics.attempts} attempts")
    _check_sums(store.checksums(result.cell, result.point), found)


def _check_sums(path: Path, found: Validation) -> None:
    sums = read_checksums(path)
    if sums is None:
        found.no_checksum.append(path.with_suffix(".json"))
        return
    for name, digest in sums.items():
        file = path.parent / name
        if not file.exists():
            found.broken.append(f"{file}: missing (its checksum is in {path.name})")
        elif sha256_of(file) != digest:
            found.broken.append(f"{file}: changed since it was saved (checksum in "
                                f"{path.name} does not match)")
