"""Expand a config's matrix into server cells (one vLLM launch each) and their load points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config import DUMMY_PREFIX, ExperimentConfig


@dataclass(frozen=True)
class Point:
    """One measurement on a running server: closed-loop load at a fixed concurrency."""

    concurrency: int
    requests: int | None
    duration_s: float | None

    @property
    def id(self) -> str:
        return f"c{self.concurrency}"


@dataclass(frozen=True)
class Cell:
    """One server launch: a variant at one batch size (max_num_seqs) and parallelism."""

    variant: str
    max_num_seqs: int | None  # None: the engine's own default
    tensor_parallel_size: int
    model: str
    options: dict[str, Any]
    points: tuple[Point, ...]

    @property
    def id(self) -> str:
        batch = f"-b{self.max_num_seqs}" if self.max_num_seqs is not None else ""
        tp = f"-tp{self.tensor_parallel_size}" if self.tensor_parallel_size > 1 else ""
        return f"{self.variant}{batch}{tp}"

    @property
    def is_dummy(self) -> bool:
        return self.model.startswith(DUMMY_PREFIX)


def build_plan(config: ExperimentConfig) -> list[Cell]:
    """Cells in the order they run: variant, then tensor parallelism, then batch size."""
    points = tuple(Point(c, config.load.requests, config.load.duration_s)
                   for c in config.load.concurrency)
    cells = []
    for variant, variant_options in config.matrix.variants.items():
        options = {**config.engine.options, **variant_options}
        model = options.pop("model", None) or config.model
        for tp in config.matrix.tensor_parallel_size:
            for batch in config.matrix.max_num_seqs or [None]:
                cells.append(Cell(variant, batch, tp, model, options, points))
    return cells
