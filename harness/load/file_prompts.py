"""The requests of a prompts file (ShareGPT or JSONL): real text, sent as it is (or as its
token ids), its length what the tokenizer counts with the server's special tokens.

Request k sends prompt k of the file (cycling when a point sends more requests than the file
holds: a repeated prompt can then hit the prefix cache). The output length is the file's
(JSONL `output_tokens`, or the token count of ShareGPT's reply), else the workload's draw.
Prompts that cannot fit max_model_len with their output are left out, and counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.config.load import WorkloadConfig
from harness.config.prompt_file import FilePrompt, read_prompts
from harness.load.workload import PlannedRequest


class FilePromptRequests:
    turns = 1
    think_time_s = 0.0

    def __init__(self, config: WorkloadConfig, tokenizer: Any, token_ids: bool, seed: int,
                 salt: int, max_model_len: int | None = None):
        self.config, self.tokenizer, self.token_ids = config, tokenizer, token_ids
        self.seed, self.salt = seed, salt
        self.prompts, self.left_out = [], 0
        for prompt in read_prompts(config.prompts):
            ids = tokenizer(prompt.text)["input_ids"]  # with the server's special tokens
            output = self.output_of(prompt)
            if max_model_len is not None and output is not None and \
                    len(ids) + output > max_model_len:
                self.left_out += 1
                continue
            self.prompts.append((prompt.text, ids, output))
        if not self.prompts:
            raise ValueError(f"prompts file {config.prompts.file}: no prompt fits "
                             f"max_model_len {max_model_len} with its output")

    def output_of(self, prompt: FilePrompt) -> int | None:
        if not self.config.prompts.output_from_file:
            return None
        if prompt.output_tokens is not None:
            return prompt.output_tokens
        if prompt.reply:
            return max(1, len(self.tokenizer(prompt.reply, add_special_tokens=False)
                              ["input_ids"]))
        return None

    def chain(self, index: int) -> list[PlannedRequest]:
        text, ids, output = self.prompts[index % len(self.prompts)]
        if output is None:
            output = self.config.output_tokens.draw(
                np.random.default_rng([self.seed, self.salt, index]))
        return [PlannedRequest(list(ids) if self.token_ids else text, len(ids), output)]
