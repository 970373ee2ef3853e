"""The space `harness tune` searches, and the cell each point of it is.

A trial's parameters make its cell: its variant (one of the matrix's), batch size and
parallelism choose the cell as the matrix does; every other parameter is an engine option. The
cell's variant is named after its parameters (`bf16-mnbt1024-ecpoff`), so every view of the run
tells trials apart, and the same parameters always make the same cell: a trial measured once is
read back, never measured again.
"""

from __future__ import annotations

import re
from typing import Any

import optuna

from harness.config import ExperimentConfig
from harness.config.tune import VARIANT, FloatRange, IntRange, Parameter
from harness.contract.plan import Cell, load_points, trace_points

MATRIX_AXES = ("max_num_seqs", "tensor_parallel_size")


class TuneSpace:
    def __init__(self, config: ExperimentConfig):
        assert config.tune is not None
        self.config = config
        self.parameters: dict[str, Parameter] = dict(config.tune.space)
        implicit = {VARIANT: list(config.matrix.variants),
                    "max_num_seqs": config.matrix.max_num_seqs or [],
                    "tensor_parallel_size": config.matrix.tensor_parallel_size}
        for name in config.tuned_parameters():
            if name not in self.parameters:
                self.parameters[name] = implicit[name]
        self.short = short_names(list(self.parameters))
        replay = config.replayed_trace()
        self.points = load_points(config.load, replay) + trace_points(replay)

    # --- proposing -----------------------------------------------------------------------

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {name: suggest(trial, name, parameter)
                for name, parameter in self.parameters.items()}

    def grid(self) -> dict[str, list] | None:
        """Every value of every parameter (None: a float range without a step has no grid)."""
        grid = {}
        for name, parameter in self.parameters.items():
            values = parameter if isinstance(parameter, list) else parameter.grid()
            if values is None:
                return None
            grid[name] = [categorical(v) for v in values]
        return grid

    def grid_size(self) -> int | None:
        grid = self.grid()
        if grid is None:
            return None
        size = 1
        for values in grid.values():
            size *= len(values)
        return size

    def neighbours(self, params: dict[str, Any],
                   order: list[str] | None = None) -> list[dict[str, Any]]:
        """`params` with one parameter moved to the next value up or down (a range: one step,
        or x2 on a log scale), parameter by parameter in `order` (default: the space's)."""
        found = []
        for name in order or list(self.parameters):
            for value in adjacent(self.parameters[name], params[name]):
                found.append({**params, name: value})
        return found

    def described(self) -> dict[str, Any]:
        return {name: p if isinstance(p, list) else p.model_dump()
                for name, p in self.parameters.items()}

    # --- the cell of a trial -------------------------------------------------------------

    def cell(self, params: dict[str, Any]) -> Cell:
        config, matrix = self.config, self.config.matrix
        params = {name: uncategorical(self.parameters[name], value)
                  for name, value in params.items()}
        base = params.get(VARIANT, next(iter(matrix.variants)))
        options = {**config.engine.options, **matrix.variants[base], **self.options(params)}
        model = options.pop("model", None) or config.model
        batch = params.get("max_num_seqs", (matrix.max_num_seqs or [None])[0])
        parallel = params.get("tensor_parallel_size", matrix.tensor_parallel_size[0])
        return Cell(self.variant_name(base, params), batch, parallel, model, options,
                    self.points, fidelity_of=self.fidelity_family(base, params))

    def options(self, params: dict[str, Any]) -> dict[str, Any]:
        """The engine options among the parameters (not the variant, batch or parallelism)."""
        return {name: params[name] for name in self.parameters  # in the space's order
                if name in params and name != VARIANT and name not in MATRIX_AXES}

    def variant_name(self, base: str, params: dict[str, Any]) -> str:
        """`bf16-mnbt1024-ecpoff`: the variant, then each option's initials and value (a
        lone `default` variant left out)."""
        parts = [f"{self.short[name]}{token(value)}"
                 for name, value in self.options(params).items()]
        alone = list(self.config.matrix.variants) == ["default"]
        return "-".join(parts if alone and parts else [base, *parts])

    def fidelity_family(self, base: str, params: dict[str, Any]) -> str:
        """Whose fidelity the trial shares: its matrix variant, with the quantization options
        it sets away from their first listed value (the baseline's)."""
        assert self.config.tune is not None
        changed = [f"{self.short[name]}{token(params[name])}"
                   for name in self.config.tune.quantization_parameters()
                   if name in params and params[name] != first(self.parameters[name])]
        return "-".join([base, *changed])

    def first_params(self) -> dict[str, Any]:
        """Every parameter at its first value: the fidelity baseline's trial, measured first
        (its variant the fidelity baseline where the variants are searched)."""
        params = {name: categorical(first(p)) for name, p in self.parameters.items()}
        if VARIANT in params and self.config.fidelity_baseline is not None:
            params[VARIANT] = self.config.fidelity_baseline
        return params


def adjacent(parameter: Parameter, value: Any) -> list[Any]:
    """The values next to `value`: a list's neighbours in its order; a range's next step."""
    if isinstance(parameter, list):
        values = [categorical(v) for v in parameter]
        at = values.index(value) if value in values else 0
        return [values[i] for i in (at + 1, at - 1) if 0 <= i < len(values)]
    if parameter.log:
        moved = [value * 2, value / 2]
    else:
        step = parameter.step or (parameter.high - parameter.low) / 8
        moved = [value + step, value - step]
    if isinstance(parameter, IntRange):
        moved = [int(round(v)) for v in moved]
    return [v for v in moved if parameter.low <= v <= parameter.high]


def suggest(trial: optuna.Trial, name: str, parameter: Parameter) -> Any:
    if isinstance(parameter, IntRange):
        return trial.suggest_int(name, parameter.low, parameter.high,
                                 step=parameter.step, log=parameter.log)
    if isinstance(parameter, FloatRange):
        return trial.suggest_float(name, parameter.low, parameter.high,
                                   step=parameter.step, log=parameter.log)
    return trial.suggest_categorical(name, [categorical(v) for v in parameter])


def categorical(value: Any) -> Any:
    """Optuna's categorical values are None, bool, int, float or str: a list or mapping value
    (a JSON option) is proposed as its JSON text."""
    if isinstance(value, list | dict):
        import json

        return json.dumps(value, sort_keys=True)
    return value


def uncategorical(parameter: Parameter, value: Any) -> Any:
    if isinstance(parameter, list):
        for option in parameter:
            if categorical(option) == value:
                return option
    return value


def first(parameter: Parameter) -> Any:
    return parameter[0] if isinstance(parameter, list) else parameter.low


def short_names(names: list[str]) -> dict[str, str]:
    """max_num_batched_tokens -> mnbt: each word's initial; the whole name where two collide."""
    initials = {name: "".join(word[0] for word in name.split("_") if word) for name in names}
    counts = {short: list(initials.values()).count(short) for short in initials.values()}
    return {name: short if counts[short] == 1 else name.replace("_", "")
            for name, short in initials.items()}


def token(value: Any) -> str:
    """A value as it reads in a cell name: on/off, 1024, 0.9, fp8."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    if value is None:
        return "none"
    text = f"{value:g}" if isinstance(value, float) else str(categorical(value))
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_") or "x"
