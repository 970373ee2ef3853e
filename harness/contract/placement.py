"""Where cells ran on a Ray cluster: the node of each cell, and the nodes the driver saw
before the sweep (stored in the results next to harness/contract/results.py's models)."""

from __future__ import annotations

from pydantic import Field

from harness.contract.stored import Stored


class NodeRef(Stored):
    """The node a cell ran on (None for a local run)."""

    id: str  # Ray's node id
    address: str
    hostname: str


class ClusterNode(Stored):
    """One node of the cluster as the driver saw it before a sweep."""

    id: str
    address: str
    hostname: str
    gpus: float  # Ray's GPU resource on the node
    gpu_type: str | None  # Ray's accelerator type label
    gpu_names: list[str] = Field(default_factory=list)
    driver: str | None = None
    cuda: str | None = None
    engine: str | None = None  # "vllm 0.11.0": the engine package on the node
    harness: str | None = None
    python: str | None = None
    reason: str | None = None  # why the facts above could not be read

    @property
    def ref(self) -> NodeRef:
        return NodeRef(id=self.id, address=self.address, hostname=self.hostname)


class ClusterView(Stored):
    address: str
    ray_version: str
    nodes: list[ClusterNode]
    mismatches: list[str] = Field(default_factory=list)
    allowed: bool = False  # the config allowed the mismatches
