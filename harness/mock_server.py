"""A mock OpenAI-compatible streaming server with a known token schedule, for measuring the
client itself (`harness selftest client`, benchmarks/) and for tests. It is no stand-in for
vLLM in end-to-end tests.

    python -m harness.mock_server --port 8000 --interval-ms 10 [--workers N]

It serves POST /v1/completions (streaming only), GET /health and GET /v1/models. Like a vLLM
engine, each worker runs in *steps*: every `interval_s` each running stream gets its next chunk
of `tokens_per_chunk` tokens; a new request joins at the next step. Chunks are byte for byte in
vLLM 0.32's format (usage on every chunk when `continuous_usage_stats` is asked for, then a
usage chunk and `[DONE]`), so the real client counts tokens exactly.

Every token chunk is stamped with `time.perf_counter()` just before its bytes are handed to
the kernel. On Linux perf_counter is CLOCK_MONOTONIC, one clock for every process on the
machine, so a client's arrival stamps and these write stamps can be subtracted. The stamps stay
in the server (the stream carries nothing extra) and are fetched afterwards from each worker's
control port (GET /mock/stamps); a request is known by the first token id of its prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections import deque
from dataclasses import asdict, dataclass
from functools import lru_cache

from harness.engines.base import ServerHandle
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.load.loop import new_event_loop

MAX_HEAD_BYTES = 1 << 16
FINGERPRINT = "vllm-0.32.0-mock"
REQUEST_ID = "cmpl-" + "0" * 32  # the length of vLLM's ids; the client ignores them
CREATED = 1_700_000_000
TOKEN_TEXT = " tok"
KEPT = 200_000  # finished streams and steps remembered until their stamps are fetched


@dataclass(frozen=True)
class Schedule:
    """What every request gets: one chunk per step, `tokens_per_chunk` tokens a chunk."""

    interval_s: float = 0.01  # between steps; 0 = steps back to back (as fast as it can)
    tokens_per_chunk: int = 1
    tokens: int | None = None  # tokens per request; None = the request's max_tokens

    def chunks(self, tokens: int) -> int:
        return -(-tokens // self.tokens_per_chunk)


# --- the bytes on the wire -------------------------------------------------------------------

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
                  include_usage: bool, continuous: bool) -> tuple[bytes, ...]:
    """The HTTP chunks of one stream, built once per shape: one per step; the last one also
    carries the usage chunk, [DONE] and the end of the chunked body."""
    out = []
    done = 0
    while done < tokens:
        size = min(tokens_per_chunk, tokens - done)
        done += size
        out.append(_http_chunk(_token_event(model, size, done, prompt_tokens, continuous,
                                            done == tokens)))
    tail = b""
    if include_usage:
        tail += _event({"id": REQUEST_ID, "object": "text_completion", "created": CREATED,
                        "model": model, "choices": [], "usage": _usage(prompt_tokens, tokens),
                        "system_fingerprint": FINGERPRINT})
    tail += b"data: [DONE]\n\n"
    out[-1] += _http_chunk(tail) + b"0\r\n\r\n"
    return tuple(out)


def _response(status: str, body: bytes, content_type: str, close: bool) -> bytes:
    head = (f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "")
            + "\r\n")
    return head.encode() + body


def _json_response(status: str, value: object, close: bool) -> bytes:
    return _response(status, json.dumps(value).encode(), "application/json", close)


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
               b"transfer-encoding: chunked\r\n")


# --- one worker: the step loop and the HTTP protocol -------------------------------------------

class Stream:
    """One request being streamed: its pre-built chunks and the write stamp of each."""

    __slots__ = ("conn", "chunks", "key", "sent", "stamps")

    def __init__(self, conn: Connection, chunks: tuple[bytes, ...], key: int):
        self.conn = conn
        self.chunks = chunks
        self.key = key
        self.sent = 0
        self.stamps = array("d")


class Engine:
    """The worker's step clock: each step writes the next chunk of every running stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop, schedule: Schedule):
        self.loop = loop
        self.schedule = schedule
        self.running: list[Stream] = []
        self.next_step: float | None = None  # perf_counter time the next step is due
        # Bounded, for a server left running with nobody fetching: the newest are kept.
        self.step_lag: deque[float] = deque(maxlen=KEPT)  # how late each step started, s
        self.finished: deque[Stream] = deque(maxlen=KEPT)  # their stamps not yet fetched
        self.chunks_written = 0

    def admit(self, stream: Stream) -> None:
        self.running.append(stream)
        if self.next_step is None:  # idle: the first token comes one step from now
            self.next_step = time.perf_counter() + self.schedule.interval_s
            self._arm()

    def _arm(self) -> None:
        delay = self.next_step - time.perf_counter()
        if delay <= 0:
            self.loop.call_soon(self._step)
        else:  # the delay is reckoned on perf_counter; the loop's clock only counts it down
            self.loop.call_later(delay, self._step)

    def _step(self) -> None:
        now = time.perf_counter()
        if now < self.next_step:  # a timer that fired early (uvloop counts whole ms): never
            self._arm()  # write ahead of the schedule
            return
        self.step_lag.append(now - self.next_step)
        perf_counter = time.perf_counter
        still = []
        for stream in self.running:
            if not stream.conn.closed:
                # Stamped just before the write: on loopback the bytes can be read the
                # moment write() hands them to the kernel, before it returns.
                stream.stamps.append(perf_counter())
                stream.conn.transport.write(stream.chunks[stream.sent])
                stream.sent += 1
                if stream.sent < len(stream.chunks):
                    still.append(stream)
                    continue
                stream.conn.stream_done()
            self.finished.append(stream)
        self.chunks_written += len(self.running)
        self.running = still
        if still:
            # Steps stay on the absolute grid; a late step is followed at once by the next.
            self.next_step += self.schedule.interval_s
            self._arm()
        else:
            self.next_step = None

    def take_stamps(self) -> dict:
        stamps = [[stream.key, stream.stamps.tolist()] for stream in self.finished]
        lags = sorted(self.step_lag)
        report = {"pid": os.getpid(), "requests": stamps, "steps": len(lags),
                  "step_lag_p50_s": lags[len(lags) // 2] if lags else 0.0,
                  "step_lag_p99_s": lags[int(len(lags) * 0.99)] if lags else 0.0,
                  "step_lag_max_s": lags[-1] if lags else 0.0,
                  "chunks_written": self.chunks_written}
        self.finished.clear()
        self.step_lag.clear()
        self.chunks_written = 0
        return report


class Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, one request at a time (the client does not pipeline)."""

    def __init__(self, engine: Engine):
        self.engine = engine
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
                self._finish(_json_response("431 Request Header Fields Too Large", {}, True),
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
            self._finish(_json_response("400 Bad Request", {}, True), close=True)
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
            self._finish(_response("200 OK", b"", "application/json", self.close_after))
        elif method == "GET" and path == "/v1/models":
            self._finish(_json_response("200 OK", {"object": "list", "data": [
                {"id": "mock", "object": "model", "owned_by": "harness"}]}, self.close_after))
        elif method == "GET" and path == "/mock/stamps":
            self._finish(_json_response("200 OK", self.engine.take_stamps(), self.close_after))
        else:
            self._finish(_json_response("404 Not Found", {"error": {"message": path}},
                                        self.close_after))

    def _completion(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            prompt = request["prompt"]
            tokens = self.engine.schedule.tokens or int(request.get("max_tokens") or 16)
            options = request.get("stream_options") or {}
            if not request.get("stream") or tokens < 1:
                raise ValueError("the mock server streams only, at least one token")
        except (ValueError, KeyError, TypeError) as err:
            self._finish(_json_response("400 Bad Request", {"error": {"message": str(err)}},
                                        self.close_after))
            return
        token_ids = isinstance(prompt, list)
        prompt_tokens = len(prompt) if token_ids else len(str(prompt).split()) + 1
        key = prompt[0] if token_ids and prompt and isinstance(prompt[0], int) else -1
        include = bool(options.get("include_usage"))
        chunks = stream_chunks(str(request.get("model", "mock")), prompt_tokens, tokens,
                               self.engine.schedule.tokens_per_chunk, include,
                               include and bool(options.get("continuous_usage_stats")))
        self.streaming = True
        self.transport.write(STREAM_HEAD + (b"connection: close\r\n\r\n" if self.close_after
                                            else b"\r\n"))
        self.engine.admit(Stream(self, chunks, key))

    def stream_done(self) -> None:
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


def _listener(port: int, reuse_port: bool, listen: bool = True) -> socket.socket:
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


def _serve_worker(port: int, schedule: Schedule, report_fd: int) -> None:
    """Serve the shared port and a private control port until killed."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    engine = Engine(loop, schedule)
    shared, control = _listener(port, True), _listener(0, False)

    async def start() -> None:
        for sock in (shared, control):
            await loop.create_server(lambda: Connection(engine), sock=sock, backlog=4096)

    loop.run_until_complete(start())
    os.write(report_fd, f"{os.getpid()} {control.getsockname()[1]}\n".encode())
    os.close(report_fd)
    loop.run_forever()


# --- the process: workers under a supervisor ------------------------------------------------

def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its supervisor dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _fork_workers(probe: socket.socket, schedule: Schedule,
                  workers: int) -> tuple[list[int], int]:
    port = probe.getsockname()[1]
    read_fd, write_fd = os.pipe()
    pids = []
    for _ in range(workers):
        # Fork before any event loop or thread exists in this process: nothing to corrupt.
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            probe.close()
            _die_with_parent()
            try:
                _serve_worker(port, schedule, write_fd)
            finally:
                os._exit(1)
        pids.append(pid)
    os.close(write_fd)
    return pids, read_fd


def _read_reports(read_fd: int, workers: int) -> list[dict]:
    text = b""
    while text.count(b"\n") < workers:
        data = os.read(read_fd, 4096)
        if not data:
            raise RuntimeError("a worker died before it was ready")
        text += data
    os.close(read_fd)
    return [{"pid": int(pid), "control_port": int(cport)}
            for pid, cport in (line.split() for line in text.decode().splitlines())]


def serve(port: int, schedule: Schedule, workers: int, watch_stdin: bool,
          cpus: set[int] | None = None) -> int:
    """Start the workers (on `cpus` only, if given), print one JSON line when they are ready,
    supervise them."""
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)  # the workers inherit it
        except (OSError, AttributeError) as err:
            print(f"warning: running on every CPU: {err}", file=sys.stderr)
    # Bound, not listening: it holds the port (a free one if 0) while the workers bind it.
    probe = _listener(port, True, listen=False)
    port = probe.getsockname()[1]
    pids, read_fd = _fork_workers(probe, schedule, workers)

    def stop(*_: object) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        reports = _read_reports(read_fd, workers)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        stop()
    probe.close()  # every worker has bound the port by now
    print(json.dumps({"port": port, "schedule": asdict(schedule), "workers": reports}),
          flush=True)
    if watch_stdin:  # the parent holds our stdin; EOF means it is gone, however it went
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), stop()), daemon=True).start()
    os.waitpid(-1, 0)  # any worker that exits takes the server down with it
    print("error: a worker exited", file=sys.stderr)
    stop()
    return 1


