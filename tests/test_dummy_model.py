"""Dummy model directories: real shapes, loadable tokenizer, CPU-compatible head size."""

from __future__ import annotations

import hashlib
import json

import pytest
from transformers import AutoConfig, AutoTokenizer
from typer.testing import CliRunner

from harness.cli import app
from harness.config.shapes import SHAPES
from harness.engines.dummy_model import model_config, write_dummy_model


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
