"""Random-weight model directories: config.json plus tokenizer files, and optionally seeded
random weights.

vLLM serves a directory without weights with ``--load-format dummy`` (random weights of the
real shape), which is as good as the real checkpoint for throughput, latency and energy. Its
dummy initialisation fills every tensor uniformly in +-1e-3 from one fixed seed: the same on
every launch, but every next-token distribution comes out uniform, so there is nothing for a
fidelity comparison to see. Fidelity runs therefore serve `ensure_dummy_weights`: a seeded
checkpoint with transformers' initialisation, written once and loaded by every variant.
The tokenizer is byte-level BPE without merges: 256 byte tokens plus three specials,
deterministic and built without training data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

from harness.config.shapes import SHAPES

SPECIAL_TOKENS = ["<s>", "</s>", "<pad>"]

_LLAMA3_ROPE_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def model_config(shape: str, dtype: str = "bfloat16") -> dict:
    """The config.json of a Llama-architecture model of the named shape."""
    if shape not in SHAPES:
        raise KeyError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    dims = dict(SHAPES[shape])
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "rms_norm_eps": 1e-5, "hidden_act": "silu", "torch_dtype": dtype,
        "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2,
        "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False,
        **dims,
    }
    if shape.startswith("llama-3"):
        config["rope_scaling"] = _LLAMA3_ROPE_SCALING
    return config


def build_tokenizer() -> Tokenizer:
    """Byte-level BPE with no merges: every byte is a token, specials are ids 0-2."""
    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in sorted(byte_chars):
        vocab[ch] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 0)])
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    return tokenizer


def write_dummy_model(directory: Path, shape: str = "tiny", dtype: str = "bfloat16") -> Path:
    """Write config.json and tokenizer files for `shape` into `directory` (created if needed)."""
    config = model_config(shape, dtype)
    directory.mkdir(parents=True, exist_ok=True)
    _write_text(directory / "config.json", json.dumps(config, indent=2))
    tokenizer = build_tokenizer()
    tmp = directory / "tokenizer.json.tmp"
    tokenizer.save(str(tmp))
    os.replace(tmp, directory / "tokenizer.json")
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "pad_token": "<pad>", "model_max_length": config["max_position_embeddings"],
        "chat_template": CHAT_TEMPLATE,
    }
    _write_text(directory / "tokenizer_config.json", json.dumps(tokenizer_config, indent=2))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    _write_text(directory / "special_tokens_map.json", json.dumps(specials, indent=2))
    return directory


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cache_dir() -> Path:
    """Where the harness keeps models it makes: $HARNESS_CACHE, else ~/.cache/harness."""
    root = os.environ.get("HARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "harness")
    return Path(root)


def dummy_model_dir(shape: str) -> Path:
    return cache_dir() / "dummy-models" / shape


def ensure_dummy_model(shape: str) -> Path:
    """The directory of the named shape's dummy model, written on first use."""
    directory = dummy_model_dir(shape)
    expected = json.dumps(model_config(shape), indent=2)
    config_file = directory / "config.json"
    if not (config_file.exists() and config_file.read_text() == expected
            and (directory / "tokenizer.json").exists()):
        write_dummy_model(directory, shape)
    return directory


def has_weights(directory: Path) -> bool:
    return any(directory.glob("*.safetensors"))


def write_random_weights(directory: Path, seed: int = 0) -> None:
    """Seeded random weights (transformers' own initialisation) for the directory's config,
    as model.safetensors: the same seed on the same kind of device gives the same file.

    Built in a child process, on the GPU when there is one (an 8B model takes seconds there,
    minutes on a CPU): the harness itself never holds a CUDA context or GPU memory, which
    vLLM would count as taken (it refuses to start below gpu_memory_utilization x total).
    """
    done = subprocess.run([sys.executable, "-m", "harness.engines.dummy_model", str(directory),
                           str(seed)], capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise OSError(f"cannot write random weights to {directory}: "
                      f"{lines[-1] if lines else f'exit code {done.returncode}'}")


def _build_weights(directory: Path, seed: int) -> None:
    """The child process's work (write_random_weights)."""
    import tempfile

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(directory)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".weights-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for path in [*Path(tmp).glob("*.safetensors*"), Path(tmp) / "generation_config.json"]:
            if path.exists():  # config.json stays the harness's own (model_config)
                os.replace(path, directory / path.name)


def dummy_weights_dir(shape: str, seed: int) -> Path:
    return cache_dir() / "dummy-models" / f"{shape}-seed{seed}"


def ensure_dummy_weights(shape: str, seed: int = 0) -> Path:
    """A model directory of the named shape with seeded random weights, written on first use
    (every variant of a run loads this same checkpoint)."""
    directory = dummy_weights_dir(shape, seed)
    expected = json.dumps(model_config(shape), indent=2)
    config_file = directory / "config.json"
    if not (config_file.exists() and config_file.read_text() == expected):
        for stale in directory.glob("*.safetensors*"):
            stale.unlink()
        write_dummy_model(directory, shape)
    if not has_weights(directory):
        write_random_weights(directory, seed)
    return directory


if __name__ == "__main__":  # python -m harness.engines.dummy_model DIR SEED
    _build_weights(Path(sys.argv[1]), int(sys.argv[2]))
