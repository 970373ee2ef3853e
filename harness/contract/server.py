"""What a running server gives the load generator: where to send requests and which request
extensions beyond the plain OpenAI completions API it accepts. Engines make these; the client
reads them."""

from __future__ import annotations

from dataclasses import dataclass, field

# Request features beyond the plain OpenAI completions API. An engine declares (or, for an
# external server, the harness probes) which it accepts; the client sends only those.
TOKEN_IDS = "token_ids"  # prompt as a list of token ids
INCLUDE_USAGE = "include_usage"  # stream_options.include_usage
CONTINUOUS_USAGE = "continuous_usage_stats"  # usage on every chunk
IGNORE_EOS = "ignore_eos"  # vLLM: do not stop at EOS
MIN_TOKENS = "min_tokens"  # vLLM: at least this many tokens
HF_GENERATION_CONFIG = "hf_generation_config"  # transformers serve: generation_config JSON



@dataclass(frozen=True)
class ServerHandle:
    """A running server: where to send requests and which request extensions it accepts."""

    base_url: str
    model: str
    extensions: frozenset[str]
    metrics_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    secret: str | None = field(default=None, repr=False)

    def redact(self, text: str) -> str:
        """Text safe to store: the API key, if any, replaced."""
        return text.replace(self.secret, "***") if self.secret else text
