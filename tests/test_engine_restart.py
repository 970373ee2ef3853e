"""A server that dies on its first request is started once more; one that dies again fails
the start with its exit code. The server here is a real process: a small HTTP server that
answers /health and exits (code 3) on a completion while its marker file is missing."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from harness.contract.server import ServerHandle
from harness.engines.process import DiedOnFirstRequest, ProcessEngine

SERVER = textwrap.dedent('''
    import json, os, signal, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    marker, mode = sys.argv[1], sys.argv[2]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers()
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            if not os.path.exists(marker):
                if mode == "heal":
                    open(marker, "w").close()
                if mode == "oom":  # as the kernel's out-of-memory killer ends a process
                    os.kill(os.getpid(), signal.SIGKILL)
                os._exit(3)  # dies on its first request, the connection closed unanswered
            body = json.dumps({"choices": [{"text": "hi"}]}).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[3])), Handler).serve_forever()
''')


class DiesFirst(ProcessEngine):
    kind = "test"

    def __init__(self, tmp: Path, mode: str):
        super().__init__(tmp / "server.log", startup_timeout_s=30)
        self.script, self.marker, self.mode = tmp / "server.py", tmp / "served", mode
        self.script.write_text(SERVER)

    @classmethod
    def for_cell(cls, *args, **kwargs):  # not built from a config here
        raise NotImplementedError

    def command(self, port: int) -> list[str]:
        return [sys.executable, str(self.script), str(self.marker), self.mode, str(port)]

    def handle(self) -> ServerHandle:
        return ServerHandle(self.base_url, "m", frozenset())


def test_a_server_dying_on_its_first_request_is_started_once_more(tmp_path):
    engine = DiesFirst(tmp_path, "heal")
    with engine:
        engine.start()
        assert engine.alive()
    log = engine.log_path.read_text()
    assert "exited with code 3); starting it again" in log
    assert log.count("=== harness: starting") == 2
    assert not engine.alive()


def test_a_server_dying_twice_on_its_first_request_fails_with_its_exit_code(tmp_path):
    engine = DiesFirst(tmp_path, "die")
    with engine, pytest.raises(DiedOnFirstRequest, match=r"exited with code 3\)$"):
        engine.start()
    assert engine.log_path.read_text().count("=== harness: starting") == 2
    assert not engine.alive()


def test_a_server_killed_on_its_first_request_is_said_to_be_out_of_memory(tmp_path):
    engine = DiesFirst(tmp_path, "oom")
    with engine, pytest.raises(DiedOnFirstRequest, match=r"most likely out of memory"):
        engine.start()
    assert not engine.alive()
