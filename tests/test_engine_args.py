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
