"""The best trial, ready to use: a config for `harness run` and the `vllm serve` line."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from harness.config.base import ConfigError, read_yaml_mapping
from harness.contract.plan import Cell
from harness.engines.vllm import options_to_args
from harness.run.tune_space import TuneSpace


def best_config(config_path: Path, space: TuneSpace, params: dict[str, Any],
                trials: int) -> str:
    """The config file the tune read, its matrix the best trial's cell, its `tune` gone."""
    raw = read_yaml_mapping(config_path, "config", ConfigError)
    cell = space.cell(params)
    raw.pop("tune", None)
    base = cell.options | ({"model": cell.model} if cell.model != space.config.model else {})
    engine_options = space.config.engine.options
    variant = {k: v for k, v in base.items() if engine_options.get(k, object()) != v}
    raw["matrix"] = {"variants": {cell.variant: variant}}
    if cell.max_num_seqs is not None:
        raw["matrix"]["max_num_seqs"] = [cell.max_num_seqs]
    if cell.tensor_parallel_size != 1:
        raw["matrix"]["tensor_parallel_size"] = [cell.tensor_parallel_size]
    if raw.get("fidelity"):
        raw.pop("fidelity")  # one variant left: nothing to score against
    head = (f"# The best of {trials} trials of `harness tune {config_path}`: "
            f"{cell.variant}, batch {cell.max_num_seqs}.\n"
            f"# Run it: harness run <this file>\n")
    return head + yaml.safe_dump(raw, sort_keys=False)


def serve_command(cell: Cell, served_model: str | None = None) -> str:
    """`vllm serve MODEL --max-num-seqs N ...`: the trial's server as you would start it."""
    options = {**cell.options, "max_num_seqs": cell.max_num_seqs,
               "tensor_parallel_size": cell.tensor_parallel_size}
    if served_model:
        options["served_model_name"] = served_model
    return shlex.join(["vllm", "serve", cell.model, *options_to_args(options)])
