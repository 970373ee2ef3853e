"""How the cost answer names a measured point, and what counts as a missing value in its
frames (None or NaN)."""

from __future__ import annotations

import math


def missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def point_label(row: dict) -> str:
    """'batch 16 conc 16', 'batch 16 @ 28.3 req/s', 'peak' on an engine's own batch limit."""
    parts = []
    if not missing(row.get("max_num_seqs")):
        parts.append(f"batch {float(row['max_num_seqs']):g}")
    if not missing(row.get("tensor_parallel_size")) and row["tensor_parallel_size"] > 1:
        parts.append(f"tp {float(row['tensor_parallel_size']):g}")
    if not missing(row.get("rate_rps")):
        parts.append(f"@ {float(row['rate_rps']):g} req/s")
    elif not missing(row.get("concurrency")):
        parts.append(f"conc {float(row['concurrency']):g}")
    else:
        parts.append(str(row.get("point", "?")))
    return " ".join(parts)
