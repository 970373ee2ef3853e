"""Engine lifecycle HTTP: a server on this machine is reached directly whatever proxy the
environment names; other hosts go through the proxy as the environment says."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.engines.http import completion_ok, get_status, is_loopback, post_json
from harness.engines.process import free_port


class Recorder(BaseHTTPRequestHandler):
    seen: list[str]

    def answer(self, body: bytes) -> None:
        self.server.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        self.answer(b"ok")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.answer(b'{"choices": [{"text": "hi"}]}')

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.seen = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_proxy(monkeypatch):
    """Every proxy variable pointing at a port nothing listens on, and no no_proxy."""
    proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_a_local_server_is_reached_past_a_proxy_that_cannot_reach_it(server, dead_proxy):
    port = server.server_address[1]
    for host in ("127.0.0.1", "localhost"):
        assert get_status(f"http://{host}:{port}/health") == 200
    status, _ = post_json(f"http://127.0.0.1:{port}/v1/completions", {"prompt": "x"})
    assert status == 200
    assert completion_ok(f"http://127.0.0.1:{port}", {"prompt": "x"}) == (
        True, '{"choices": [{"text": "hi"}]}')


def test_another_host_goes_through_the_environments_proxy(server, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert get_status("http://gpu-box.invalid:8000/health") == 200
    assert server.seen == ["http://gpu-box.invalid:8000/health"]  # the proxy got it


def test_which_hosts_are_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "LOCALHOST"]))
    assert not any(map(is_loopback, [None, "10.0.0.1", "gpu-box", "0.0.0.0"]))
