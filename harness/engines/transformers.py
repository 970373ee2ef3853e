"""`transformers serve --continuous-batching`: the engine for GPU machines without vLLM.

It takes text prompts only (no token ids), rejects fields it does not know (`ignore_eos` gets
HTTP 422) and has no /metrics; the output length is pinned through its own `generation_config`
request field (min_new_tokens = max_new_tokens). It loads real weights: a dummy model needs
random weights written first (harness.engines.dummy_model.ensure_dummy_weights).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.config import ExperimentConfig
from harness.contract.plan import Cell
from harness.contract.server import HF_GENERATION_CONFIG, ServerHandle
from harness.engines.models import resolve_model
from harness.engines.process import ProcessEngine
from harness.engines.vllm import options_to_args

TRANSFORMERS_EXTENSIONS = frozenset({HF_GENERATION_CONFIG})


class TransformersEngine(ProcessEngine):
    kind = "transformers"
    requires = ("transformers", "fastapi", "uvicorn", "accelerate")
    distributions = ("transformers",)
    install_hint = "pip install '.[hf]'"

    @classmethod
    def for_cell(cls, config: ExperimentConfig, cell: Cell, log_path: Path,
                 create: bool = True) -> TransformersEngine:
        model, _ = resolve_model(cell.model, create, weights=True, seed=config.seed)
        engine = config.engine
        return cls(model, cell.options, log_path, env=engine.env, python=engine.python,
                   startup_timeout_s=engine.startup_timeout_s, gpus=engine.gpus)

    def __init__(self, model: str, options: Mapping[str, Any], log_path: Path, *,
                 env: Mapping[str, str] | None = None, python: str | None = None,
                 startup_timeout_s: float = 900.0, gpus: str | None = None):
        super().__init__(log_path, env=dict(env or {}), startup_timeout_s=startup_timeout_s,
                         gpus=gpus)
        self.model = model
        self.options = dict(options)
        self.python = python or sys.executable

    def command(self, port: int) -> list[str]:
        # The model is pinned (force_model): requests must name it exactly as given here.
        return [self.python, "-m", "transformers.cli.transformers", "serve", self.model,
                "--continuous-batching", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "info", *self.device_args(), *options_to_args(self.options)]

    def device_args(self) -> list[str]:
        """transformers serve spreads a model over every visible GPU by default (--device
        auto is device_map="auto"), while the harness measures the cell's: with GPUs given
        (CUDA_VISIBLE_DEVICES, set to the measured ones) it is pinned to the first of them."""
        if "device" in self.options or not self.gpus:
            return []
        return ["--device", "cuda:0"]

    def handle(self) -> ServerHandle:
        return ServerHandle(self.base_url, self.model, TRANSFORMERS_EXTENSIONS)

    def probe_request(self) -> dict:
        # The first request also initialises continuous batching (tens of seconds on a CPU).
        return {"model": self.model, "prompt": "hello", "max_tokens": 2,
                "generation_config": json.dumps({"max_new_tokens": 2, "min_new_tokens": 2})}
