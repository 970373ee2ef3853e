"""Secrets and exposure, and server faults through a whole `harness run`: an external server
(the mock, injecting faults) measured with an API key that reaches no file and no output, a
run.json whose environment is an allowlist, and servers that listen on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from harness.engines.transformers import TransformersEngine
from harness.engines.vllm import VllmEngine
from harness.mock import MockServer, Schedule

KEY = "sk-mock-0b7e55d1c2"
NOT_RECORDED = "not-for-run-json-93f1"
FAULTS = "ok,http500,http429,reset:1,stall:0,malformed,no-usage,bad-usage,ok"


def files_containing(root: Path, text: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_a_run_against_a_faulty_server_keeps_every_request_and_no_secret(tmp_path, tiny_model):
    with MockServer(Schedule(0.002), faults=FAULTS) as mock:
        config = {
            "model": "tiny", "tokenizer": str(tiny_model),
            "engine": {"kind": "external", "url": mock.base_url, "api_key_env": "MOCK_KEY"},
            "workload": {"input_tokens": 16, "output_tokens": 4},
            "load": {"concurrency": [1], "requests": 18, "warmup_requests": 0,
                     "request_timeout_s": 1.0},
        }
        path = tmp_path / "faulty.yaml"
        path.write_text(yaml.safe_dump(config))
        out = tmp_path / "results"
        env = {**os.environ, "MOCK_KEY": KEY, "OMP_NUM_THREADS": "2",
               "SOME_TOKEN": NOT_RECORDED}
        result = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path),
                                 "--out", str(out)], capture_output=True, text=True, env=env,
                                timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr  # faults never stop the run
    point = json.loads((out / "cells" / "default" / "points" / "c1.json").read_text())
    metrics = point["metrics"]
    assert metrics["requests"] == 18 and 0 < metrics["errors"] < 18
    assert set(metrics["errors_by_kind"]) == {"http", "reset", "timeout", "protocol"}
    assert metrics["error_rate"] == metrics["errors"] / 18
    requests = pd.read_parquet(out / "cells" / "default" / "points" / "c1.requests.parquet")
    assert len(requests) == 18
    assert (requests["error"].isna() == requests["error_kind"].isna()).all()

    assert KEY not in result.stdout + result.stderr
    assert files_containing(out, KEY) == []
    host = json.loads((out / "run.json").read_text())["host"]
    assert host["environment"]["OMP_NUM_THREADS"] == "2"
    assert "SOME_TOKEN" not in host["environment"] and "MOCK_KEY" not in host["environment"]
    assert files_containing(out, NOT_RECORDED) == []


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (Linux /proc/net/tcp, tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_mock_server_listens_on_loopback_only():
    with MockServer() as mock:
        assert listening_addresses(mock.port) == {"0100007F"}  # 127.0.0.1


def test_launched_engines_bind_loopback(tmp_path):
    for engine in (VllmEngine("m", "m", {}, tmp_path / "v.log"),
                   TransformersEngine("m", {}, tmp_path / "t.log")):
        command = engine.command(8000)
        assert command[command.index("--host") + 1] == "127.0.0.1", type(engine).__name__


def test_secrets_in_engine_options_and_env_never_reach_run_json(tmp_path):
    from harness.contract.manifest import REDACTED, RunManifest
    from harness.store.run_store import read_model, write_model

    from .factories import manifest

    secret, token = "sk-live-0c5d2e", "hf_AbCdEf123"
    run = manifest(config={"engine": {"kind": "vllm", "options": {
        "api_key": secret, "max_num_batched_tokens": 512},
        "env": {"HF_TOKEN": token, "VLLM_CPU_KVCACHE_SPACE": "1"}}})
    path = tmp_path / "run.json"
    write_model(path, run)
    text = path.read_text()
    assert secret not in text and token not in text
    stored = read_model(path, RunManifest)
    assert stored.config.engine.options["api_key"] == REDACTED
    assert stored.config.engine.options["max_num_batched_tokens"] == 512  # not a secret
    assert stored.config.engine.env == {"HF_TOKEN": REDACTED, "VLLM_CPU_KVCACHE_SPACE": "1"}
    assert stored.config_hash == run.config.hash()  # of the real config: resumes still match
