"""The mock server: its exact token schedule, its write stamps, its process lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import aiohttp
import pytest

from harness.contract.server import ServerHandle
from harness.load.client import stream_completion
from harness.load.session import StreamSession
from harness.mock import MockServer, Schedule

from .aiohttp_reference import stream_completion_aiohttp
from .conftest import running
from .loads import closed_loop, workload

INTERVAL_S = 0.005


@pytest.fixture(scope="module")
def mock():
    with MockServer(Schedule(INTERVAL_S, tokens_per_chunk=3), workers=2) as server:
        yield server


def fetch(mock: MockServer, key: int, max_tokens: int, fast: bool = True, extensions=None):
    server = mock.handle() if extensions is None else ServerHandle(mock.base_url, "mock",
                                                                    frozenset(extensions))

    async def go():
        session = StreamSession() if fast else aiohttp.ClientSession()
        send = stream_completion if fast else stream_completion_aiohttp
        async with session:
            return await send(session, server, 0, [key, 7, 7, 7, 7], max_tokens, 10.0)
    return asyncio.run(go())


def stamps_of(mock: MockServer) -> dict[int, list[float]]:
    return {key: stamps for report in mock.take_stamps() for key, stamps in report["requests"]}


@pytest.mark.parametrize("fast", [True, False], ids=["StreamSession", "aiohttp"])
def test_the_client_counts_the_schedule_exactly(mock, fast):
    mock.take_stamps()
    record = fetch(mock, 101, 10, fast)
    assert record.ok, record.error
    assert list(record.chunk_tokens) == [3, 3, 3, 1]  # 10 tokens, 3 a chunk
    assert (record.prompt_tokens, record.completion_tokens) == (5, 10)
    assert record.finish_reason == "length"
    # one chunk a step, the first a step after the request came: never sooner
    assert record.chunk_times[-1] - record.send_time >= 4 * INTERVAL_S
    written = stamps_of(mock)[101]
    assert len(written) == 4
    for sent, arrived in zip(written, record.chunk_times, strict=True):
        assert sent <= arrived < sent + 0.5  # one clock: CLOCK_MONOTONIC
    assert written[-1] <= record.done_time


def test_closed_loop_counts_every_token_of_every_request(mock):
    load = asyncio.run(closed_loop(mock.handle(), workload(range(1, 500), 6, 7), 4, 12, 10))
    records, start, end = load.records, load.start, load.end
    assert [r.index for r in records] == list(range(12))
    for record in records:
        assert record.ok, record.error
        assert list(record.chunk_tokens) == [3, 3, 1]
        assert (record.prompt_tokens, record.completion_tokens) == (6, 7)
        assert start <= record.send_time <= record.first_token_time <= record.done_time <= end


def test_without_usage_it_streams_like_vllm_does(mock):
    """No stream_options: no usage anywhere; the client counts a token per chunk."""
    record = fetch(mock, 102, 4, extensions=set())
    assert record.ok, record.error
    assert list(record.chunk_tokens) == [1, 1] and record.completion_tokens is None
    body = json.dumps({"model": "tiny", "prompt": "hello there", "max_tokens": 2,
                       "stream": True}).encode()
    with urllib.request.urlopen(urllib.request.Request(
            mock.base_url + "/v1/completions", data=body), timeout=5) as response:
        events = response.read().decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    first = json.loads(events[0].removeprefix("data: "))
    assert first["object"] == "text_completion" and first["model"] == "tiny"
    assert first["choices"][0]["finish_reason"] == "length" and "usage" not in first


def test_health_models_and_bad_requests(mock):
    with urllib.request.urlopen(mock.base_url + "/health", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(mock.base_url + "/v1/models", timeout=5) as response:
        assert json.loads(response.read())["data"][0]["id"] == "mock"
    bad = urllib.request.Request(mock.base_url + "/v1/completions", data=json.dumps(
        {"model": "m", "prompt": [1], "max_tokens": 2}).encode())  # not streaming
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=5)
    assert err.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(mock.base_url + "/nowhere", timeout=5)
    assert err.value.code == 404


def test_stamps_come_from_every_worker(mock):
    mock.take_stamps()

    async def go():
        async with StreamSession() as session:
            return await asyncio.gather(*(
                stream_completion(session, mock.handle(), i, [200 + i, 1], 3, 10.0)
                for i in range(16)))
    records = asyncio.run(go())
    assert all(r.ok for r in records)
    reports = mock.take_stamps()
    assert len(reports) == 2 and {r["pid"] for r in reports} == set(mock.pids[1:])
    stamps = {key: s for report in reports for key, s in report["requests"]}
    assert set(stamps) == {200 + i for i in range(16)}
    assert all(len(s) == 1 for s in stamps.values())
    assert stamps_of(mock) == {}, "fetching forgets"


def test_the_helper_leaves_no_process_behind():
    with pytest.raises(RuntimeError, match="boom"):
        with MockServer(workers=2) as server:
            pids = server.pids
            assert len(pids) == 3 and all(running(pid) for pid in pids)
            raise RuntimeError("boom")
    assert not any(running(pid) for pid in pids)


def test_a_server_that_cannot_start_is_reported_and_gone():
    server = MockServer(Schedule(tokens_per_chunk=0))
    with pytest.raises(RuntimeError, match="(?s)did not start.*tokens-per-chunk"):
        server.start()
    assert server._proc is None


def test_the_server_dies_with_the_process_that_started_it():
    script = ("from harness.mock import MockServer\n"
              "server = MockServer(workers=2).start()\n"
              "print(*server.pids, flush=True)\n"
              "import time; time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 3 and all(running(pid) for pid in pids)
    os.kill(parent.pid, signal.SIGKILL)  # no cleanup code runs
    parent.wait()
    deadline = time.monotonic() + 5
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids)
