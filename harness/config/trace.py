"""Trace replay: which production trace a point replays, and reading it line by line.

Formats (the public traces' own layouts):
    azure     CSV `TIMESTAMP,ContextTokens,GeneratedTokens`, TIMESTAMP a wall-clock time
              (`2023-11-16 18:15:46.6805900`); Azure LLM inference traces 2023/2024
    burstgpt  CSV `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`,
              Timestamp in seconds; rows with 0 response tokens (failed requests) are skipped
    mooncake  JSONL `{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}`,
              every hash id one block of `block_tokens` (512) prompt tokens
    jsonl     JSONL `{"timestamp": s, "input_tokens", "output_tokens", "hash_ids"?: [...]}`

The file is read streaming (a multi-GB trace is never loaded whole) and reading stops at the
end of the window (`start_s` + `duration_s`, `max_requests`). Timestamps must not go back
in time: a trace out of order is refused with the line (sort it first). A request longer than
max_model_len is clipped (prompt first, never below 1 token) and counted.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from harness.config.base import Strict

TraceFormat = Literal["azure", "burstgpt", "mooncake", "jsonl"]
CSV_COLUMNS = {
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "burstgpt": ("Timestamp", "Request tokens", "Response tokens"),
}
JSON_KEYS = {
    "mooncake": ("timestamp", "input_length", "output_length"),
    "jsonl": ("timestamp", "input_tokens", "output_tokens"),
}


class TraceError(ValueError):
    """A trace file is missing or malformed; the message names the file (and line)."""


class TraceConfig(Strict):
    file: str = Field(description="the trace file (CSV or JSONL, per `format`)")
    format: TraceFormat
    time_scale: PositiveFloat = Field(
        1.0, description="multiplies the trace's gaps: 0.5 replays it twice as fast")
    rate: PositiveFloat | None = Field(
        None, description="rescale the times to this mean rate (requests/s) instead")
    start_s: NonNegativeFloat = Field(0.0, description="skip this much of the trace (its time)")
    duration_s: PositiveFloat | None = Field(
        None, description="replay this much of the trace (its time, before scaling)")
    max_requests: PositiveInt | None = None
    block_tokens: PositiveInt = Field(
        512, description="prompt tokens per hash id (Mooncake's traces use 512)")

    @model_validator(mode="after")
    def _one_scale(self) -> TraceConfig:
        if self.rate is not None and self.time_scale != 1.0:
            raise ValueError("set `rate` or `time_scale`, not both")
        return self


@dataclass(frozen=True)
class TraceRequest:
    offset_s: float  # from the first replayed request, after scaling
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Trace:
    requests: tuple[TraceRequest, ...]
    clipped: int = 0  # requests shortened to fit max_model_len
    skipped: int = 0  # rows the format marks as failed (BurstGPT: 0 response tokens)
    notes: list[str] = field(default_factory=list)

    @property
    def offsets(self) -> tuple[float, ...]:
        return tuple(r.offset_s for r in self.requests)


@dataclass(frozen=True)
class _Row:
    line: int
    time_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...]


@functools.lru_cache(maxsize=4)
def read_trace(config: TraceConfig, max_model_len: int | None = None) -> Trace:
    """The window of the trace the config names, its times scaled from 0."""
    rows, skipped = [], [0]
    first = None
    previous = None
    for row in _rows(config, skipped):
        if previous is not None and row.time_s < previous:
            raise TraceError(f"trace {config.file}, line {row.line}: timestamp goes back in "
                             "time (the trace must be sorted by time)")
        previous = row.time_s
        first = row.time_s if first is None else first
        at = row.time_s - first
        if at < config.start_s:
            continue
        if config.duration_s is not None and at >= config.start_s + config.duration_s:
            break
        rows.append(row)
        if config.max_requests is not None and len(rows) >= config.max_requests:
            break
    if not rows:
        raise TraceError(f"trace {config.file}: no requests in the replayed window "
                         f"(start_s {config.start_s:g}, duration_s {config.duration_s})")
    requests, clipped = _scaled(rows, config, max_model_len)
    return Trace(tuple(requests), clipped, skipped[0])


def _scaled(rows: list[_Row], config: TraceConfig, limit: int | None
            ) -> tuple[list[TraceRequest], int]:
    t0 = rows[0].time_s
    span = rows[-1].time_s - t0
    scale = config.time_scale
    if config.rate is not None:
        scale = (len(rows) - 1) / config.rate / span if span > 0 else 1.0
    found, clipped = [], 0
    for row in rows:
        prompt, output = row.input_tokens, row.output_tokens
        if limit is not None and prompt + output > limit:
            clipped += 1
            output = min(output, limit - 1)
            prompt = max(1, min(prompt, limit - output))
        found.append(TraceRequest((row.time_s - t0) * scale, prompt, output, row.hash_ids))
    return found, clipped


def _rows(config: TraceConfig, skipped: list[int]) -> Iterator[_Row]:
    path = Path(config.file).expanduser()
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise TraceError(f"trace {config.file}: {err.strerror or err}") from None
    with handle:
        if config.format in CSV_COLUMNS:
            yield from _csv_rows(config, handle, skipped)
        else:
            yield from _json_rows(config, handle)


def _csv_rows(config: TraceConfig, handle, skipped: list[int]) -> Iterator[_Row]:
    reader = csv.reader(handle)
    header = next(reader, None)
    wanted = CSV_COLUMNS[config.format]
    if header is None or not set(wanted) <= {name.strip() for name in header}:
        raise TraceError(f"trace {config.file}, line 1: a {config.format} trace needs the "
                         f"columns {', '.join(wanted)} (found {header})")
    at = [[name.strip() for name in header].index(name) for name in wanted]
    for cells in reader:
        line = reader.line_num
        if not cells or not "".join(cells).strip():
            continue
        if len(cells) <= max(at):
            raise TraceError(f"trace {config.file}, line {line}: {len(cells)} columns, "
                             f"the header has {len(header)}")
        stamp, prompt, output = (cells[i].strip() for i in at)
        time_s = _azure_time(config.file, line, stamp) if config.format == "azure" else \
            _number(config.file, line, wanted[0], stamp)
        output_tokens = _count(config.file, line, wanted[2], output, zero_ok=True)
        if output_tokens == 0:
            skipped[0] += 1
            continue
        yield _Row(line, time_s, _count(config.file, line, wanted[1], prompt),
                   output_tokens, ())


def _json_rows(config: TraceConfig, handle) -> Iterator[_Row]:
    keys = JSON_KEYS[config.format]
    per_second = 1000.0 if config.format == "mooncake" else 1.0
    for line, text in enumerate(handle, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            raise TraceError(f"trace {config.file}, line {line}: not valid JSON") from None
        if not isinstance(record, dict) or any(key not in record for key in keys):
            raise TraceError(f"trace {config.file}, line {line}: a {config.format} line needs "
                             f"the keys {', '.join(keys)}")
        stamp, prompt, output = (str(record[key]) for key in keys)
        hashes = record.get("hash_ids") or []
        if not isinstance(hashes, list) or not all(isinstance(h, int) for h in hashes):
            raise TraceError(f"trace {config.file}, line {line}: hash_ids must be a list of "
                             "whole numbers")
        yield _Row(line, _number(config.file, line, keys[0], stamp) / per_second,
                   _count(config.file, line, keys[1], prompt),
                   _count(config.file, line, keys[2], output), tuple(hashes))


def _number(file: str, line: int, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise TraceError(f"trace {file}, line {line}: {name} {text!r} is not a time >= 0")
    return value


def _count(file: str, line: int, name: str, text: str, zero_ok: bool = False) -> int:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value.is_integer() or value < (0 if zero_ok else 1):
        raise TraceError(f"trace {file}, line {line}: {name} {text!r} is not a positive "
                         "whole number of tokens")
    return int(value)


def _azure_time(file: str, line: int, text: str) -> float:
    """Seconds since the epoch of `2023-11-16 18:15:46.6805900` (any number of fraction
    digits, an optional UTC offset)."""
    stamp, _, zone = text.replace("T", " ").partition("+")
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        at = datetime.fromisoformat(whole + ("+" + zone if zone else "+00:00"))
        return at.timestamp() + (float("0." + fraction) if fraction else 0.0)
    except ValueError:
        raise TraceError(f"trace {file}, line {line}: TIMESTAMP {text!r} is not a date and "
                         "time") from None
