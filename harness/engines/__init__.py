"""Engines start and stop an OpenAI-compatible server; they know nothing about metrics."""

from harness.engines.base import Engine, EngineError, ServerHandle
from harness.engines.vllm import VllmEngine

__all__ = ["Engine", "EngineError", "ServerHandle", "VllmEngine"]
