"""Token-length distributions for prompts and outputs: fixed, uniform, normal, lognormal, or
empirical (a CSV, JSONL or plain list of lengths). Draws are integers, exact in tokens."""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt, ValidationInfo, model_validator

from harness.config.base import Strict, is_stored


class LengthsFileError(ValueError):
    """A lengths file is missing or malformed; the message names the file (and line)."""


class LengthDist(Strict):
    dist: Literal["fixed", "uniform", "normal", "lognormal", "empirical"]
    value: PositiveInt | None = None  # fixed
    min: PositiveInt | None = None  # uniform (required); normal/lognormal: clip
    max: PositiveInt | None = None  # uniform (required); normal/lognormal: clip
    mean: PositiveFloat | None = None  # normal
    std: PositiveFloat | None = None  # normal
    median: PositiveFloat | None = None  # lognormal
    sigma: PositiveFloat | None = Field(None, description="lognormal: sigma of log(length)")
    file: str | None = None  # empirical
    column: str | None = None  # empirical: CSV column or JSONL key

    @model_validator(mode="after")
    def _fields_for_dist(self, info: ValidationInfo) -> LengthDist:
        needed = {"fixed": ("value",), "uniform": ("min", "max"), "normal": ("mean", "std"),
                  "lognormal": ("median", "sigma"), "empirical": ("file",)}[self.dist]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.dist} distribution needs {', '.join(missing)}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.dist == "empirical" and not is_stored(info):
            empirical_lengths(self.file, self.column)  # fail now, naming the file and line
        return self

    def bound(self) -> int | None:
        """The largest length it can draw, or None if unbounded."""
        if self.dist == "fixed":
            return self.value
        if self.dist == "empirical":
            return int(max(empirical_lengths(self.file, self.column)))
        return self.max

    def draw(self, rng: np.random.Generator) -> int:
        if self.dist == "fixed":
            return self.value
        if self.dist == "uniform":
            return int(rng.integers(self.min, self.max + 1))
        if self.dist == "empirical":
            values = empirical_lengths(self.file, self.column)
            return int(values[rng.integers(0, len(values))])
        if self.dist == "normal":
            raw = rng.normal(self.mean, self.std)
        else:
            raw = rng.lognormal(np.log(self.median), self.sigma)
        return int(np.clip(round(raw), self.min or 1, self.max or np.iinfo(np.int32).max))


    def describe(self) -> str:
        if self.dist == "fixed":
            return str(self.value)
        if self.dist == "uniform":
            return f"uniform {self.min}-{self.max}"
        if self.dist == "normal":
            return f"normal {self.mean:g}±{self.std:g}"
        if self.dist == "lognormal":
            return f"lognormal median {self.median:g}, sigma {self.sigma:g}"
        return f"empirical from {self.file}"


def fixed_if_number(value: object) -> object:
    """`input_tokens: 128` means a fixed length of 128."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


@lru_cache(maxsize=16)
def empirical_lengths(file: str, column: str | None = None) -> tuple[int, ...]:
    """Lengths from a file: CSV with a header (`column`, or the only column), JSONL objects
    (`column` is the key), or one number per line."""
    path = Path(file).expanduser()
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise LengthsFileError(f"lengths file {file}: {err.strerror or err}") from None
    rows = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise LengthsFileError(f"lengths file {file}: no lengths in it")
    if rows[0][1].startswith("{"):
        values = [_jsonl_value(file, number, line, column) for number, line in rows]
    elif _is_number(rows[0][1]) and column is None:
        values = [_positive(file, number, line) for number, line in rows]
    else:
        values = _csv_values(file, rows, column)
    return tuple(values)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _positive(file: str, number: int, text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise LengthsFileError(f"lengths file {file}, line {number}: {text!r} is not a number") \
            from None
    if value < 1 or not value.is_integer():
        raise LengthsFileError(f"lengths file {file}, line {number}: {text!r} is not a "
                               "positive whole number of tokens")
    return int(value)


def _jsonl_value(file: str, number: int, line: str, column: str | None) -> int:
    try:
        record = json.loads(line)
    except ValueError:
        raise LengthsFileError(f"lengths file {file}, line {number}: not valid JSON") from None
    if column is None or not isinstance(record, dict) or column not in record:
        raise LengthsFileError(f"lengths file {file}, line {number}: no key "
                               f"{column!r} (set `column`)")
    return _positive(file, number, str(record[column]))


def _csv_values(file: str, rows: list[tuple[int, str]], column: str | None) -> list[int]:
    header = next(csv.reader([rows[0][1]]))
    if column is None and len(header) == 1:
        column = header[0]
    if column not in header:
        raise LengthsFileError(f"lengths file {file}, line {rows[0][0]}: no column "
                               f"{column!r} in the header {header} (set `column`)")
    at = header.index(column)
    values = []
    for number, line in rows[1:]:
        cells = next(csv.reader([line]))
        if at >= len(cells):
            raise LengthsFileError(f"lengths file {file}, line {number}: no {column!r} value")
        values.append(_positive(file, number, cells[at]))
    if not values:
        raise LengthsFileError(f"lengths file {file}: a header and no lengths")
    return values
