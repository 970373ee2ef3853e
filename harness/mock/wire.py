"""The bytes on the wire: vLLM 0.32's SSE completion chunks, HTTP chunked framing and the
plain responses, built here so that the protocol only has to write them."""

from __future__ import annotations

import json
from functools import lru_cache

FINGERPRINT = "vllm-0.32.0-mock"
REQUEST_ID = "cmpl-" + "0" * 32  # the length of vLLM's ids; the client ignores them
CREATED = 1_700_000_000
TOKEN_TEXT = " tok"
STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
               b"transfer-encoding: chunked\r\n")


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(message: dict) -> bytes:
    return b"data: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens}


def _token_event(model: str, tokens: int, done: int, prompt_tokens: int, continuous: bool,
                 last: bool) -> bytes:
    choice = {"index": 0, "text": TOKEN_TEXT * tokens, "logprobs": None,
              "finish_reason": "length" if last else None, "stop_reason": None,
              "prompt_token_ids": None, "token_ids": None}
    message: dict = {"id": REQUEST_ID, "object": "text_completion", "created": CREATED,
                     "model": model, "choices": [choice]}
    if continuous:
        message["usage"] = _usage(prompt_tokens, done)
    return _event(message)


@lru_cache(maxsize=256)
def stream_chunks(model: str, prompt_tokens: int, tokens: int, tokens_per_chunk: int,
                  include_usage: bool, continuous: bool,
                  usage_tokens: int | None = None) -> tuple[bytes, ...]:
    """The HTTP chunks of one stream, built once per shape: one per step; the last one also
    carries the usage chunk, [DONE] and the end of the chunked body. `usage_tokens`: what the
    usage chunk counts, if not `tokens` (-1: no usage chunk at all)."""
    out = []
    done = 0
    while done < tokens:
        size = min(tokens_per_chunk, tokens - done)
        done += size
        out.append(_http_chunk(_token_event(model, size, done, prompt_tokens, continuous,
                                            done == tokens)))
    tail = b""
    usage_tokens = tokens if usage_tokens is None else usage_tokens
    if include_usage and usage_tokens >= 0:
        tail += _event({"id": REQUEST_ID, "object": "text_completion", "created": CREATED,
                        "model": model, "choices": [],
                        "usage": _usage(prompt_tokens, usage_tokens),
                        "system_fingerprint": FINGERPRINT})
    tail += b"data: [DONE]\n\n"
    out[-1] += _http_chunk(tail) + b"0\r\n\r\n"
    return tuple(out)


# An event cut off in the middle of its JSON, as a broken proxy or server might send it.
MALFORMED_CHUNK = _http_chunk(b'data: {"id":"' + REQUEST_ID.encode() + b'","choices":[{"te\n\n')


def http_response(status: str, body: bytes, content_type: str, close: bool,
                  extra_headers: str = "") -> bytes:
    head = (f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{extra_headers}"
            f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "")
            + "\r\n")
    return head.encode() + body


def json_response(status: str, value: object, close: bool, extra_headers: str = "") -> bytes:
    return http_response(status, json.dumps(value).encode(), "application/json", close,
                         extra_headers)
