"""Dummy model directories: real shapes, loadable tokenizer, CPU-compatible head size."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from transformers import AutoConfig, AutoTokenizer
from typer.testing import CliRunner

from harness.cli import app
from harness.config.shapes import SHAPES
from harness.engines.dummy_model import model_config, write_dummy_model, write_random_weights


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shapes_are_consistent_llama_configs(tmp_path, shape):
    write_dummy_model(tmp_path, shape)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.model_type == "llama"
    assert config.hidden_size == config.num_attention_heads * config.head_dim
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert len(tokenizer) <= config.vocab_size


def test_tiny_head_size_is_supported_on_cpu():
    assert model_config("tiny")["head_dim"] in (32, 64)


def test_llama_8b_shape_matches_the_real_model():
    config = model_config("llama-3.1-8b")
    assert (config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"],
            config["num_key_value_heads"], config["vocab_size"]) == (32, 4096, 14336, 8, 128256)


def test_tokenizer_round_trips_text(tmp_path):
    write_dummy_model(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenizer("héllo world").input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "héllo world"


def test_cli_writes_a_model(tmp_path):
    result = CliRunner().invoke(app, ["dummy-model", str(tmp_path / "m"), "--shape",
                                      "llama-3.1-8b"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m" / "config.json").read_text())["num_hidden_layers"] == 32


def test_cli_rejects_unknown_shape(tmp_path):
    result = CliRunner().invoke(app, ["dummy-model", str(tmp_path / "m"), "--shape", "gpt-9"])
    assert result.exit_code == 2
    assert "unknown shape 'gpt-9'" in result.output


def test_seeded_weights_are_the_same_for_the_same_seed(tmp_path):
    """Every variant of a fidelity run loads one checkpoint; a seed rebuilds it exactly."""
    def written(name: str, seed: int) -> str:
        result = CliRunner().invoke(app, ["dummy-model", str(tmp_path / name), "--weights",
                                          "--seed", str(seed)])
        assert result.exit_code == 0, result.output
        return hashlib.sha256((tmp_path / name / "model.safetensors").read_bytes()).hexdigest()

    assert written("a", 0) == written("b", 0) != written("c", 1)


def test_weights_are_written_in_a_child_process_that_leaves_no_torch_behind(tmp_path):
    """On a GPU the weights are built on cuda:0: the harness must hold no CUDA context or
    memory afterwards, so the process that wrote them is not the harness's own."""
    check = ("import sys; from pathlib import Path; "
             "from harness.engines.dummy_model import write_dummy_model, write_random_weights; "
             f"d = Path({str(tmp_path / 'm')!r}); write_dummy_model(d, 'tiny'); "
             "write_random_weights(d, 3); "
             "assert (d / 'model.safetensors').exists(); "
             "assert 'torch' not in sys.modules, 'torch imported by the harness itself'")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_failed_weights_write_is_one_line(tmp_path):
    with pytest.raises(OSError, match="cannot write random weights to"):
        write_random_weights(tmp_path / "no-config-here", 0)
