"""The results directory (its layout: harness/contract/layout.py): atomic writes, resume,
and reading it back as typed models.

Every file is written under a temporary name and renamed into place, and a point's JSON is
written after its parquet files: a point counts as finished only when its JSON reads back as a
valid PointResult. Its checksums are written last (`sha256sum -c <point>.sha256` in the points
folder checks them; so does `harness validate`). Files of another schema version are refused
with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError

from harness.config.base import STORED, first_error
from harness.contract.fidelity import FidelityRecord
from harness.contract.layout import (
    CAPACITY_FILES,
    FAILURE_FILES,
    FIDELITY_FILES,
    POINT_FILES,
    RunLayout,
)
from harness.contract.manifest import CellTelemetry, Invocation, RunManifest
from harness.contract.placement import ClusterView
from harness.contract.results import CapacityRecord, CellFailure, PointResult
from harness.contract.stored import SCHEMA_VERSION
from harness.contract.tune import TuneRecord

Model = TypeVar("Model", bound=BaseModel)
ROW_GROUP = 1024  # requests per parquet row group: what the writer holds encoded at once


class ResultsError(Exception):
    """A results directory that cannot be read as asked: the message is one line saying why
    and what to do."""


class ResultsLost(ResultsError):
    """The results directory cannot take a finished point any more: removed during the run,
    or its disk full or failing. What was saved before stays as it was."""


class StoreMismatch(ResultsError):
    """The results directory holds a run of a different config."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new temporary file in `path`'s folder, to be renamed onto it. It gets the mode `path`
    has, or (a new file) the mode open() gives (0666 less the umask), where mkstemp's 0600
    would leave results that others on the machine, or a web server, cannot read."""
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = None
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            os.fchmod(fd, mode)
        return fd, str(tmp)
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
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


def write_parquet(path: Path, frame: pd.DataFrame | pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        if isinstance(frame, pa.Table):
            pq.write_table(frame, tmp, row_group_size=ROW_GROUP)  # encoded a group at a time
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(path: Path, files: list[Path]) -> None:
    """`path` in `sha256sum` format: one `<hex>  <name>` line per file (names relative to
    the folder `path` is in)."""
    lines = [f"{sha256_of(file)}  {file.relative_to(path.parent)}\n" for file in files]
    write_atomic(path, "".join(lines).encode())


def read_checksums(path: Path) -> dict[str, str] | None:
    """name -> SHA-256 from a `sha256sum` file; None when there is none."""
    try:
        text = path.read_text()
    except OSError:
        return None
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {name.strip().lstrip("*"): digest for digest, name in pairs}


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
    fidelity: dict[str, FidelityRecord] = field(default_factory=dict)  # by variant
    tune: TuneRecord | None = None  # a run of `harness tune`: its trials

    @property
    def name(self) -> str:
        return self.manifest.run


class RunStore(RunLayout):
    """Writes and reads one results directory."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.began = False  # this process began (or resumed) the run in it

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
        self.began = True
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

    def check_present(self, cell: str, point: str) -> None:
        """Refuse to save into a results directory removed during the run (never made again)."""
        if self.began and not self.run_json.exists():
            raise ResultsLost(f"{self.root}: the results directory (its run.json) was removed "
                              f"during the run; point {cell}/{point} was not saved")

    def save_point(self, result: PointResult, requests: pd.DataFrame | pa.Table | Path,
                   telemetry: pd.DataFrame | None = None) -> None:
        """Write the point's files, its JSON last (it marks the point finished). `requests`
        may be a requests file written already (harness/store/spool.py): it is moved into place."""
        cell, point = result.cell, result.point
        self.check_present(cell, point)
        files = [self.requests_parquet(cell, point)]
        try:
            if isinstance(requests, Path):
                os.replace(requests, files[0])
            else:
                write_parquet(files[0], requests)
            if telemetry is not None and not telemetry.empty:
                files.append(self.telemetry_parquet(cell, point))
                write_parquet(files[-1], telemetry)
            write_model(self.point_json(cell, point), result)  # marks the point finished
            write_checksums(self.checksums(cell, point), [self.point_json(cell, point), *files])
        except OSError as err:  # disk full, read-only, gone: earlier points are untouched
            self.point_json(cell, point).unlink(missing_ok=True)
            raise ResultsLost(f"{self.root}: cannot save point {cell}/{point} "
                              f"({err.strerror or err}); earlier points are kept") from None

    def read_capacity(self, cell: str) -> CapacityRecord | None:
        try:
            return read_model(self.capacity_json(cell), CapacityRecord)
        except ResultsError:
            return None

    def save_capacity(self, cell: str, record: CapacityRecord) -> None:
        write_model(self.capacity_json(cell), record)

    def read_fidelity(self, variant: str) -> FidelityRecord | None:
        try:
            return read_model(self.fidelity_json(variant), FidelityRecord)
        except ResultsError:
            return None

    def read_fidelity_tokens(self, variant: str) -> pd.DataFrame | None:
        try:
            return pd.read_parquet(self.fidelity_parquet(variant))
        except (OSError, ValueError):
            return None

    def save_fidelity(self, record: FidelityRecord, tokens: pd.DataFrame | None) -> None:
        if tokens is not None:
            write_parquet(self.fidelity_parquet(record.variant), tokens)
        write_model(self.fidelity_json(record.variant), record)  # last: marks it finished

    def read_tune(self) -> TuneRecord | None:
        """tune/trials.json of a tuned run (None: the run was not tuned)."""
        if not self.trials_json.exists():
            return None
        return read_model(self.trials_json, TuneRecord)

    def save_tune(self, record: TuneRecord) -> None:
        write_model(self.trials_json, record)

    def read_failure(self, cell: str) -> CellFailure | None:
        try:
            return read_model(self.failure_json(cell), CellFailure)
        except ResultsError:
            return None

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
        points = self._read_all(POINT_FILES, PointResult, problems)
        failures = self._read_all(FAILURE_FILES, CellFailure, problems)
        capacities = self._read_all(CAPACITY_FILES, CapacityRecord, problems)
        fidelity = self._read_all(FIDELITY_FILES, FidelityRecord, problems)
        tune = None
        try:
            tune = self.read_tune()
        except ResultsError as err:
            problems.append(str(err))
        return StoredRun(self.root, manifest, [point for _, point in points],
                         [failure for _, failure in failures],
                         {path.parent.name: record for path, record in capacities}, problems,
                         {record.variant: record for _, record in fidelity}, tune)
