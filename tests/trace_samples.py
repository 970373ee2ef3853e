"""Small traces in the public traces' own layouts, seeded: what the tests replay.

    azure     TIMESTAMP,ContextTokens,GeneratedTokens   (2023-11-16 18:15:46.6805900)
    burstgpt  Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
    mooncake  {"timestamp": ms, "input_length", "output_length", "hash_ids"}
    jsonl     {"timestamp": s, "input_tokens", "output_tokens"}

Arrivals are Poisson at `rate`; prompt lengths lie in [min_in, max_in], outputs in
[min_out, max_out]. Mooncake prompts start with `shared` blocks common to every request
(a system prompt) and continue with blocks of their own, numbered on as the real trace does.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

START = datetime(2023, 11, 16, 18, 15, 46, 680590)


def sample_rows(n: int, rate: float, seed: int, lengths: tuple[int, int, int, int]
                ) -> list[tuple[float, int, int]]:
    rng = np.random.default_rng(seed)
    times = np.concatenate([[0.0], np.cumsum(rng.exponential(1 / rate, n - 1))])
    min_in, max_in, min_out, max_out = lengths
    return [(float(t), int(rng.integers(min_in, max_in + 1)),
             int(rng.integers(min_out, max_out + 1))) for t in times]


def write_trace(path: Path, fmt: str, n: int = 300, rate: float = 20.0, seed: int = 0,
                lengths: tuple[int, int, int, int] = (16, 200, 4, 24), block_tokens: int = 512,
                shared: int = 1) -> Path:
    rows = sample_rows(n, rate, seed, lengths)
    if fmt == "azure":
        lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
        lines += [f"{(START + timedelta(seconds=t)).strftime('%Y-%m-%d %H:%M:%S.%f')}0,{i},{o}"
                  for t, i, o in rows]
    elif fmt == "burstgpt":
        lines = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"]
        lines += [f"{5 + t:.3f},"
                  f"{'ChatGPT' if k % 3 else 'GPT-4'},{i},{o},{i + o},Conversation log"
                  for k, (t, i, o) in enumerate(rows)]
    elif fmt == "mooncake":
        lines, next_id = [], shared
        for t, i, o in rows:
            blocks = -(-i // block_tokens)
            own = list(range(next_id, next_id + max(blocks - shared, 0)))
            next_id += len(own)
            hashes = list(range(min(shared, blocks))) + own
            lines.append(json.dumps({"timestamp": round(t * 1000), "input_length": i,
                                     "output_length": o, "hash_ids": hashes}))
    elif fmt == "jsonl":
        lines = [json.dumps({"timestamp": round(t, 6), "input_tokens": i, "output_tokens": o})
                 for t, i, o in rows]
    else:
        raise ValueError(fmt)
    path.write_text("\n".join(lines) + "\n")
    return path
