"""Connecting the driver to a Ray cluster: Ray imported only here and only when asked for,
an address checked within seconds, and every failure one line."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

INSTALL_HINT = ("Ray is not installed: pip install 'harness[ray]' (or pip install "
                "'ray[default]>=2.60'), on the driver and on every node")
CONNECT_TIMEOUT_S = 3.0


class ClusterError(Exception):
    """The cluster cannot be used as asked: the message is one line saying what to fix."""


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return ray


def head_of(address: str) -> tuple[str, int] | None:
    """(host, port) of a host:port address; None for `auto`."""
    if address == "auto":
        return None
    if address.startswith("ray://"):
        raise ClusterError(f"--ray {address}: Ray Client addresses are not supported; run the "
                           "driver on a node of the cluster and give the head's host:port")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray {address}: expected the head's host:port (e.g. "
                           "10.0.0.1:6379) or auto")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    head = head_of(address)
    if head is None:
        return
    try:
        socket.create_connection(head, timeout=timeout_s).close()
    except OSError as err:
        why = err.strerror or str(err) or type(err).__name__
        raise ClusterError(f"--ray {address}: no Ray cluster reachable there ({why})") from None


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def connected(address: str) -> Iterator[ModuleType]:
    """The ray module connected to the cluster at `address`; disconnected on exit."""
    head = head_of(address)
    if head is not None and is_loopback(head[0]):
        # A cluster pinned to this machine's loopback (`ray start --node-ip-address
        # 127.0.0.1`): Ray would swap 127.0.0.1 for the interface address, where nothing
        # listens, unless told it is not a multi-machine cluster (read when ray is imported).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ClusterError(f"--ray {address}: cannot connect: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
