"""The GPUs measured are the GPUs the server uses: the runner hands the server the measured
GPUs by UUID, then checks NVML's compute processes against the server's process group. Driven
with the fake NVML and the mock server run as a launched engine (no GPU, no vLLM)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.config import ExperimentConfig
from harness.contract.plan import build_plan
from harness.contract.progress import CellFailed, Notice, PointFinished
from harness.contract.server import ServerHandle
from harness.engines.process import ProcessEngine, group_members
from harness.engines.vllm import VLLM_EXTENSIONS
from harness.run import runner as runner_module
from harness.run.runner import Runner
from harness.store.run_store import RunStore, write_model
from harness.telemetry.placement import Placement, judge

from . import factories
from .fake_pynvml import H200_TRACE, FakeNvml, RealtimeClock, fake_box
from .test_nvml import NO_RAPL, open_monitor

A, B, C = "GPU-a", "GPU-b", "GPU-c"


# --- the verdict ------------------------------------------------------------------------------


def test_judge_places_the_server_on_exactly_the_measured_gpus():
    server = {10, 11, 12}
    mine = {A: {11}, B: {12}, C: {99}}
    assert judge([A, B], mine, server, exists=lambda pid: True) == Placement()
    stray = judge([A], mine, server, exists=lambda pid: True)
    assert stray.problem == f"the server computes on {B} (pid 12), which is not measured " \
                           f"(measured: {A})"
    idle = judge([A, B, C], mine, server, exists=lambda pid: True)
    assert idle.problem.startswith(f"no server process computes on measured GPU {C}")
    elsewhere = judge([A], {A: {99}}, server, exists=lambda pid: True)  # e.g. a CPU build
    assert elsewhere.problem.startswith(f"no server process computes on measured GPU {A}")


def test_judge_says_when_nothing_can_be_judged():
    none = judge([A], {A: set(), B: set()}, {10})
    assert none.problem is None and "NVML lists no process" in none.unchecked
    host_pids = judge([A], {A: {123456}}, {10}, exists=lambda pid: False)  # a PID namespace
    assert host_pids.problem is None and "--pid=host" in host_pids.unchecked
    unreadable = judge([A, B], {A: {10}}, {10})  # B not readable now: not held against it
    assert unreadable == Placement()


def test_the_monitor_lists_processes_on_every_gpu_it_can_read():
    nvml = fake_box(H200_TRACE, 3)
    nvml.gpus[0].processes = [501]
    nvml.gpus[1].processes = [502, 503]
    nvml.gpus[2].no_permission = True
    with open_monitor(nvml, visible="1", count=1) as monitor:
        assert monitor._nvml.compute_pids() == {nvml.gpus[0].uuid: {501},
                                                 nvml.gpus[1].uuid: {502, 503}}
        assert monitor.placement({502}).problem is None
        assert "computes on " + nvml.gpus[0].uuid in monitor.placement({501, 502}).problem
        assert monitor.sources["compute_processes"] == "nvmlDeviceGetComputeRunningProcesses_v2"
    assert open_monitor(FakeNvml(nvml.gpus, init_error=Exception)).placement({1}) == Placement()


# --- the server's side: its process group and its GPU environment ---------------------------


def test_group_members_are_the_live_processes_of_the_group():
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; "
                               "time.sleep(30)']); time.sleep(30)"], process_group=0)
    try:
        deadline = time.monotonic() + 10
        while len(group_members(leader.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = group_members(leader.pid)
        assert leader.pid in members and len(members) == 2
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


class MockEngine(ProcessEngine):
    """The mock server launched as an engine; once ready, NVML (the fake) lists its processes
    on the GPUs `place_on` names, as a server that chose its own GPUs would be listed."""

    kind = "vllm"

    def __init__(self, log_path: Path, nvml: FakeNvml, place_on: list[int] | None = None,
                 **options):
        super().__init__(log_path, startup_timeout_s=60, **options)
        self.nvml, self.place_on = nvml, place_on

    @classmethod
    def for_cell(cls, config, cell, log_path, create=True):
        raise NotImplementedError

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "harness.mock", "--port", str(port), "--interval-ms", "1"]

    def handle(self) -> ServerHandle:
        return ServerHandle(self.base_url, "tiny", VLLM_EXTENSIONS)

    def probe_request(self) -> dict:
        return {**super().probe_request(), "stream": True}  # the mock only streams

    def start(self) -> ServerHandle:
        handle = super().start()
        measured = [k for k, gpu in enumerate(self.nvml.gpus)
                    if self.gpus and gpu.uuid in self.gpus.split(",")]
        for index in measured if self.place_on is None else self.place_on:
            self.nvml.gpus[index].processes = sorted(self.server_pids())
        return handle


def test_the_server_is_handed_the_gpus_by_uuid_in_pci_order(tmp_path):
    engine = MockEngine(tmp_path / "log", fake_box(H200_TRACE, 1),
                        env={"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"})
    engine.use_gpus(["GPU-x", "GPU-y"])
    env = engine.environment()
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-x,GPU-y"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


# --- the runner ---------------------------------------------------------------------------------


def run_cell(tmp_path: Path, tiny_model: Path, monkeypatch, nvml: FakeNvml,
             place_on: list[int] | None, engine_config: dict) -> tuple[list, MockEngine, Path]:
    """One cell (one closed-loop point) of a launched engine: the mock server, measured on the
    fake NVML's GPUs."""
    config = ExperimentConfig.model_validate({
        "model": "tiny", "tokenizer": str(tiny_model), "engine": engine_config,
        "workload": {"input_tokens": 16, "output_tokens": 4},
        "load": {"concurrency": [2], "requests": 8, "warmup_requests": 0}})
    out = tmp_path / "results"
    store = RunStore(out)
    write_model(store.run_json, factories.manifest())
    engine = MockEngine(store.server_log("default"), nvml, place_on, env=config.engine.env,
                        gpus=config.engine.gpus)
    monkeypatch.setattr(runner_module, "make_engine", lambda *args: engine)
    monkeypatch.setattr(runner_module, "open_energy_monitor", functools.partial(
        runner_module.open_energy_monitor, nvml=nvml, sleep=lambda s: None, rapl_root=NO_RAPL))
    events: list = []
    Runner(config, "test", store, events.append).run(build_plan(config))
    return events, engine, out


