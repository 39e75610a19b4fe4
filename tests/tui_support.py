"""Helpers for the TUI tests: the stored snapshot files and a generated large cluster."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from netdoctor.model import (
    ClusterSnapshot,
    Finding,
    Interface,
    NodeSnapshot,
    Route,
    RouteTable,
    Severity,
)
from netdoctor.model.addr import AF_INET
from netdoctor.model.node import Address, FlannelSubnetEnv

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tui"
LAB_8_NODES = FIXTURES / "lab-8node-broken-pair.json"
CALICO_3_NODES = FIXTURES / "calico-stale-blackhole.json"
CASES = Path(__file__).resolve().parent.parent.parent / "shared" / "cases"


def case_dirs() -> list[Path]:
    """Return the shared capture cases, or none when the folder is absent."""
    if not CASES.is_dir():
        return []
    return sorted(path for path in CASES.iterdir() if (path / "nodes").is_dir())


def direct_routing_cluster(count: int, missing: tuple[int, int] | None = None) -> ClusterSnapshot:
    """Build a direct-routing cluster of ``count`` nodes from model objects.

    Node i has LAN address 10.0.x.y/16 on eth0, pod subnet 10.128.0.0/9 split in
    /24s on docker0, and a route to every peer's pod subnet via the peer's LAN
    address. ``missing`` drops the route from one node (by index) to another.
    """
    nodes = []
    for index in range(count):
        lan = f"10.0.{index // 250}.{index % 250 + 1}"
        subnet = f"10.{128 + index // 256}.{index % 256}.0"
        interfaces = (
            Interface("eth0", 2, "ethernet", "UP", 1500, flags=("BROADCAST", "UP", "LOWER_UP"),
                      addresses=(Address(AF_INET, lan, 16),)),
            Interface("docker0", 3, "bridge", "UP", 1500, flags=("BROADCAST", "UP", "LOWER_UP"),
                      addresses=(Address(AF_INET, subnet.rsplit(".", 1)[0] + ".1", 24),)),
        )
        routes = [
            Route.make("10.0.0.0/16", dev="eth0", protocol="kernel", scope=253),
            Route.make(f"{subnet}/24", dev="docker0", protocol="kernel", scope=253),
        ]
        for peer in range(count):
            if peer == index or (index, peer) == missing:
                continue
            peer_lan = f"10.0.{peer // 250}.{peer % 250 + 1}"
            peer_subnet = f"10.{128 + peer // 256}.{peer % 256}.0/24"
            routes.append(Route.make(peer_subnet, gateway=peer_lan, dev="eth0", protocol="static"))
        env = FlannelSubnetEnv(network="10.128.0.0/9", subnet=f"{subnet}/24", mtu=1500)
        nodes.append(NodeSnapshot(f"node{index:04d}", interfaces=interfaces, routes=RouteTable.from_rows(routes),
                                  flannel_env=env))
    return ClusterSnapshot(nodes=tuple(nodes), source="generated", collected_at="2026-01-15T09:30:00+00:00")


def sample_findings(count: int) -> list[Finding]:
    """Return ``count`` findings spread over three severities and a few checks."""
    severities = (Severity.ERROR, Severity.WARNING, Severity.INFO)
    return [
        Finding(f"check-{index % 7}", severities[index % 3], (f"node{index:04d}",), f"fault number {index}")
        for index in range(count)
    ]


def run_async(function: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test function with ``asyncio.run``, keeping its signature for fixtures."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(function(*args, **kwargs))

    return wrapper
