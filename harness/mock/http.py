"""The HTTP/1.1 side of a worker: one `Connection` protocol per client connection, and the
sockets the workers listen on."""

from __future__ import annotations

import asyncio
import json
import socket
import struct

from harness.mock.clock import StepClock, Stream
from harness.mock.faults import BAD_USAGE_EXTRA, Fault, FaultCycle
from harness.mock.wire import (
    MALFORMED_CHUNK,
    STREAM_HEAD,
    http_response,
    json_response,
    stream_chunks,
)

ERROR_STATUS = {"http500": "500 Internal Server Error", "http429": "429 Too Many Requests"}

MAX_HEAD_BYTES = 1 << 16


class Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, one request at a time (the client does not pipeline)."""

    def __init__(self, clock: StepClock, faults: FaultCycle | None = None):
        self.clock = clock
        self.faults = faults or FaultCycle(())
        self.fault: Fault | None = None  # the one the current stream ends with
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.streaming = False
        self.close_after = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # small writes must leave at once, like any SSE server's
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.streaming and not self.closed:
            request = self._take_request()
            if request is None:
                return
            self._handle(*request)

    def _take_request(self) -> tuple[str, str, dict[str, str], bytes] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                self._finish(json_response("431 Request Header Fields Too Large", {}, True),
                             close=True)
            return None
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        method, path, _version = (lines[0].split(" ") + ["", ""])[:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            self._finish(json_response("400 Bad Request", {}, True), close=True)
            return None
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        return method, path, headers, body

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.close_after = headers.get("connection", "").lower() == "close"
        if method == "POST" and path == "/v1/completions":
            self._completion(body)
        elif method == "GET" and path == "/health":
            self._finish(http_response("200 OK", b"", "application/json", self.close_after))
        elif method == "GET" and path == "/v1/models":
            self._finish(json_response("200 OK", {"object": "list", "data": [
                {"id": "mock", "object": "model", "owned_by": "harness"}]}, self.close_after))
        elif method == "GET" and path == "/mock/stamps":
            self._finish(json_response("200 OK", self.clock.take_stamps(), self.close_after))
        else:
            self._finish(json_response("404 Not Found", {"error": {"message": path}},
                                       self.close_after))

    def _completion(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            prompt = request["prompt"]
            tokens = self.clock.schedule.tokens or int(request.get("max_tokens") or 16)
            options = request.get("stream_options") or {}
            if not request.get("stream") or tokens < 1:
                raise ValueError("the mock server streams only, at least one token")
        except (ValueError, KeyError, TypeError) as err:
            self._finish(json_response("400 Bad Request", {"error": {"message": str(err)}},
                                       self.close_after))
            return
        token_ids = isinstance(prompt, list)
        prompt_tokens = len(prompt) if token_ids else len(str(prompt).split()) + 1
        key = prompt[0] if token_ids and prompt and isinstance(prompt[0], int) else -1
        include = bool(options.get("include_usage"))
        fault = self.faults.next()
        if fault.name in ERROR_STATUS:
            self._refuse(fault)
            return
        usage = {"no-usage": -1, "bad-usage": tokens + BAD_USAGE_EXTRA}.get(fault.name)
        chunks = stream_chunks(str(request.get("model", "mock")), prompt_tokens, tokens,
                               self.clock.schedule.tokens_per_chunk, include,
                               include and bool(options.get("continuous_usage_stats")), usage)
        if fault.name == "malformed":
            chunks = (chunks[0], MALFORMED_CHUNK, *chunks[1:])
        elif fault.name in ("reset", "stall"):
            chunks, self.fault = chunks[:fault.after], fault
        self.streaming = True
        self.transport.write(STREAM_HEAD + (b"connection: close\r\n\r\n" if self.close_after
                                            else b"\r\n"))
        if chunks:
            self.clock.admit(Stream(self, chunks, key))
        else:
            self.stream_done()

    def _refuse(self, fault: Fault) -> None:
        status = ERROR_STATUS[fault.name]
        body = {"error": {"message": f"mock fault: {status}", "type": "mock_fault",
                          "code": int(status.split()[0])}}
        retry = "retry-after: 1\r\n" if fault.name == "http429" else ""
        self._finish(json_response(status, body, self.close_after, retry))

    def _reset(self) -> None:
        """Abort the connection with a TCP RST, as a crashed server's kernel would."""
        if self.closed:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()
        self.closed = True

    def stream_done(self) -> None:
        fault, self.fault = self.fault, None
        if fault is not None and fault.name == "stall":
            return  # streaming forever: nothing more is written, nothing more is read
        if fault is not None and fault.name == "reset":  # once the last chunk has left
            self.clock.loop.call_later(0.005, self._reset)
            return
        self.streaming = False
        if self.close_after:
            self.transport.close()
        elif self.buffer:
            self.data_received(b"")

    def _finish(self, response: bytes, close: bool = False) -> None:
        self.transport.write(response)
        if self.close_after or close:
            self.transport.close()
            self.closed = True


def listener(port: int, reuse_port: bool, listen: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # every worker binds the port; the kernel spreads connections over them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    if not listen:
        return sock
    sock.listen(4096)
    sock.setblocking(False)
    return sock
