"""How fast this machine was when the run began, in about two seconds: one core's speed at plain
Python work and the memory bandwidth of a large copy, each the best of a few tries. Two runs of
one config on "the same" VM can differ by 2x because the VM did; this puts it on record, and
`harness compare` says so where it differs."""

from __future__ import annotations

import time

import numpy as np

from harness.contract.manifest import HostSpeed

LOOP = 2_000_000  # additions per try of the single-core loop
COPY_BYTES = 256 * 2**20  # far beyond any cache
TRIES = 3


def _single_core_mops() -> float:
    """Millions of Python additions a second on one core (the interpreter's own loop)."""
    best = float("inf")
    for _ in range(TRIES):
        began = time.perf_counter()
        total = 0
        for i in range(LOOP):
            total += i
        best = min(best, time.perf_counter() - began)
    return LOOP / best / 1e6


def _memory_gbps() -> float:
    """GB/s of a large copy: read once, written once."""
    source = np.ones(COPY_BYTES // 8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(TRIES):
        began = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - began)
    return 2 * COPY_BYTES / best / 1e9


def calibrate() -> HostSpeed:
    return HostSpeed(single_core_mops=round(_single_core_mops(), 1),
                     memory_gbps=round(_memory_gbps(), 2))
