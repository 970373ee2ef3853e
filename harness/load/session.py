"""StreamSession: HTTP/1.1 keep-alive connections on an asyncio protocol, for streamed POSTs.

Each connection parses the response (httptools) in the event loop's read callback and feeds
its body straight to a StreamEvents, stamped with the time the bytes arrived: no task wakes
per chunk. Connections are pooled per server and reused one request at a time.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

from harness.load.sse import ERROR_TEXT_LIMIT, StreamEvents


class ServerDisconnected(OSError):
    """The server closed the connection before the response ended."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses the response in the read callback."""

    def __init__(self, pool: list[_Connection], registry: set[_Connection]):
        self.pool = pool  # where it waits, idle, for its next request
        self.registry = registry  # every open connection of the session
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.done: asyncio.Future | None = None  # the current request's
        self.events: StreamEvents | None = None
        self.received = False  # any byte of the current response yet
        self.complete = True  # the current response was read to its end
        self.status = 0
        self.framed = False  # the body has a length or is chunked (else: until close)
        self.error_body: list[bytes] = []
        self.now = 0.0

    # called by the session
    def request(self, data: bytes, events: StreamEvents) -> asyncio.Future:
        self.done = asyncio.get_running_loop().create_future()
        self.events, self.received, self.complete = events, False, False
        self.status, self.framed, self.error_body = 0, False, []
        self.transport.write(data)
        return self.done

    def abort(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.abort()

    # asyncio
    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.now = time.perf_counter()  # the arrival stamp of every event these bytes end
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._settle(err.__context__ if isinstance(err.__context__, Exception)
                         else ValueError(f"bad HTTP response: {err}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.registry.discard(self)
        if self in self.pool:
            self.pool.remove(self)
        if self.complete:
            return
        if self.status and not self.framed:  # a body that ends when the connection does
            try:
                self.on_message_complete()
            except (ValueError, KeyError, TypeError) as err:  # its last line, malformed
                self._settle(err)
            return
        self.complete = True
        how = ("the connection was reset" if isinstance(exc, ConnectionResetError)
               else "the server closed the connection")
        self._settle(ServerDisconnected(how + (" before replying" if not self.received
                                               else " in the middle of a response")))

    # httptools
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.status != 200:
            if sum(map(len, self.error_body)) < 4 * ERROR_TEXT_LIMIT:
                self.error_body.append(body)
        elif self.done is not None and not self.done.done() and self.events.feed(body,
                                                                                 self.now):
            self._settle(None)

    def on_message_complete(self) -> None:
        self.complete = True
        if self.status != 200:
            text = b"".join(self.error_body).decode(errors="replace")
            record = self.events.record
            record.fail("http", f"HTTP {self.status}: {text[:ERROR_TEXT_LIMIT]}")
            record.http_status = self.status
        elif self.done is not None and not self.done.done():
            self.events.end()
        self._settle(None)
        if self.parser.should_keep_alive() and not self.lost:
            self.pool.append(self)
        else:
            self.transport.close()

    def _settle(self, error: BaseException | None) -> None:
        """End the current request (once): with an error, or normally."""
        done = self.done
        if done is None or done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


class StreamSession:
    """A client session for streamed completions, used the way an aiohttp ClientSession is:
    `async with StreamSession() as session: await stream_completion(session, ...)`.

    HTTP/1.1 keep-alive connections are pooled per (scheme, host, port), one request at a
    time each; https uses `ssl_context` (the system's default trust if None). No proxies.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[tuple, _Target] = {}
        self._open: set[_Connection] = set()

    async def __aenter__(self) -> StreamSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for conn in list(self._open):
            conn.abort()
        self._open.clear()
        self._pools.clear()
        self._targets.clear()
        await asyncio.sleep(0)  # let the transports finish closing

    async def preconnect(self, url: str, count: int) -> None:
        """Open `count` idle connections to `url`'s server now, so that the first requests of
        a run do not pay for them."""
        target = self._target(url, {})
        conns = await asyncio.gather(*(self._checkout(target, fresh=True) for _ in range(count)))
        for conn, _ in conns:
            conn.pool.append(conn)

    async def post_stream(self, url: str, body: bytes, headers: dict[str, str],
                          events: StreamEvents) -> None:
        """POST `body` to `url`; feed the 200 response's body to `events`, or put the status
        and body of any other response into the record's error."""
        target = self._target(url, headers)
        data = target.head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        conn, reused = await self._checkout(target)
        try:
            try:
                await conn.request(data, events)
            except ServerDisconnected:
                if not reused or conn.received:
                    raise
                # A kept-alive connection the server had just closed: the request never
                # reached it, so it goes again on a new connection.
                conn, _ = await self._checkout(target, fresh=True)
                await conn.request(data, events)
        except BaseException:  # timed out, cancelled or failed: the connection is done for
            conn.abort()
            raise
        # Ended normally: the connection returns to the pool once the response has ended
        # (the chunked terminator may still be on its way after [DONE]).

    def _target(self, url: str, headers: dict[str, str]) -> _Target:
        """Where and how to send a POST to `url`, worked out once per (url, headers)."""
        key = (url, tuple(headers.items()))
        target = self._targets.get(key)
        if target is None:
            parts = urlsplit(url)
            secure = parts.scheme == "https"
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}",
                     "Accept: */*", "User-Agent: harness", "Content-Type: application/json"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
            port = parts.port or (443 if secure else 80)
            pool = self._pools.setdefault((parts.scheme, parts.hostname, port), [])
            target = self._targets[key] = _Target(parts.hostname, port, secure, head, pool)
        return target

    async def _checkout(self, target: _Target, fresh: bool = False
                        ) -> tuple[_Connection, bool]:
        pool = target.pool
        while pool and not fresh:
            conn = pool.pop()
            if not conn.lost:
                return conn, True
        if target.secure and self._ssl is None:
            self._ssl = ssl.create_default_context()  # once: loading the CA store takes ~30 ms
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Connection(pool, self._open),
                                               target.host, target.port,
                                               ssl=self._ssl if target.secure else None)
        self._open.add(conn)
        return conn, False


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    secure: bool
    head: bytes  # the request's head up to its Content-Length
    pool: list[_Connection] = field(compare=False)  # idle connections to host:port
