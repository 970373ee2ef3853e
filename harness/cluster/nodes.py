"""The cluster's nodes before a sweep: Ray's view of each (GPUs, accelerator type) and what
runs there (GPU names, driver, CUDA, engine and harness versions), read by a small task
pinned to each node; nodes that would serve cells must match."""

from __future__ import annotations

import platform
import socket
from types import ModuleType

import harness
from harness.contract.placement import ClusterNode, ClusterView
from harness.engines import installed
from harness.run.provenance import gpus

FACTS_TIMEOUT_S = 120.0
COMPARED = {"driver": "GPU driver", "cuda": "CUDA", "engine": "engine", "harness": "harness"}


def cuda_version() -> str | None:
    """The CUDA version the driver supports ('12.4'), through NVML; None without a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVML library or driver
        return None
    try:
        version = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        return f"{version // 1000}.{version % 1000 // 10}"
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


def local_facts(python: str | None, distributions: tuple[str, ...]) -> dict:
    """What this node runs: the fields of ClusterNode that only the node itself can tell."""
    found = gpus()
    package = installed.package(python, distributions)
    return {"hostname": socket.gethostname(),
            "gpu_names": [device["name"] for device in found["devices"]],
            "driver": found.get("driver"), "cuda": cuda_version(),
            "engine": f"{package.package} {package.version}" if package else None,
            "harness": harness.__version__, "python": platform.python_version()}


def list_nodes(ray: ModuleType, python: str | None,
               distributions: tuple[str, ...]) -> list[ClusterNode]:
    """Every live node with its facts (a node that cannot answer has `reason` set)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    facts = ray.remote(local_facts)
    live = [node for node in ray.nodes() if node.get("Alive")]
    asked = {node["NodeID"]: facts.options(
        num_cpus=0, max_retries=2,  # a worker lost while starting is tried again
        scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
    ).remote(python, distributions) for node in live}
    ready, _ = ray.wait(list(asked.values()), num_returns=len(asked), timeout=FACTS_TIMEOUT_S)
    nodes = []
    for node in live:
        ref, resources = asked[node["NodeID"]], node.get("Resources", {})
        known = {"hostname": node.get("NodeManagerHostname", "?")}
        if ref in ready:
            try:
                known.update(ray.get(ref))
            except Exception as err:  # the task failed on that node
                known["reason"] = f"could not read the node's facts: {_first_line(err)}"
        else:
            known["reason"] = f"no answer from the node within {FACTS_TIMEOUT_S:.0f} s"
        types = [key.split(":", 1)[1] for key in resources if key.startswith("accelerator_type:")]
        nodes.append(ClusterNode(id=node["NodeID"], address=node["NodeManagerAddress"],
                                 gpus=resources.get("GPU", 0.0),
                                 gpu_type=types[0] if types else None, **known))
    return sorted(nodes, key=lambda n: (-n.gpus, n.hostname, n.address, n.id))


def serving(nodes: list[ClusterNode], gpu_type: str | None) -> list[ClusterNode]:
    """The nodes cells can land on: those with GPUs (of the asked type); all when none has."""
    with_gpus = [n for n in nodes if n.gpus > 0 and (gpu_type is None or n.gpu_type == gpu_type)]
    return with_gpus or ([] if gpu_type else nodes)


def mismatches(nodes: list[ClusterNode]) -> list[str]:
    """One line per fact on which the nodes differ, and per node that could not tell."""
    found = [f"{label(n)}: {n.reason}" for n in nodes if n.reason]
    answered = [n for n in nodes if not n.reason]
    for field, name in COMPARED.items():
        values: dict[str, list[str]] = {}
        for node in answered:
            values.setdefault(str(getattr(node, field) or "none"), []).append(label(node))
        if len(values) > 1:
            found.append(f"{name} differs: " + "; ".join(
                f"{value} on {', '.join(where)}" for value, where in sorted(values.items())))
    return found


def cluster_view(ray: ModuleType, address: str, python: str | None,
                 distributions: tuple[str, ...], gpu_type: str | None,
                 allowed: bool) -> ClusterView:
    nodes = list_nodes(ray, python, distributions)
    return ClusterView(address=address, ray_version=ray.__version__, nodes=nodes,
                       mismatches=mismatches(serving(nodes, gpu_type)), allowed=allowed)


def label(node: ClusterNode) -> str:
    return f"{node.hostname} ({node.address}, {node.id[:8]})"


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[-1]
