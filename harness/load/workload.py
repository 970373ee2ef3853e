"""What each request sends: lengths drawn from the workload's distributions, an optional
shared prefix, and conversations whose context grows turn by turn.

A chain is what one arrival (or one closed-loop sender) sends in sequence: one request, or the
turns of a conversation. Turn k's prompt is the whole conversation so far: every earlier prompt
and a stand-in for every earlier answer (random tokens of the answer's length: the context
length is what costs, and the prefix cache sees the earlier prompts), then new user tokens.
Everything is drawn from generators seeded by (seed, salt, chain index): reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.config.load import WorkloadConfig
from harness.load.prompts import TextCodec

PREFIX_BLOCK = 256  # shared prefixes are built from fixed blocks so every length agrees


@dataclass(frozen=True)
class PlannedRequest:
    prompt: list[int] | str
    input_tokens: int  # prompt length in tokens (as the server will count it)
    max_tokens: int
    turn: int = 0


class Workload:
    def __init__(self, config: WorkloadConfig, vocab: Sequence[int], text: TextCodec | None,
                 seed: int, salt: int, prefix_salt: int):
        if not vocab:
            raise ValueError("the tokenizer has no ordinary tokens to build prompts from")
        self.config = config
        self.vocab = np.asarray(text.vocab if text else vocab)
        self.text = text
        self.seed, self.salt, self.prefix_salt = seed, salt, prefix_salt

    @property
    def turns(self) -> int:
        return self.config.conversation.turns if self.config.conversation else 1

    @property
    def think_time_s(self) -> float:
        """The pause between a conversation's turns."""
        return self.config.conversation.think_time_s if self.config.conversation else 0.0

    def chain(self, index: int) -> list[PlannedRequest]:
        rng = np.random.default_rng([self.seed, self.salt, index])
        context: list[int] = []
        chain = []
        for turn in range(self.turns):
            new_tokens = self.config.input_tokens.draw(rng)
            output = self.config.output_tokens.draw(rng)
            prompt = context + self._new_tokens(index, turn, new_tokens, rng)
            chain.append(self.planned(prompt, output, turn, rng))
            context = prompt + self.tokens(output, rng)  # the answer's stand-in
        return chain

    def _new_tokens(self, index: int, turn: int, count: int, rng: np.random.Generator
                    ) -> list[int]:
        shared = self.config.shared_prefix
        if shared is None or turn > 0:
            return self.tokens(count, rng)
        prefix_len = min(count, round(shared.share * count))
        prefix = self.prefix(index % shared.prefixes, prefix_len)
        return prefix + self.tokens(count - prefix_len, rng)

    def prefix(self, number: int, length: int) -> list[int]:
        """The first `length` tokens of shared prefix `number` (the same for every request)."""
        blocks = []
        for block in range(-(-length // PREFIX_BLOCK)):
            rng = np.random.default_rng([self.seed, self.prefix_salt, number, block])
            blocks += self.tokens(PREFIX_BLOCK, rng)
        return blocks[:length]

    def tokens(self, count: int, rng: np.random.Generator) -> list[int]:
        """`count` random ordinary tokens."""
        return self.vocab[rng.integers(0, len(self.vocab), size=count)].tolist()

    def planned(self, ids: list[int], output: int, turn: int,
                rng: np.random.Generator) -> PlannedRequest:
        """The request for these ids: the ids themselves, or text of exactly that length."""
        if self.text is None:
            return PlannedRequest(ids, len(ids), output, turn)
        return PlannedRequest(self.text.fit(ids, len(ids), rng), len(ids), output, turn)
