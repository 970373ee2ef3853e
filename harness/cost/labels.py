"""How the cost answer names a measured point, and what counts as a missing value (None, or
NaN in a frame)."""

from __future__ import annotations

import math


def missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def point_label(max_num_seqs: int | None, tensor_parallel_size: int | None,
                rate_rps: float | None, concurrency: int | None, point: str | None) -> str:
    """'batch 16 conc 16', 'batch 16 @ 28.3 req/s', 'peak' on an engine's own batch limit."""
    parts = []
    if not missing(max_num_seqs):
        parts.append(f"batch {float(max_num_seqs):g}")
    if not missing(tensor_parallel_size) and tensor_parallel_size > 1:
        parts.append(f"tp {float(tensor_parallel_size):g}")
    if not missing(rate_rps):
        parts.append(f"@ {float(rate_rps):g} req/s")
    elif not missing(concurrency):
        parts.append(f"conc {float(concurrency):g}")
    else:
        parts.append(str(point if point is not None else "?"))
    return " ".join(parts)
