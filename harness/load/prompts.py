"""Prompts as token-id lists of exact length, distinct per request.

Token ids (not text) are sent to /v1/completions, so the server counts exactly the requested
number of prompt tokens (no BOS is added, nothing is re-tokenized). Every request draws its
ids from its own seeded generator, so no two prompts share a cache block and the prefix
cache cannot inflate results; the same (seed, salt, index) always gives the same prompt, so a
resumed run sends what the first one would have sent.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def allowed_token_ids(model_dir_or_id: str) -> list[int]:
    """The tokenizer's ids without its special tokens: what a random prompt may contain."""
    from transformers import AutoTokenizer  # heavy import, only when a run starts

    tokenizer = AutoTokenizer.from_pretrained(model_dir_or_id)
    special = set(tokenizer.all_special_ids)
    return [i for i in range(len(tokenizer)) if i not in special]


def salt_of(*parts: str) -> int:
    """A stable number naming a stream of prompts (e.g. one load point of one cell)."""
    return zlib.crc32("/".join(parts).encode())


@dataclass(frozen=True)
class PromptFactory:
    vocab: Sequence[int]
    input_tokens: int
    seed: int
    salt: int

    def __post_init__(self) -> None:
        if not self.vocab:
            raise ValueError("the tokenizer has no ordinary tokens to build prompts from")

    def prompt(self, index: int) -> list[int]:
        rng = np.random.default_rng([self.seed, self.salt, index])
        picks = rng.integers(0, len(self.vocab), size=self.input_tokens)
        vocab = np.asarray(self.vocab)
        return vocab[picks].tolist()
