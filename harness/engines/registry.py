"""Every engine kind, by the `kind` its config names: the one place that lists them."""

from __future__ import annotations

from pathlib import Path

from harness.config import ExperimentConfig
from harness.contract.plan import Cell
from harness.engines.base import Engine
from harness.engines.external import ExternalEngine
from harness.engines.transformers import TransformersEngine
from harness.engines.vllm import VllmEngine

ENGINES: dict[str, type[Engine]] = {
    engine.kind: engine for engine in (VllmEngine, TransformersEngine, ExternalEngine)}


def engine_type(config: ExperimentConfig) -> type[Engine]:
    return ENGINES[config.engine.kind]


def make_engine(config: ExperimentConfig, cell: Cell, log_path: Path,
                create: bool = True) -> Engine:
    return engine_type(config).for_cell(config, cell, log_path, create)
