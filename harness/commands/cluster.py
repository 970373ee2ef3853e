"""`harness cluster [ADDRESS]`: the Ray cluster's nodes as a sweep would see them, and the
cluster side of `harness run CONFIG --ray ADDRESS` (connect, list, record, refuse)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape
from rich.table import Table

from harness.commands.console import console, err_console, user_error
from harness.config import ExperimentConfig


def cluster(
    address: str = typer.Argument("auto", metavar="[ADDRESS]",
                                  help="The head's host:port, or auto (the cluster started on "
                                       "this machine, or RAY_ADDRESS)."),
    python: str = typer.Option(None, "--engine-python",
                               help="Interpreter whose vLLM version to read on each node "
                                    "\\[default: the one Ray's workers run]."),
) -> None:
    """List the Ray cluster's nodes: GPUs, driver, CUDA, vLLM and harness versions.

    Cells run only on nodes with GPUs; a sweep refuses nodes whose versions differ unless the
    config sets executor.allow_mismatch. Exit codes: 0 listed, 2 no cluster there.
    """
    from harness.cluster.connect import ClusterError, connected
    from harness.cluster.nodes import cluster_view
    from harness.engines.vllm import VllmEngine

    try:
        with connected(address) as ray:
            view = cluster_view(ray, address, python, VllmEngine.distributions, None, False)
    except ClusterError as err:
        raise user_error(str(err)) from None
    console.print(nodes_table(view))
    for line in view.mismatches:
        err_console.print(f"[yellow]mismatch:[/yellow] {escape(line)}")


def nodes_table(view) -> Table:
    table = Table(title=f"Ray {view.ray_version} cluster at {view.address}: "
                        f"{len(view.nodes)} node(s)")
    for column in ("node", "address", "Ray GPUs", "GPUs", "driver", "CUDA", "engine",
                   "harness"):
        table.add_column(column)
    for node in view.nodes:
        names = ", ".join(sorted(set(node.gpu_names))) or "none"
        kind = f" ({node.gpu_type})" if node.gpu_type else ""
        table.add_row(f"{node.hostname}\n[dim]{node.id[:12]}[/dim]", node.address,
                      f"{node.gpus:g}{kind}", node.reason or names, node.driver or "-",
                      node.cuda or "-", node.engine or "-", node.harness or "-")
    return table


@contextmanager
def ray_session(config: ExperimentConfig) -> Iterator[RaySession]:
    """Connected to the config's cluster for the whole run; one line and exit 2 if not."""
    from harness.cluster.connect import ClusterError, connected

    try:
        with connected(config.executor.address) as ray:
            yield RaySession(ray, config)
    except ClusterError as err:
        raise user_error(str(err)) from None


class RaySession:
    def __init__(self, ray, config: ExperimentConfig):
        self.ray, self.config = ray, config

    def admit(self, store) -> None:
        """List the nodes, record them in run.json, refuse mismatched versions unless allowed."""
        from harness.cluster.nodes import cluster_view
        from harness.engines.registry import engine_type

        executor = self.config.executor
        self.view = cluster_view(self.ray, executor.address, self.config.engine.python,
                                 engine_type(self.config).distributions, executor.gpu_type,
                                 executor.allow_mismatch)
        store.record_cluster(self.view)
        console.print(nodes_table(self.view))
        for line in self.view.mismatches:
            err_console.print(f"[yellow]mismatch:[/yellow] {escape(line)}")
        if self.view.mismatches and not executor.allow_mismatch:
            store.end("refused")
            raise user_error(f"the cluster's nodes differ ({self.view.mismatches[0]}): make "
                             "them match or set executor.allow_mismatch: true in the config")

    def runner(self, config, run_name, store, display):
        from harness.cluster.sweep import ClusterSweep

        return ClusterSweep(self.ray, config, run_name, store, display, self.view)
