"""The model shapes `model: dummy:<shape>` can name: the dimensions of a Llama-architecture
model (harness/engines/dummy_model.py writes such a model directory)."""

from __future__ import annotations

# Llama-architecture shapes. "tiny" keeps head_dim 32, which vLLM's CPU attention supports.
SHAPES: dict[str, dict] = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=2, num_key_value_heads=2, head_dim=32,
                 vocab_size=512, max_position_embeddings=2048, rope_theta=10000.0),
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                         vocab_size=128256, max_position_embeddings=131072,
                         rope_theta=500000.0, tie_word_embeddings=True),
    "llama-3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                         vocab_size=128256, max_position_embeddings=131072,
                         rope_theta=500000.0),
    "llama-3.3-70b": dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                          num_attention_heads=64, num_key_value_heads=8, head_dim=128,
                          vocab_size=128256, max_position_embeddings=131072,
                          rope_theta=500000.0),
}
