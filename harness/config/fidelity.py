"""The `fidelity` section: how far each variant's next-token distributions stray from the
baseline variant's on a fixed prompt set, and the limits a variant must keep to."""

from __future__ import annotations

from typing import Any

from pydantic import Field, NonNegativeFloat, PositiveInt, field_validator

from harness.config.base import Strict


class FidelityConfig(Strict):
    baseline: str | None = Field(
        None, description="the variant the others are scored against; default: the first")
    max_kl: NonNegativeFloat | None = Field(
        None, description="a variant whose mean KL divergence (nats/token) exceeds this misses")
    min_top1: float | None = Field(
        None, ge=0, le=1, description="a variant whose top-1 agreement (0-1) is below this misses")
    prompts: PositiveInt = Field(64, le=4096, description="prompts in the fixed, seeded set")
    prompt_tokens: PositiveInt = Field(128, description="token ids per prompt")
    output_tokens: PositiveInt = Field(32, le=4096, description="greedy tokens per prompt")
    top_k: int = Field(20, ge=1, le=20, description="logprobs per position (vLLM allows 20)")
    tasks: list[str] | None = Field(
        None, description="not available: task accuracy (lm-eval) is not part of this harness")

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, value: Any) -> Any:
        if value:
            raise ValueError("task accuracy (lm-eval) is not built into this harness; remove "
                             "`tasks` (fidelity here is KL divergence and top-1 agreement)")
        return None

    @property
    def request_tokens(self) -> int:
        """The longest request of the pass: prompt, the baseline's continuation, one more."""
        return self.prompt_tokens + self.output_tokens + 1

    def limits(self) -> str:
        parts = [f"mean KL <= {self.max_kl:g}" if self.max_kl is not None else "",
                 f"top-1 >= {self.min_top1:.0%}" if self.min_top1 is not None else ""]
        return ", ".join(p for p in parts if p) or "no limits"
