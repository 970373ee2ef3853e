"""The model an engine loads for a cell: a dummy shape written on first use (random weights
of a real shape), a local path, or a hub id; and the name requests use for it."""

from __future__ import annotations

from pathlib import Path

from harness.config import DUMMY_PREFIX, ExperimentConfig
from harness.engines.dummy_model import (
    dummy_model_dir,
    dummy_weights_dir,
    ensure_dummy_model,
    ensure_dummy_weights,
)


def resolve_model(model: str, create: bool = True, weights: bool = False,
                  seed: int = 0) -> tuple[str, dict]:
    """A model the engine can load, plus options it needs (dummy shapes load random weights:
    the engine's own dummy initialisation, or with `weights` a checkpoint seeded by `seed`).

    With create=False nothing is written (for --dry-run).
    """
    if model.startswith(DUMMY_PREFIX):
        shape = model[len(DUMMY_PREFIX):]
        if not create:
            if weights:
                return str(dummy_weights_dir(shape, seed)), {}
            return str(dummy_model_dir(shape)), {"load_format": "dummy"}
        if weights:
            return str(ensure_dummy_weights(shape, seed)), {}
        return str(ensure_dummy_model(shape)), {"load_format": "dummy"}
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model, {}


def served_name(config: ExperimentConfig, model: str) -> str:
    if config.served_model_name:
        return config.served_model_name
    return model[len(DUMMY_PREFIX):] if model.startswith(DUMMY_PREFIX) else model
