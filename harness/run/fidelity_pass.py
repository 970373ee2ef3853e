"""The fidelity pass of one variant, on the server its first cell already launched.

For each prompt of the fixed set, one request at a time (so that batching cannot change
the numbers): the variant's greedy continuation, then the prompt plus the *baseline's*
continuation with `prompt_logprobs`, which gives the variant's top-k distribution at every
position of the baseline's text (teacher forcing). The baseline's pass is stored once; every
other variant is scored against it (harness/metrics/fidelity.py). Whatever goes wrong on the server
is stored as "not measured" with the reason: the sweep goes on.
"""

from __future__ import annotations

import json
import time

from harness.config import ExperimentConfig
from harness.contract.fidelity import FidelityRecord
from harness.contract.plan import Cell
from harness.contract.server import ServerHandle
from harness.engines.http import post_json
from harness.metrics.fidelity import Probe, prompt_set, prompts_sha, score
from harness.store.run_store import RunStore, now_iso


class NotMeasured(Exception):
    """The pass cannot give figures: the message says why."""


class FidelityPass:
    def __init__(self, config: ExperimentConfig, run_name: str, store: RunStore):
        self.config, self.run_name, self.store = config, run_name, store

    def needed(self, cell: Cell) -> bool:
        return self.config.fidelity is not None and \
            self.store.read_fidelity(cell.fidelity_variant) is None

    def run(self, cell: Cell, server: ServerHandle, vocab: list[int]) -> FidelityRecord:
        fidelity, baseline = self.config.fidelity, self.config.fidelity_baseline
        assert fidelity is not None and baseline is not None
        began = time.monotonic()
        prompts = prompt_set(fidelity, vocab, self.config.seed)
        record = dict(run=self.run_name, variant=cell.fidelity_variant, cell=cell.id,
                      baseline=baseline,
                      prompts=fidelity.prompts, prompt_tokens=fidelity.prompt_tokens,
                      output_tokens=fidelity.output_tokens, top_k=fidelity.top_k,
                      prompts_sha=prompts_sha(prompts), teacher_forced=True)
        probe, found = None, None
        try:
            reference = None if cell.fidelity_variant == baseline else self.baseline_probe(
                record["prompts_sha"])
            probe = self.probe(server, prompts, reference)
            found = None if reference is None else score(reference, probe, fidelity.top_k)
            status, reason = ("baseline" if reference is None else "scored"), None
        except NotMeasured as err:
            status, reason = "not measured", str(err)
        result = FidelityRecord(**record, status=status, reason=reason, score=found,
                                duration_s=round(time.monotonic() - began, 3),
                                measured_at=now_iso())
        self.store.save_fidelity(result, None if probe is None else probe.frame())
        return result

    def baseline_probe(self, sha: str) -> Probe:
        baseline = self.config.fidelity_baseline
        stored = self.store.read_fidelity(baseline)
        if stored is None or stored.status != "baseline":
            why = f": {stored.reason}" if stored is not None and stored.reason else ""
            raise NotMeasured(f"the baseline {baseline} was not measured{why}")
        if stored.prompts_sha != sha:
            raise NotMeasured(f"the prompts differ from the baseline {baseline}'s (another "
                              "tokenizer or fidelity settings)")
        frame = self.store.read_fidelity_tokens(baseline)
        if frame is None:
            raise NotMeasured(f"{self.store.fidelity_parquet(baseline)} is missing")
        return Probe.from_frame(frame)

    def probe(self, server: ServerHandle, prompts: list[list[int]],
              reference: Probe | None) -> Probe:
        tokens = [self.greedy(server, prompt) for prompt in prompts]
        teacher = tokens if reference is None else reference.tokens
        forced = [self.forced(server, prompt, continuation)
                  for prompt, continuation in zip(prompts, teacher, strict=True)]
        return Probe(tokens, forced)

    def greedy(self, server: ServerHandle, prompt: list[int]) -> list[int]:
        n = self.config.fidelity.output_tokens
        choice = self.complete(server, {"prompt": prompt, "max_tokens": n,
                                        "return_token_ids": True})
        tokens = choice.get("token_ids")
        if not isinstance(tokens, list) or len(tokens) != n:
            raise NotMeasured(f"the server returned no token ids for {n} greedy tokens")
        return [int(t) for t in tokens]

    def forced(self, server: ServerHandle, prompt: list[int],
               continuation: list[int]) -> list[dict[int, float]]:
        choice = self.complete(server, {"prompt": prompt + continuation, "max_tokens": 1,
                                        "prompt_logprobs": self.config.fidelity.top_k})
        entries = choice.get("prompt_logprobs")
        if not isinstance(entries, list) or len(entries) != len(prompt) + len(continuation):
            raise NotMeasured("the server returned no prompt logprobs")
        try:
            return [{int(token): float(entry["logprob"]) for token, entry in position.items()}
                    for position in entries[len(prompt):]]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise NotMeasured("the server's prompt logprobs are not token-id keyed "
                              "logprobs") from None

    def complete(self, server: ServerHandle, body: dict) -> dict:
        body = {"model": server.model, "temperature": 0, "ignore_eos": True, **body}
        timeout = self.config.load.request_timeout_s
        try:
            status, text = post_json(server.base_url + "/v1/completions", body, server.headers,
                                     timeout=timeout)
        except OSError as err:
            raise NotMeasured(f"request failed: {server.redact(str(err))}") from None
        if status != 200:
            raise NotMeasured(f"HTTP {status}: {server.redact(text[:200])}")
        try:
            return json.loads(text)["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise NotMeasured(f"not a completion: {server.redact(text[:200])}") from None
