"""Reading the cost model's YAML files (profiles, price files) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.config import _first_error as first_validation_error

Model = TypeVar("Model", bound=BaseModel)


class CostInputError(Exception):
    """A user error in a cost input file: one line naming the file and what to fix."""


def read_mapping(path: Path, what: str) -> dict:
    """The top-level mapping of a YAML file; `what` names the file in messages ("profile")."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CostInputError(f"{path}: no such {what} file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError, OSError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise CostInputError(f"{path}: cannot read the {what} ({reason})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise CostInputError(f"{path}: invalid YAML{where}: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CostInputError(f"{path}: expected a mapping of settings at the top level")
    return raw


def load_model(path: Path, model: type[Model], what: str) -> Model:
    """Read a YAML file and validate it as `model`; every problem is one CostInputError line."""
    raw = read_mapping(path, what)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise CostInputError(f"{path}: {first_validation_error(err)}") from None
