"""The results directory: layout, atomic writes, resume, and reading it back as typed models.

    <run>/run.json                                 RunManifest
    <run>/cells/<cell>/server.log                  the engine's own log
    <run>/cells/<cell>/failed.json                 CellFailure (if the cell failed)
    <run>/cells/<cell>/capacity.json               CapacityRecord (with a capacity search)
    <run>/cells/<cell>/points/<point>.json         PointResult
    <run>/cells/<cell>/points/<point>.requests.parquet    one row per request attempt
    <run>/cells/<cell>/points/<point>.telemetry.parquet   NVML samples (where measured)
    <run>/summary.csv                              one row per (cell, point, phase)

Every file is written under a temporary name and renamed into place, and a point's JSON is
written after its parquet files: a point counts as finished only when its JSON reads back as a
valid PointResult. Files of another schema version are refused with one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from harness.config.base import STORED, first_error
from harness.placement import ClusterView
from harness.results import (
    SCHEMA_VERSION,
    CapacityRecord,
    CellFailure,
    CellTelemetry,
    Invocation,
    PointResult,
    RunManifest,
)

Model = TypeVar("Model", bound=BaseModel)


class ResultsError(Exception):
    """A results directory that cannot be read as asked: the message is one line saying why
    and what to do."""


class StoreMismatch(ResultsError):
    """The results directory holds a run of a different config."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_model(path: Path, model: BaseModel) -> None:
    write_atomic(path, (model.model_dump_json(indent=2) + "\n").encode())


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None if it is missing or not whole (a crash mid-write)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def schema_problem(data: dict, path: Path) -> str | None:
    """Why a stored file is of another schema version (None when it is this one's)."""
    version = data.get("schema_version", data.get("schema"))
    if version == SCHEMA_VERSION:
        return None
    return (f"{path} holds results of schema {version}; this harness reads schema "
            f"{SCHEMA_VERSION}: re-run its config into a new directory "
            f"(harness run CONFIG --out DIR)")


def read_model(path: Path, model: type[Model]) -> Model:
    """A stored file as `model`; ResultsError (one line) if it is unreadable, of another
    schema version or not valid."""
    data = read_json(path)
    if data is None:
        raise ResultsError(f"{path}: missing or not readable JSON")
    problem = schema_problem(data, path)
    if problem:
        raise ResultsError(problem)
    try:
        return model.model_validate(data, context=STORED)
    except ValidationError as err:
        raise ResultsError(f"{path}: not a valid {model.__name__}: {first_error(err)}") from None


@dataclass
class StoredRun:
    """A results directory read back: what `harness report` and `harness cost` work on."""

    root: Path
    manifest: RunManifest
    points: list[PointResult]
    failures: list[CellFailure]
    capacities: dict[str, CapacityRecord]
    problems: list[str] = field(default_factory=list)  # files that could not be read

    @property
    def name(self) -> str:
        return self.manifest.run


class RunStore:
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

    def capacity_json(self, cell: str) -> Path:
        return self.cell_dir(cell) / "capacity.json"

    def failure_json(self, cell: str) -> Path:
        return self.cell_dir(cell) / "failed.json"

    # --- the run -------------------------------------------------------------------------

    def begin(self, manifest: RunManifest) -> RunManifest:
        """Create run.json, or check that an existing one holds the same config and add this
        invocation to it."""
        started = now_iso()
        if self.run_json.exists():
            existing = read_model(self.run_json, RunManifest)
            if existing.config_hash != manifest.config_hash:
                raise StoreMismatch(
                    f"{self.root} holds a run of a different config (hash "
                    f"{existing.config_hash}, this config {manifest.config_hash}); "
                    f"pass --out to write elsewhere")
            manifest = existing.model_copy(update={"config": manifest.config})
        else:
            manifest = manifest.model_copy(update={"started_at": started})
        manifest.invocations.append(Invocation(
            started_at=started, ended_at=None, status="running",
            harness_version=manifest.harness_version, host=manifest.host))
        manifest.ended_at, manifest.status = None, "running"
        write_model(self.run_json, manifest)
        return manifest

    def end(self, status: str) -> None:
        try:
            manifest = self.read_run()
        except ResultsError:
            return
        ended = now_iso()
        manifest.ended_at, manifest.status = ended, status
        if manifest.invocations:
            manifest.invocations[-1].ended_at = ended
            manifest.invocations[-1].status = status
        write_model(self.run_json, manifest)

    def read_run(self) -> RunManifest:
        if not self.run_json.exists():
            raise ResultsError(f"{self.root}: no run.json here; give a directory made by "
                               "`harness run`")
        return read_model(self.run_json, RunManifest)

    def record_telemetry(self, cell: str, telemetry: CellTelemetry) -> None:
        """What measured this cell's energy, or why nothing did, into run.json."""
        manifest = self.read_run()
        manifest.telemetry[cell] = telemetry
        write_model(self.run_json, manifest)

    def record_cluster(self, cluster: ClusterView) -> None:
        """The cluster this invocation runs on (its nodes and their mismatches), into run.json."""
        manifest = self.read_run()
        manifest.invocations[-1].cluster = cluster
        write_model(self.run_json, manifest)

    def save_summary(self, frame: pd.DataFrame) -> None:
        write_atomic(self.summary_csv, frame.to_csv(index=False).encode())

    # --- points, capacities and failures --------------------------------------------------

    def read_point(self, cell: str, point: str) -> PointResult | None:
        """The stored point, or None when it is not (validly) there: it is to be measured."""
        try:
            return read_model(self.point_json(cell, point), PointResult)
        except ResultsError:
            return None

    def point_done(self, cell: str, point: str) -> bool:
        return self.read_point(cell, point) is not None

    def save_point(self, result: PointResult, requests: pd.DataFrame,
                   telemetry: pd.DataFrame | None = None) -> None:
        cell, point = result.cell, result.point
        write_parquet(self.requests_parquet(cell, point), requests)
        if telemetry is not None and not telemetry.empty:
            write_parquet(self.telemetry_parquet(cell, point), telemetry)
        write_model(self.point_json(cell, point), result)  # last: marks the point finished

    def read_capacity(self, cell: str) -> CapacityRecord | None:
        try:
            return read_model(self.capacity_json(cell), CapacityRecord)
        except ResultsError:
            return None

    def save_capacity(self, cell: str, record: CapacityRecord) -> None:
        write_model(self.capacity_json(cell), record)

    def record_failure(self, failure: CellFailure) -> None:
        write_model(self.failure_json(failure.cell), failure)

    def clear_failure(self, cell: str) -> None:
        self.failure_json(cell).unlink(missing_ok=True)

    def _read_all(self, pattern: str, model: type[Model],
                  problems: list[str]) -> list[tuple[Path, Model]]:
        found = []
        for path in sorted(self.root.glob(pattern)):
            try:
                found.append((path, read_model(path, model)))
            except ResultsError as err:
                problems.append(str(err))
        return found

    def load(self) -> StoredRun:
        """The whole directory as typed models; ResultsError when it is not a run of this
        schema. Unreadable files are listed in `problems`, never taken as zero."""
        manifest = self.read_run()
        problems: list[str] = []
        points = self._read_all("cells/*/points/*.json", PointResult, problems)
        failures = self._read_all("cells/*/failed.json", CellFailure, problems)
        capacities = self._read_all("cells/*/capacity.json", CapacityRecord, problems)
        return StoredRun(self.root, manifest, [point for _, point in points],
                         [failure for _, failure in failures],
                         {path.parent.name: record for path, record in capacities}, problems)
