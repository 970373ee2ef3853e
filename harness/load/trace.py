"""The requests of a trace replay: arrival k sends the trace's k-th request, its lengths
exact, its prompt built block by block from the trace's hash ids.

A hash id names one block of `block_tokens` prompt tokens, drawn from a generator seeded by
(seed, salt, hash id): two requests that share hash ids share those blocks token for token,
so the server's prefix cache sees the reuse the trace recorded. Tokens past the hash ids
(or every token, for a trace without them) are drawn per request, so they are never shared.

The point builds the prompts before its clock starts (harness.load.generator.Prebuilt), so
turning ids into text never delays a send at the trace's instants.
"""

from __future__ import annotations

import numpy as np

from harness.config.trace import Trace
from harness.load.workload import PlannedRequest, Workload


class TraceRequests:
    """A RequestSource replaying `trace`; `base` gives the vocabulary, text codec and seeds."""

    turns = 1
    think_time_s = 0.0

    def __init__(self, trace: Trace, base: Workload, block_tokens: int):
        self.trace, self.base, self.block_tokens = trace, base, block_tokens

    def chain(self, index: int) -> list[PlannedRequest]:
        wanted = self.trace.requests[index % len(self.trace.requests)]
        rng = np.random.default_rng([self.base.seed, self.base.salt, index])
        ids = self.blocks(wanted.hash_ids, wanted.input_tokens)
        ids += self.base.tokens(wanted.input_tokens - len(ids), rng)
        return [self.base.planned(ids, wanted.output_tokens, 0, rng)]

    def blocks(self, hash_ids: tuple[int, ...], length: int) -> list[int]:
        """The first `length` tokens of the blocks `hash_ids` name (at most `length`)."""
        ids: list[int] = []
        for hash_id in hash_ids:
            if len(ids) >= length:
                break
            rng = np.random.default_rng([self.base.seed, self.base.prefix_salt, 7, hash_id])
            ids += self.base.tokens(self.block_tokens, rng)
        return ids[:length]
