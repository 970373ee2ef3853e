"""harness: benchmark self-hosted LLM serving and turn measured throughput into cost per token."""

__version__ = "0.1.0"
