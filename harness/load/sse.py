"""The event stream of a streamed /v1/completions request, apart from how its bytes travel.

`completion_payload` builds the request body with only the extensions a server accepts;
`StreamEvents` turns the response body, as its bytes arrive, into the chunks of a
RequestRecord (which chunks bear tokens, and how many: harness/load/client.py).
"""

from __future__ import annotations

import json
import sys

from harness.contract.records import RequestRecord
from harness.contract.server import (
    CONTINUOUS_USAGE,
    HF_GENERATION_CONFIG,
    IGNORE_EOS,
    INCLUDE_USAGE,
    MIN_TOKENS,
    ServerHandle,
)

try:  # msgspec decodes a chunk about five times faster than json, to the same values
    import msgspec

    _decode = msgspec.json.Decoder().decode
    encode_json = msgspec.json.encode
except ImportError:  # pragma: no cover - msgspec comes with the harness
    _decode = json.loads

    def encode_json(value: object) -> bytes:
        return json.dumps(value).encode()

ERROR_TEXT_LIMIT = 300  # how much of an error text a record keeps


def completion_payload(server: ServerHandle, prompt: list[int] | str, max_tokens: int) -> dict:
    """The request body, with only the extensions this server accepts."""
    ext = server.extensions
    payload: dict = {"model": server.model, "prompt": prompt, "max_tokens": max_tokens,
                     "stream": True}
    if INCLUDE_USAGE in ext:
        payload["stream_options"] = {"include_usage": True}
        if CONTINUOUS_USAGE in ext:
            payload["stream_options"]["continuous_usage_stats"] = True
    if IGNORE_EOS in ext:
        payload["ignore_eos"] = True
    if MIN_TOKENS in ext:
        payload["min_tokens"] = max_tokens
    if HF_GENERATION_CONFIG in ext:
        payload["generation_config"] = json.dumps(
            {"max_new_tokens": max_tokens, "min_new_tokens": max_tokens})
    return payload


class StreamEvents:
    """Turns the body of an SSE stream into the record's chunks, as its bytes arrive."""

    __slots__ = ("record", "continuous", "seen", "partial", "partial_time")

    def __init__(self, record: RequestRecord, continuous: bool):
        self.record = record
        self.continuous = continuous
        self.seen = 0  # cumulative completion_tokens so far
        self.partial: list[bytes] = []  # a line not yet ended
        self.partial_time = 0.0

    def feed(self, data: bytes, now: float) -> bool:
        """Take bytes that arrived at `now`; True once the stream is over ([DONE] or an error
        inside it): nothing after that counts."""
        if b"\n" not in data:
            self.partial.append(data)
            self.partial_time = now
            return False
        if self.partial:
            data = b"".join(self.partial) + data
            self.partial.clear()
        lines = data.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line and self._line(line, now):  # (blank lines only separate events)
                return True
        if rest:
            self.partial.append(rest)
            self.partial_time = now
        return False

    def end(self) -> None:
        """The body ended: a last line without a newline still counts."""
        if self.partial:
            line = b"".join(self.partial)
            self.partial.clear()
            self._line(line, self.partial_time)

    def _line(self, raw: bytes, now: float) -> bool:
        if raw.startswith(b"data: {") and raw.endswith(b"}"):
            data = raw[6:]  # the usual event: nothing to strip, not [DONE]
        else:
            line = raw.strip()
            if not line.startswith(b"data:"):
                return False  # blank separators and ':' keep-alive comments
            data = line[5:].strip()
            if data == b"[DONE]":
                return True
        message = _decode(data)
        if not isinstance(message, dict):
            raise ValueError(f"an event is not a JSON object: {data[:60]!r}")
        record = self.record
        if "error" in message:  # vLLM reports errors inside a 200 stream
            record.fail("server", f"error in stream: {json.dumps(message['error'])}")
            return True
        usage = message.get("usage")
        choices = message.get("choices")
        if choices:
            if self.continuous and usage:
                tokens = usage["completion_tokens"] - self.seen
                self.seen = usage["completion_tokens"]
            elif usage and not choices[0].get("text"):
                # A closing chunk that only brings usage; if no text came before (a decoder
                # can hold back every byte of a partial character), the tokens came now.
                tokens = 0 if record.chunk_times else usage.get("completion_tokens") or 0
            else:  # one token per chunk when the engine does not stream usage
                tokens = 1
            if tokens > 0:
                record.chunk_times.append(now)
                record.chunk_tokens.append(tokens)
            reason = choices[0].get("finish_reason")
            if reason:  # interned: a long point holds one copy of "length", not one per record
                record.finish_reason = sys.intern(reason)
        if usage and (not choices or not self.continuous):  # the final count
            record.prompt_tokens = usage.get("prompt_tokens")
            record.completion_tokens = usage.get("completion_tokens")
        return False
