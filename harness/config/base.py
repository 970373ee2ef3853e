"""What every YAML input shares: strict models, one-line errors, scalars as one-item lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo


class ConfigError(Exception):
    """A user error in the config: the message is one line naming the file and the field."""


class ConfigDeprecation(FutureWarning):
    """An old config key that still works: the command line prints it as one `warning:` line
    saying what to write instead."""


class Strict(BaseModel):
    """Unknown keys and non-finite numbers (`.inf`, `.nan`) are refused in every input."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key written twice in one mapping (where the plain
    loader lets the last value silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first_line.get(key)
            except TypeError:  # an unhashable key: the base loader says so
                break
            if earlier is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first set at line {earlier})",
                    key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


STORED = {"stored": True}  # validation context: a config read back from a results directory


def is_stored(info: ValidationInfo) -> bool:
    """True when validating a config stored with a run: files it names (lengths files) may
    be on another machine, so they are not opened."""
    return bool(info.context and info.context.get("stored"))


def as_list(value: Any) -> Any:
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def read_yaml_mapping(path: Path, what: str, error: type[Exception],
                      empty_ok: bool = False) -> dict:
    """The top-level mapping of a YAML file; every problem is `error` with one line naming the
    file (and the line of a YAML syntax error). `what` names the file: "config", "profile"."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError, OSError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise error(f"{path}: cannot read the {what} ({reason})") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise error(f"{path}: invalid YAML{where}: {problem}") from None
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping of settings at the top level")
    return raw


def first_error(err: ValidationError) -> str:
    """The first validation problem as 'field.path: message (and N more)'."""
    errors = err.errors()
    first = errors[0]
    # (a union's member tags, such as `function-after[_range(), CapacityConfig]`, are no field)
    loc = ".".join(str(part) for part in first["loc"] if "[" not in str(part))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {msg}{more}" if loc else f"{msg}{more}"
