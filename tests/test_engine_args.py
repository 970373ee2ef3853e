"""How config options become vLLM flags, and engine preconditions that need no server."""

from __future__ import annotations

from pathlib import Path

from harness.engines.vllm import VllmEngine, options_to_args


def test_options_become_flags():
    args = options_to_args({"max_model_len": 512, "enforce_eager": True,
                            "enable_prefix_caching": False, "kv_cache_dtype": "fp8",
                            "quantization": None, "compilation_config": {"level": 0}})
    assert args == ["--max-model-len", "512", "--enforce-eager", "--no-enable-prefix-caching",
                    "--kv-cache-dtype", "fp8", "--compilation-config", '{"level": 0}']


def test_command_uses_module_launch_with_model_flag(tmp_path):
    engine = VllmEngine("/m", "tiny", {"max_num_seqs": 4}, tmp_path / "log",
                        python="/usr/bin/python3")
    command = engine.command(8123)
    assert command[:3] == ["/usr/bin/python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert command[command.index("--model") + 1] == "/m"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "8123"


def test_cpu_build_always_gets_a_kv_cache_size(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr("harness.engines.vllm.is_vllm_cpu", lambda: True)
    engine = VllmEngine(str(tmp_path), "m", {}, tmp_path / "log")
    env = engine.environment()
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert env["HF_HUB_OFFLINE"] == "1"  # a local directory needs no hub
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    configured = VllmEngine("org/model", "m", {}, Path("log"), env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    assert configured.environment()["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert "HF_HUB_OFFLINE" not in configured.environment()  # a hub id may need the hub


def test_on_the_cpu_build_the_engine_threads_keep_off_the_clients_core(tmp_path, monkeypatch):
    from harness.engines.cores import CoreSplit, core_list, split_cores

    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr("harness.engines.vllm.is_vllm_cpu", lambda: True)
    monkeypatch.setattr("harness.engines.vllm.available_cores", lambda: {0, 1, 2, 3})
    engine = VllmEngine("/m", "m", {"tensor_parallel_size": 1}, tmp_path / "log")
    assert engine.client_cores() == CoreSplit(frozenset({0}), frozenset({1, 2, 3}))
    assert engine.environment()["VLLM_CPU_OMP_THREADS_BIND"] == "1-3"
    assert engine.client_cores().describe() == "engine threads on CPU 1-3, the client on CPU 0"
    # a binding given by the user stands; so does vLLM's own for several ranks
    given = VllmEngine("/m", "m", {}, tmp_path / "log", env={"VLLM_CPU_OMP_THREADS_BIND": "0"})
    assert given.client_cores() is None and given.environment()[
        "VLLM_CPU_OMP_THREADS_BIND"] == "0"
    assert VllmEngine("/m", "m", {"tensor_parallel_size": 2}, tmp_path / "l").client_cores() \
        is None
    assert split_cores({5}) is None and core_list({1, 3, 5}) == "1,3,5"


def test_pinned_keeps_this_process_on_its_cores_and_gives_them_back():
    import os

    from harness.engines.cores import pinned

    mine = os.sched_getaffinity(0)
    first = frozenset({min(mine)})
    with pinned(first):
        assert os.sched_getaffinity(0) == first
    assert os.sched_getaffinity(0) == mine
    with pinned(None):
        assert os.sched_getaffinity(0) == mine


def test_transformers_serve_is_pinned_to_the_measured_gpu(tmp_path):
    from harness.engines.transformers import TransformersEngine

    pinned = TransformersEngine("/m", {}, tmp_path / "log", gpus="GPU-1234")
    command = pinned.command(8000)
    assert command[command.index("--device") + 1] == "cuda:0"
    assert pinned.environment()["CUDA_VISIBLE_DEVICES"] == "GPU-1234"
    assert "--device" not in TransformersEngine("/m", {}, tmp_path / "log").command(8000)
    chosen = TransformersEngine("/m", {"device": "cuda:1"}, tmp_path / "log", gpus="0,1")
    assert chosen.command(8000).count("--device") == 1
