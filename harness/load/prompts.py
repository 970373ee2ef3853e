"""Prompts of exact length, distinct per request, reproducible.

Where the engine takes token ids (vLLM), a prompt is a list of ids: the server counts exactly
the requested number of prompt tokens (no BOS is added, nothing is re-tokenized). Where it
takes only text (transformers serve, most hosted APIs), the ids are decoded to text whose
re-encoding plus the special tokens the server adds has the requested length; the server's
usage confirms it (input_length_mismatches in the metrics).

Every request draws from its own seeded generator, so no two prompts share a cache block and
the prefix cache cannot inflate results; the same (seed, salt, index) always gives the same
prompt, so a resumed run sends what the first one would have sent.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

TEXT_FIT_ATTEMPTS = 10


@functools.lru_cache(maxsize=8)
def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer  # heavy import, only when a run starts

    return AutoTokenizer.from_pretrained(name)


def allowed_token_ids(name: str) -> list[int]:
    """The tokenizer's ids without its special tokens: what a random prompt may contain."""
    tokenizer = load_tokenizer(name)
    special = set(tokenizer.all_special_ids)
    return [i for i in range(len(tokenizer)) if i not in special]


@dataclass(frozen=True)
class TextCodec:
    """Turns token ids into text of a known token length for engines that take text only."""

    tokenizer: Any
    vocab: tuple[int, ...]  # ids whose text re-encodes to exactly that id
    specials_added: int  # tokens the server adds to a text prompt (e.g. BOS)

    @classmethod
    def load(cls, name: str) -> TextCodec:
        tokenizer = load_tokenizer(name)
        ids = allowed_token_ids(name)
        texts = tokenizer.batch_decode([[i] for i in ids])
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        vocab = tuple(i for i, text, enc in zip(ids, texts, encoded, strict=True)
                      if text.strip() and enc == [i])
        specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
        return cls(tokenizer, vocab or tuple(ids), specials)

    def fit(self, ids: list[int], target: int, rng: np.random.Generator) -> str:
        """Text that encodes (with the server's special tokens) to `target` tokens."""
        body = max(target - self.specials_added, 0)
        ids = list(ids[:body])
        text = ""
        for _ in range(TEXT_FIT_ATTEMPTS):
            text = self.tokenizer.decode(ids)
            encoded = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(encoded) == body:
                return text
            if len(encoded) > body:
                ids = encoded[:body]
            else:
                ids = encoded + rng.choice(self.vocab, body - len(encoded)).tolist()
        return text  # the closest found; the server's usage reports the real count


def salt_of(*parts: str) -> int:
    """A stable number naming a stream of prompts (e.g. one load point of one cell)."""
    return zlib.crc32("/".join(parts).encode())
