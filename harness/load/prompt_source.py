"""The requests a cell sends: its tokenizer, read once, and the requests of each stream (a
point, the warmup): generated prompts, a prompts file, or the trace replay, as text or as
token ids (workload.prompt; text where the server takes no ids)."""

from __future__ import annotations

from harness.config import ExperimentConfig
from harness.contract.plan import Cell
from harness.contract.server import TOKEN_IDS
from harness.load.file_prompts import FilePromptRequests
from harness.load.generator import RequestSource
from harness.load.prompts import TextCodec, allowed_token_ids, load_tokenizer, salt_of
from harness.load.trace import TraceRequests
from harness.load.workload import Workload


class PromptsError(Exception):
    """The cell's prompts cannot be built: the message says what to set."""


class PromptSource:
    def __init__(self, config: ExperimentConfig, cell: Cell, extensions: frozenset[str],
                 run_name: str, tokenizer: str):
        """`tokenizer`: an HF id or local path (a dummy shape's directory holds one)."""
        wants_ids = config.workload.prompt == "token_ids"
        if wants_ids and TOKEN_IDS not in extensions:
            raise PromptsError(f"the {config.engine.kind} server takes no token-id prompts: "
                               "set workload.prompt: text")
        try:
            self.vocab = allowed_token_ids(tokenizer)
            self.text = None if wants_ids else TextCodec.load(tokenizer)
            self.tokenizer = load_tokenizer(tokenizer)
        except (OSError, ValueError) as err:
            raise PromptsError(f"cannot load tokenizer {tokenizer!r} to build prompts "
                               f"(set `tokenizer:` to an HF id or local path): "
                               f"{str(err).splitlines()[0]}") from None
        self.config, self.cell, self.run_name = config, cell, run_name

    def workload(self, stream: str, trace: bool = False) -> RequestSource:
        """The requests of `stream`; with `trace`, its replay of load.trace."""
        salt = salt_of(self.run_name, self.cell.id, stream)
        base = Workload(self.config.workload, self.vocab, self.text, self.config.seed, salt,
                        salt_of(self.run_name, self.cell.id, "shared-prefix"))
        if trace:
            return TraceRequests(self.config.replayed_trace(), base,
                                 self.config.load.trace.block_tokens)
        if self.config.workload.prompts is not None:
            try:
                return FilePromptRequests(self.config.workload, self.tokenizer,
                                          self.text is None, self.config.seed, salt,
                                          self.config.max_model_len)
            except ValueError as err:
                raise PromptsError(str(err)) from None
        return base
