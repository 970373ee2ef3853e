"""Reading the cost model's YAML files (profiles, price files) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from harness.config import first_error as first_validation_error
from harness.config import read_yaml_mapping

Model = TypeVar("Model", bound=BaseModel)


class CostInputError(Exception):
    """A user error in a cost input file: one line naming the file and what to fix."""


def read_mapping(path: Path, what: str) -> dict:
    """The top-level mapping of a YAML file; `what` names the file in messages ("profile")."""
    return read_yaml_mapping(path, what, CostInputError, empty_ok=True)


def load_model(path: Path, model: type[Model], what: str) -> Model:
    """Read a YAML file and validate it as `model`; every problem is one CostInputError line."""
    raw = read_mapping(path, what)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise CostInputError(f"{path}: {first_validation_error(err)}") from None