def realtime_box(gpus: int) -> FakeNvml:
    return fake_box(H200_TRACE, gpus, clock=RealtimeClock(start=8.0))


def test_a_cell_runs_on_the_gpus_its_env_names_and_nowhere_else(tmp_path, tiny_model,
                                                                 monkeypatch):
    nvml = realtime_box(2)
    events, engine, out = run_cell(tmp_path, tiny_model, monkeypatch, nvml, None,
                                   {"env": {"CUDA_VISIBLE_DEVICES": "1"}})
    assert not [e for e in events if isinstance(e, (CellFailed, Notice))], events
    assert engine.gpus == nvml.gpus[1].uuid  # engine.env chose it; the server got its UUID
    (finished,) = [e.result for e in events if isinstance(e, PointFinished)]
    assert list(finished.energy.window.energy_j_per_gpu) == [nvml.gpus[1].uuid]
    telemetry = json.loads((out / "run.json").read_text())["telemetry"]["default"]
    assert telemetry["gpu_energy"] == "measured (NVML energy counter)"
    assert [gpu["uuid"] for gpu in telemetry["gpus"]] == [nvml.gpus[1].uuid]


def test_a_server_on_an_unmeasured_gpu_fails_the_cell_in_one_line(tmp_path, tiny_model,
                                                                 monkeypatch):
    nvml = realtime_box(2)
    events, engine, out = run_cell(tmp_path, tiny_model, monkeypatch, nvml, [0],
                                   {"gpus": "1"})
    (failed,) = [e for e in events if isinstance(e, CellFailed)]
    assert failed.reason.startswith(f"the server computes on {nvml.gpus[0].uuid} (pid ")
    assert "\n" not in failed.reason and not engine.alive()
    assert not [e for e in events if isinstance(e, PointFinished)]
    stored = json.loads((out / "cells" / "default" / "failed.json").read_text())
    assert stored["reason"] == failed.reason


def test_a_gpu_lost_after_the_start_warns_and_records_not_measured(tmp_path, tiny_model,
                                                                  monkeypatch):
    nvml = realtime_box(1)

    def lose_after_start(start=MockEngine.start):
        def started(self):
            handle = start(self)
            nvml.gpus[0].lost_at = nvml.clock()
            return handle
        return started

    monkeypatch.setattr(MockEngine, "start", lose_after_start())
    events, _, out = run_cell(tmp_path, tiny_model, monkeypatch, nvml, None, {})
    reason = f"{nvml.gpus[0].uuid} lost: GPU is lost"
    warnings = [e.text for e in events if isinstance(e, Notice) and e.level == "warning"]
    assert f"default: GPU energy not measured: {reason}" in warnings
    (finished,) = [e.result for e in events if isinstance(e, PointFinished)]
    assert finished.energy.energy_note == f"not measured: {reason}"
    assert finished.steady.energy_note == f"not measured: {reason}"
    telemetry = json.loads((out / "run.json").read_text())["telemetry"]["default"]
    assert telemetry["gpu_energy"] == f"not measured: {reason}"
    assert f"GPU energy not measured: {reason}" in telemetry["warnings"]


def test_an_index_in_cudas_own_order_fails_the_cell_with_the_reason(tmp_path, tiny_model,
                                                                   monkeypatch):
    nvml = realtime_box(2)
    events, _, _ = run_cell(tmp_path, tiny_model, monkeypatch, nvml, None, {"env": {
        "CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}})
    (failed,) = [e for e in events if isinstance(e, CellFailed)]
    assert "CUDA_DEVICE_ORDER=FASTEST_FIRST" in failed.reason
