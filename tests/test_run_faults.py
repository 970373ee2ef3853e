"""`harness run` when things break under it, against the mock server as an external engine:
the results directory removed mid-point (the run stops with one line, exit 1, nothing written
back into it) and a server that hangs mid-point (the cell fails within request_timeout_s)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import yaml

from harness.mock import MockServer, Schedule


def test_results_directory_removed_while_a_point_runs(tmp_path, tiny_model):
    out = tmp_path / "results"
    with MockServer(Schedule(0.01)) as mock:
        config = {
            "model": "tiny", "tokenizer": str(tiny_model),
            "engine": {"kind": "external", "url": mock.base_url},
            "workload": {"input_tokens": 16, "output_tokens": 50},
            "load": {"concurrency": [1, 2], "requests": 10, "warmup_requests": 0},
        }
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(path), "--out",
                                 str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=os.environ.copy())
        first = out / "cells" / "default" / "points" / "c1.json"
        deadline = time.monotonic() + 120
        while not first.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.05)
        time.sleep(1.0)  # the second point is running
        shutil.rmtree(out)
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    assert "the results directory (its run.json) was removed during the run; point " \
           "default/c2 was not saved" in output.replace("\n", "")
    assert not out.exists(), "a removed results directory is not made again"


def test_a_hung_server_fails_the_cell_within_the_request_timeout(tmp_path, tiny_model):
    """The server stops answering altogether (SIGSTOP) in the middle of a point: the point
    ends once nothing has answered for request_timeout_s, the cell fails saying so, and the
    run ends with exit 1 instead of waiting out every request."""
    out = tmp_path / "results"
    timeout_s = 3.0
    with MockServer(Schedule(0.01)) as mock:
        config = {
            "model": "tiny", "tokenizer": str(tiny_model),
            "engine": {"kind": "external", "url": mock.base_url},
            "workload": {"input_tokens": 16, "output_tokens": 50},
            "load": {"concurrency": [2], "requests": 400, "warmup_requests": 0,
                     "request_timeout_s": timeout_s},
        }
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(path), "--out",
                                 str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=os.environ.copy())
        streamed, deadline = 0, time.monotonic() + 180
        while streamed < 4:  # the probe's one, then the point's: it is streaming
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            streamed += sum(len(report["requests"]) for report in mock.take_stamps())
            time.sleep(0.1)
        for pid in mock.pids:
            os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            output, _ = proc.communicate(timeout=120)
            took = time.monotonic() - stopped
        finally:
            for pid in mock.pids:
                os.kill(pid, signal.SIGCONT)
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    failure = json.loads((out / "cells" / "default" / "failed.json").read_text())
    assert "server stopped answering during point c2" in failure["reason"], failure["reason"]
    assert "it is hung" in failure["reason"]
    assert took < timeout_s + 30, f"the hung server took {took:.0f} s to be given up on"
