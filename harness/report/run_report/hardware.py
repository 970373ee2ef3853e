"""How close to the hardware: each point's decode speed per sequence against the memory-bandwidth
floor of one decode step. Formula and its assumptions: docs/metrics.md ("How close to the
hardware")."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.config.shapes import SHAPES
from harness.store.run_store import StoredRun

# Peak memory bandwidth in bytes/s where NVML gives no bus width and memory clock: NVIDIA's
# published figures (H100 SXM5 and PCIe datasheet, 2023; H200 product brief, 2024; A100
# datasheet, 2021; L40S datasheet, 2023). Longest name first: "H100 PCIe" before "H100".
SPEC_BANDWIDTH = {
    "H100 PCIe": 2.0e12, "H100 NVL": 3.9e12, "H100": 3.35e12, "H200": 4.8e12,
    "A100-SXM4-80GB": 2.039e12, "A100-PCIE-80GB": 1.935e12, "A100": 1.555e12,
    "L40S": 0.864e12,
}
DTYPE_BYTES = {"float32": 4.0, "float": 4.0, "bfloat16": 2.0, "float16": 2.0, "half": 2.0,
               "auto": 2.0, "fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0}
QUANT_BYTES = {"fp8": 1.0, "awq": 0.5, "gptq": 0.5, "bitsandbytes": 0.5}


def peak_bandwidth(facts: dict) -> tuple[float | None, str]:
    """A GPU's peak memory bandwidth (bytes/s) and where the figure comes from: NVML's bus
    width and maximum memory clock (double data rate) when known, else the spec table."""
    bus, clock = facts.get("memory_bus_width_bits"), facts.get("max_mem_clock_mhz")
    if bus and clock:
        return 2 * clock * 1e6 * bus / 8, "NVML bus width x max memory clock"
    name = str(facts.get("name") or "")
    for key in sorted(SPEC_BANDWIDTH, key=len, reverse=True):
        if key in name:
            return SPEC_BANDWIDTH[key], f"spec table ({key})"
    return None, f"no bandwidth known for {name or 'this GPU'}"


def llama_parameters(shape: dict) -> int:
    """Weights of a Llama-architecture shape: embeddings, attention, MLP, norms, head."""
    h, layers = shape["hidden_size"], shape["num_hidden_layers"]
    q = shape["num_attention_heads"] * shape["head_dim"]
    kv = shape["num_key_value_heads"] * shape["head_dim"]
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * shape["intermediate_size"] + 2 * h
    head = 0 if shape.get("tie_word_embeddings") else shape["vocab_size"] * h
    return shape["vocab_size"] * h + layers * per_layer + h + head


def kv_bytes_per_token(shape: dict, kv_dtype_bytes: float) -> float:
    """K and V of one token in every layer."""
    return (2 * shape["num_hidden_layers"] * shape["num_key_value_heads"] * shape["head_dim"]
            * kv_dtype_bytes)


def step_floor_s(weight_bytes: float, kv_bytes_read: float, bandwidth: float) -> float:
    """The least time one decode step can take: every weight and every cached K/V of the
    batch read once from memory at peak bandwidth."""
    return (weight_bytes + kv_bytes_read) / bandwidth


@dataclass
class ModelBytes:
    weight_bytes: float
    kv_bytes_per_token: float


def model_bytes(model: str, options: dict) -> ModelBytes | None:
    """Weight and KV bytes of a `dummy:<shape>` model under a variant's vLLM options (None for
    a model whose shape the harness does not know)."""
    shape = SHAPES.get(model.removeprefix("dummy:")) if model.startswith("dummy:") else None
    if shape is None:
        return None
    dtype = DTYPE_BYTES.get(str(options.get("dtype", "auto")), 2.0)
    weights = QUANT_BYTES.get(str(options.get("quantization")), dtype)
    kv = DTYPE_BYTES.get(str(options.get("kv_cache_dtype", "auto")), dtype)
    kv = dtype if options.get("kv_cache_dtype") in (None, "auto") else kv
    return ModelBytes(llama_parameters(shape) * weights, kv_bytes_per_token(shape, kv))


def hardware_frame(run: StoredRun) -> tuple[pd.DataFrame, str | None]:
    """Per point: measured decode tok/s per sequence over the floor's; or why there is none."""
    manifest = run.manifest
    if not manifest.gpu_names:
        return pd.DataFrame(), (f"not applicable: this run had no GPU ({manifest.hardware}); "
                                "the floor is a GPU memory-bandwidth bound")
    rows, why = [], "no point has a TPOT and an engine batch"
    config = manifest.config
    workload = config.workload
    for result in run.points:
        facts = manifest.telemetry.get(result.cell)
        gpu = facts.gpus[0].model_dump() if facts and facts.gpus else {}
        bandwidth, source = peak_bandwidth(gpu)
        sizes = model_bytes(config.model, config.matrix.variants.get(result.variant, {}))
        engine, tpot = result.server.engine, result.metrics.tpot_ms.p50
        if bandwidth is None or sizes is None:
            why = source if bandwidth is None else (
                f"the weight bytes of {config.model} are unknown (known: dummy:<shape>)")
            continue
        if not tpot or engine is None or not engine.running_mean:
            continue
        context = (workload.input_tokens.value or 0) + (workload.output_tokens.value or 0) / 2
        kv_read = engine.running_mean * context * sizes.kv_bytes_per_token
        gpus = result.tensor_parallel_size
        floor = step_floor_s(sizes.weight_bytes, kv_read, bandwidth * gpus)
        rows.append({"series": f"{result.variant} batch {result.max_num_seqs}",
                     "point": result.point, "measured_tps_per_seq": 1000 / tpot,
                     "floor_tps_per_seq": 1 / floor, "fraction": (1000 / tpot) * floor,
                     "bandwidth_source": source})
    return pd.DataFrame(rows), None if rows else f"not measured: {why}"
