"""Named workloads (`matrix.workloads`): each kind of request a run measures, written as the
keys it changes in the run's `workload` section. Every cell of the matrix is measured at each
one; its cell id carries the name (`bf16-chat-b16`)."""

from __future__ import annotations

import re
from typing import Any

from harness.config.load import WorkloadConfig

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")


def check_names(value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Workload names are letters, digits and '_' (no '-': the cell id is
    `<variant>-<workload>[-b<N>][-tp<N>]`, and a name without '-' keeps it unambiguous)."""
    checked = {}
    for name, override in value.items():
        if not NAME.fullmatch(str(name)):
            raise ValueError(f"workload name {name!r} must be letters, digits or '_'")
        if override is not None and not isinstance(override, dict):
            raise ValueError(f"workload {name!r}: give the `workload` keys it changes, e.g. "
                             "{input_tokens: 256, output_tokens: 128}")
        checked[str(name)] = dict(override or {})
    return checked


def merged(base: WorkloadConfig, override: dict[str, Any]) -> WorkloadConfig:
    """The run's workload with a named workload's keys put over it; a prompts file replaces
    generated prompts and the other way round."""
    raw = base.model_dump(exclude_none=True)
    if "prompts" in override:
        raw.pop("input_tokens", None)
    if "input_tokens" in override:
        raw.pop("prompts", None)
    return WorkloadConfig.model_validate({**raw, **override})
