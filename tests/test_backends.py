"""Backend detection."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_checks_support import (
    calico_cluster,
    flannel_cluster,
    flannel_node,
    iface,
    ovs_node,
    routes,
)

from netdoctor import synthetic
from netdoctor.backends import detect_backends
from netdoctor.model import ClusterSnapshot


def test_detects_flannel_vxlan() -> None:
    assert detect_backends(flannel_cluster(2)) == {"node1": ("flannel-vxlan",), "node2": ("flannel-vxlan",)}


def test_detects_flannel_udp() -> None:
    node = flannel_node(1)
    interfaces = tuple(iface("flannel0", 3, kind="tun", mtu=1472) if item.name == "flannel.1" else item
                       for item in node.interfaces or ())
    snapshot = ClusterSnapshot(nodes=(replace(node, interfaces=interfaces),))

    assert detect_backends(snapshot) == {"node1": ("flannel-udp",)}


def test_detects_calico() -> None:
    assert set(detect_backends(calico_cluster()).values()) == {("calico",)}


def test_detects_ovs() -> None:
    assert detect_backends(ClusterSnapshot(nodes=(ovs_node(1), ovs_node(2)))) == {"node1": ("ovs",), "node2": ("ovs",)}


def test_detects_direct_routing() -> None:
    nodes = []
    for i, peer in ((1, 2), (2, 1)):
        node = flannel_node(i, with_flannel=False)
        lines = [route.describe() for route in node.routes or ()]
        lines.append(f"198.51.100.{(peer - 1) * 64}/26 via 192.0.2.{10 + peer} dev eth0 proto static")
        nodes.append(replace(node, routes=routes(*lines), flannel_env=None))

    assert detect_backends(ClusterSnapshot(nodes=tuple(nodes))) == {
        "node1": ("direct-routing",), "node2": ("direct-routing",),
    }


@pytest.mark.parametrize(("gateway", "expected"), [
    # node2's address on a second network, which node1 reaches through eth0 only
    ("203.0.113.12", ("direct-routing",)),
    # node3's address: a route to node2's pods through another node does not count
    ("203.0.113.13", ()),
    # an address of no node
    ("203.0.113.99", ()),
])
def test_direct_routing_gateway_owner(gateway: str, expected: tuple[str, ...]) -> None:
    nodes = []
    for i in (1, 2, 3):
        node = flannel_node(i, with_flannel=False)
        lines = [route.describe() for route in node.routes or ()]
        interfaces = node.interfaces or ()
        if i == 1:
            lines.append(f"198.51.100.64/26 via {gateway} dev eth0 onlink proto static")
        else:
            interfaces += (iface("eth1", 9, cidr=f"203.0.113.{10 + i}/24"),)
        nodes.append(replace(node, routes=routes(*lines), interfaces=interfaces, flannel_env=None))

    assert detect_backends(ClusterSnapshot(nodes=tuple(nodes)))["node1"] == expected


def test_detects_nothing_on_plain_host() -> None:
    node = replace(flannel_node(1, with_flannel=False), flannel_env=None)

    assert detect_backends(ClusterSnapshot(nodes=(node,))) == {"node1": ()}


@pytest.mark.parametrize(("backend", "detected"), [
    ("calico", ("calico",)),
    ("direct-routing", ("direct-routing",)),
    ("flannel-vxlan", ("flannel-vxlan",)),
    ("ovs-vxlan", ("ovs",)),
])
def test_synthetic_backend_detected_everywhere(backend: str, detected: tuple[str, ...]) -> None:
    # Flannel and direct-routing nodes both route each peer's subnet with protocol "boot", via a VTEP
    # address on flannel and via the peer's underlay address on direct routing.
    found = detect_backends(synthetic.generate(backend, 12))

    assert set(found.values()) == {detected}
