"""The results directory: layout, atomic writes, resume.

    <run>/run.json                                 config, hash, versions, host, start/end
    <run>/cells/<cell>/server.log                  the engine's own log
    <run>/cells/<cell>/failed.json                 why a cell could not be measured (if it failed)
    <run>/cells/<cell>/points/<point>.json         one load point's result
    <run>/cells/<cell>/points/<point>.requests.parquet   one row per request
    <run>/summary.csv                              one row per (cell, point)

Every file is written under a temporary name and renamed into place, and a point's JSON is
written after its parquet file: a point counts as finished only when its JSON parses.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 1


class StoreMismatch(Exception):
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


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


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
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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

    # --- run ---------------------------------------------------------------------------

    def begin(self, info: dict[str, Any]) -> dict[str, Any]:
        """Create run.json, or check an existing one holds the same config and add this start."""
        existing = read_json(self.run_json) if self.run_json.exists() else None
        if self.run_json.exists() and existing is None:
            raise StoreMismatch(f"{self.run_json} is not readable JSON; move it away to start over")
        started = now_iso()
        if existing is not None:
            if existing.get("config_hash") != info["config_hash"]:
                raise StoreMismatch(
                    f"{self.root} holds a run of a different config (hash "
                    f"{existing.get('config_hash')}, this config {info['config_hash']}); "
                    f"pass --out to write elsewhere")
            run = {**existing, **{k: v for k, v in info.items() if k == "config"}}
        else:
            run = {"schema": SCHEMA_VERSION, **info, "started_at": started}
        run.setdefault("invocations", []).append(
            {"started_at": started, "ended_at": None, "status": "running",
             "harness_version": info.get("harness_version"), "host": info.get("host")})
        run["ended_at"] = None
        run["status"] = "running"
        write_json(self.run_json, run)
        return run

    def end(self, status: str) -> None:
        run = read_json(self.run_json)
        if run is None:
            return
        ended = now_iso()
        run["ended_at"], run["status"] = ended, status
        if run.get("invocations"):
            run["invocations"][-1].update(ended_at=ended, status=status)
        write_json(self.run_json, run)

    # --- points and failures -----------------------------------------------------------

    def point_done(self, cell: str, point: str) -> bool:
        return read_json(self.point_json(cell, point)) is not None

    def save_point(self, cell: str, point: str, result: dict, requests: pd.DataFrame,
                   telemetry: pd.DataFrame | None = None) -> None:
        write_parquet(self.requests_parquet(cell, point), requests)
        if telemetry is not None and not telemetry.empty:
            write_parquet(self.telemetry_parquet(cell, point), telemetry)
        write_json(self.point_json(cell, point), result)  # last: marks the point finished

    def record_telemetry(self, cell: str, gpus: list[dict], gpu_reason: str | None,
                         cpu_reason: str | None) -> None:
        """What measured this cell's energy (GPU facts), or why nothing did, into run.json."""
        run = read_json(self.run_json) or {}
        run.setdefault("telemetry", {})[cell] = {
            "gpus": gpus,
            "gpu_energy": "measured (NVML energy counter)" if gpu_reason is None
            else f"not measured: {gpu_reason}",
            "cpu_energy": "measured (RAPL package counters)" if cpu_reason is None
            else f"not measured: {cpu_reason}",
        }
        write_json(self.run_json, run)

    def record_failure(self, cell: str, failure: dict) -> None:
        write_json(self.failure_json(cell), {"failed_at": now_iso(), **failure})

    def clear_failure(self, cell: str) -> None:
        self.failure_json(cell).unlink(missing_ok=True)

    def points(self) -> list[dict]:
        found = []
        for path in sorted(self.root.glob("cells/*/points/*.json")):
            result = read_json(path)
            if result is not None:
                found.append(result)
        return found

    def failures(self) -> list[dict]:
        found = []
        for path in sorted(self.root.glob("cells/*/failed.json")):
            failure = read_json(path)
            if failure is not None:
                found.append(failure)
        return found