def _alive(pid: int) -> bool:
    """Linux: the process exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# --- started from Python ----------------------------------------------------------------------

class MockServer:
    """`python -m harness.mock_server` as a subprocess, in its own session; stopped (the whole
    process group killed) on exit from the `with` block, on any error, and when this process
    dies (the server watches its stdin, which only this process holds)."""

    def __init__(self, schedule: Schedule = Schedule(), workers: int = 1,
                 startup_timeout_s: float = 20.0, cpus: set[int] | None = None):
        self.schedule = schedule
        self.workers = workers
        self.cpus = cpus  # where its processes may run (Linux); None: anywhere
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self.worker_ports: list[int] = []
        self.pids: list[int] = []  # the supervisor, then the workers
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, model: str = "mock") -> ServerHandle:
        """What the client needs: the extensions are vLLM's, as the mock speaks vLLM."""
        return ServerHandle(self.base_url, model, VLLM_EXTENSIONS)

    def start(self) -> MockServer:
        command = [sys.executable, "-m", "harness.mock_server", "--port", "0", "--watch-stdin",
                   "--workers", str(self.workers),
                   "--interval-ms", repr(self.schedule.interval_s * 1000),
                   "--tokens-per-chunk", str(self.schedule.tokens_per_chunk)]
        if self.schedule.tokens is not None:
            command += ["--tokens", str(self.schedule.tokens)]
        if self.cpus:
            command += ["--cpus", ",".join(map(str, sorted(self.cpus)))]
        self._errors = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._errors, start_new_session=True)
        try:
            ready = json.loads(self._ready_line())
        except BaseException:
            self.stop()
            raise
        self.port = ready["port"]
        self.worker_ports = [worker["control_port"] for worker in ready["workers"]]
        self.pids = [self._proc.pid] + [worker["pid"] for worker in ready["workers"]]
        return self

    def _ready_line(self) -> str:
        deadline = time.monotonic() + self.startup_timeout_s
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self._proc.poll() is not None:
                self._errors.seek(0)
                why = self._errors.read().decode(errors="replace").strip()[-500:]
                raise RuntimeError(f"mock server did not start: {why or 'timed out'}")
            if select.select([self._proc.stdout], [], [], min(left, 0.1))[0]:
                line += os.read(self._proc.stdout.fileno(), 4096)
        return line.decode()

    def stop(self) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)  # nothing to save: kill the group
        except ProcessLookupError:
            pass
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._errors):
            stream.close()
        self._proc = None
        deadline = time.monotonic() + 5.0  # the workers are not our children: see them go
        while any(map(_alive, self.pids)) and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take_stamps(self) -> list[dict]:
        """Each worker's write stamps since the last call (then forgotten there), with how
        late its steps ran: [{"pid", "requests": [[key, [stamp, ...]], ...], ...}]."""
        reports = []
        for port in self.worker_ports:
            url = f"http://127.0.0.1:{port}/mock/stamps"
            with urllib.request.urlopen(url, timeout=30) as response:
                reports.append(json.loads(response.read()))
        return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.mock_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--interval-ms", type=float, default=10.0, help="between steps")
    parser.add_argument("--tokens-per-chunk", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=None,
                        help="tokens per request [default: the request's max_tokens]")
    parser.add_argument("--cpus", default=None, metavar="0,1,...",
                        help="run on these CPUs only (Linux)")
    parser.add_argument("--watch-stdin", action="store_true",
                        help="exit when stdin closes (used when started from Python)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.tokens_per_chunk < 1 or args.interval_ms < 0:
        parser.error("--workers and --tokens-per-chunk must be >= 1, --interval-ms >= 0")
    schedule = Schedule(args.interval_ms / 1000, args.tokens_per_chunk, args.tokens)
    cpus = {int(cpu) for cpu in args.cpus.split(",")} if args.cpus else None
    return serve(args.port, schedule, args.workers, args.watch_stdin, cpus)


if __name__ == "__main__":
    sys.exit(main())
