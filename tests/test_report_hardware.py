"""The memory-bandwidth floor of a decode step (docs/metrics.md, "How close to the hardware"),
checked by hand and on the recorded H100/H200 traces' static facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config.shapes import SHAPES
from harness.report.run_report.hardware import (
    kv_bytes_per_token,
    llama_parameters,
    model_bytes,
    peak_bandwidth,
    step_floor_s,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BUS_BITS = {"h100": 5120, "h200": 6144}  # HBM3 x5 stacks, HBM3e x6 stacks
SPEC = {"h100": 3.35e12, "h200": 4.8e12}


def test_llama_3_1_8b_has_its_published_parameter_count_and_kv_size():
    shape = SHAPES["llama-3.1-8b"]
    assert llama_parameters(shape) == 8_030_261_248
    assert kv_bytes_per_token(shape, 2.0) == 2 * 32 * 8 * 128 * 2 == 131_072


@pytest.mark.parametrize("gpu", ["h100", "h200"])
def test_the_traces_gpus_have_a_bandwidth_and_nvml_facts_agree_with_the_table(gpu):
    trace = json.loads((FIXTURES / f"nvml-trace-{gpu}.json").read_text())
    name = trace["device"]["name"]
    table, source = peak_bandwidth({"name": name})
    assert table == SPEC[gpu] and source.startswith("spec table")
    clock = max(row["mem_clock_MHz"] for row in trace["rows"])
    nvml, source = peak_bandwidth({"name": name, "memory_bus_width_bits": BUS_BITS[gpu],
                                   "max_mem_clock_mhz": clock})
    assert source.startswith("NVML") and nvml == 2 * clock * 1e6 * BUS_BITS[gpu] / 8
    assert abs(nvml / table - 1) < 0.03


def test_the_floor_of_the_worked_example():
    sizes = model_bytes("dummy:llama-3.1-8b", {"dtype": "bfloat16"})
    assert sizes.weight_bytes == 8_030_261_248 * 2
    floor = step_floor_s(sizes.weight_bytes, 32 * 1000 * sizes.kv_bytes_per_token, 4.8e12)
    assert floor == pytest.approx((16_060_522_496 + 4_194_304_000) / 4.8e12)
    assert floor == pytest.approx(4.22e-3, rel=1e-3)
    fp8 = model_bytes("dummy:llama-3.1-8b", {"quantization": "fp8", "kv_cache_dtype": "fp8"})
    assert fp8.weight_bytes == 8_030_261_248 and fp8.kv_bytes_per_token == 65_536


def test_an_unknown_gpu_or_model_has_no_floor():
    assert peak_bandwidth({"name": "Some Accelerator"})[0] is None
    assert model_bytes("meta-llama/Llama-3.1-8B-Instruct", {}) is None
    assert peak_bandwidth({"name": "NVIDIA H100 PCIe"})[0] == 2.0e12  # not the SXM figure
