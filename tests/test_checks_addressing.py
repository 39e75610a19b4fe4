"""bridge-subnet-overlap, pod-network-overlaps-host and bridge-outside-overlay-subnet."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_checks_support import (
    calico_cluster,
    calico_node,
    flannel_cluster,
    flannel_node,
    iface,
    ovs_node,
    routes,
    run,
)

from netdoctor.model import ClusterSnapshot


def _same_bridge_subnet(count: int) -> ClusterSnapshot:
    nodes = []
    for i in range(1, count + 1):
        node = ovs_node(i)
        interfaces = tuple(
            iface("docker0", 3, kind="bridge", mtu=1462, cidr="198.51.100.1/25") if item.name == "docker0" else item
            for item in node.interfaces or ()
        )
        nodes.append(replace(node, interfaces=interfaces))
    return ClusterSnapshot(nodes=tuple(nodes), source="test")


def test_bridge_overlap_across_nodes() -> None:
    findings = run(_same_bridge_subnet(2), "bridge-subnet-overlap")

    assert len(findings) == 1
    assert findings[0].nodes == ("node1", "node2")
    assert findings[0].summary == (
        "pod bridge subnets overlap across nodes: docker0 198.51.100.1/25 on node1 overlaps docker0 198.51.100.1/25 on node2"
    )
    assert [item.node for item in findings[0].evidence] == ["node1", "node2"]


def test_bridge_overlap_groups_many_nodes() -> None:
    findings = run(_same_bridge_subnet(4), "bridge-subnet-overlap")

    assert len(findings) == 1
    assert findings[0].nodes == ("node1", "node2", "node3", "node4")


def test_bridge_overlap_within_node() -> None:
    node = flannel_node(1)
    extra = (iface("cni0", 9, kind="bridge", cidr="198.51.100.33/27"), iface("vethz", 10, master="cni0"))
    snapshot = ClusterSnapshot(nodes=(replace(node, interfaces=(node.interfaces or ()) + extra),), source="test")

    findings = run(snapshot, "bridge-subnet-overlap")

    assert len(findings) == 1
    assert findings[0].nodes == ("node1",)
    assert "on one node" in findings[0].summary
    assert "cni0 198.51.100.33/27 on node1" in findings[0].summary


def test_bridge_overlap_silent_when_healthy() -> None:
    assert run(flannel_cluster(3), "bridge-subnet-overlap") == []
    assert run(ClusterSnapshot(nodes=(ovs_node(1), ovs_node(2))), "bridge-subnet-overlap") == []


def test_bridge_overlap_ignores_unused_docker0_on_calico() -> None:
    # Every Calico node has docker0 203.0.113.1/24 without ports.
    assert run(calico_cluster(), "bridge-subnet-overlap") == []


def test_pod_network_overlaps_host_subnet() -> None:
    nodes = []
    for i in (1, 2):
        node = calico_node(i, 2)
        interfaces = tuple(
            iface("eth0", 2, cidr=f"198.51.100.{120 + i}/28") if item.name == "eth0" else item
            for item in node.interfaces or ()
        )
        nodes.append(replace(node, interfaces=interfaces))
    findings = run(ClusterSnapshot(nodes=tuple(nodes)), "pod-network-overlaps-host")

    assert len(findings) == 1
    assert findings[0].nodes == ("node1", "node2")
    assert findings[0].summary == (
        "Calico pool inferred from the nodes' blocks 198.51.100.0/25 overlaps host subnet 198.51.100.112/28 on node1, node2"
    )


def test_pod_network_overlaps_vpn_route() -> None:
    node = flannel_node(1)
    interfaces = (node.interfaces or ()) + (iface("tun0", 9, kind="tun", cidr="203.0.113.5/24"),)
    table = routes("default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",
                   "198.51.100.0/26 dev docker0 proto kernel scope link src 198.51.100.1",
                   "198.51.100.128/25 via 203.0.113.1 dev tun0")
    snapshot = flannel_cluster(2, interfaces=interfaces, routes=table)

    findings = run(snapshot, "pod-network-overlaps-host")

    assert [finding.nodes for finding in findings] == [("node1",)]
    assert findings[0].summary == (
        "FLANNEL_NETWORK 198.51.100.0/24 overlaps route 198.51.100.128/25 via 203.0.113.1 dev tun0 on node1"
    )


@pytest.mark.parametrize("devices", [1, 300])
def test_pod_network_overlaps_vpn_route_among_many(devices: int) -> None:
    # Over 64 other routes make each pod network scan its own rows, and over 256 devices leave the byte search.
    node = flannel_node(1)
    interfaces = (node.interfaces or ()) + (iface("tun0", 9, kind="tun", cidr="203.0.113.5/24"),)
    others = [f"10.{k // 250}.{k % 250}.0/24 via 192.0.2.1 dev {'eth0' if devices == 1 else f'dummy{k}'}"
              for k in range(300)]
    table = routes("default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",
                   "198.51.100.0/26 dev docker0 proto kernel scope link src 198.51.100.1",
                   "198.51.100.128/25 via 203.0.113.1 dev tun0", *others)
    snapshot = flannel_cluster(2, interfaces=interfaces, routes=table)

    findings = run(snapshot, "pod-network-overlaps-host")

    assert [finding.nodes for finding in findings] == [("node1",)]
    assert findings[0].summary == (
        "FLANNEL_NETWORK 198.51.100.0/24 overlaps route 198.51.100.128/25 via 203.0.113.1 dev tun0 on node1"
    )


def test_pod_network_overlap_silent_when_healthy() -> None:
    assert run(flannel_cluster(3), "pod-network-overlaps-host") == []
    assert run(calico_cluster(), "pod-network-overlaps-host") == []


def test_bridge_outside_overlay_subnet() -> None:
    node = flannel_node(1)
    interfaces = tuple(
        iface("docker0", 4, kind="bridge", mtu=1450, cidr="203.0.113.1/24") if item.name == "docker0" else item
        for item in node.interfaces or ()
    )
    findings = run(flannel_cluster(2, interfaces=interfaces), "bridge-outside-overlay-subnet")

    assert len(findings) == 1
    assert findings[0].nodes == ("node1",)
    assert findings[0].summary == "node1: docker0 203.0.113.1/24 is not inside FLANNEL_SUBNET 198.51.100.0/26"


def test_bridge_outside_overlay_subnet_unused_docker0() -> None:
    node = flannel_node(1)
    interfaces = tuple(
        iface("docker0", 4, kind="bridge", cidr="203.0.113.1/24") for item in node.interfaces or () if item.name == "docker0"
    ) + tuple(item for item in node.interfaces or () if item.name in ("lo", "eth0", "flannel.1"))
    findings = run(flannel_cluster(2, interfaces=interfaces), "bridge-outside-overlay-subnet")

    assert [finding.summary for finding in findings] == [
        "node1: docker0 203.0.113.1/24 is not inside FLANNEL_SUBNET 198.51.100.0/26"
    ]


def test_bridge_outside_overlay_subnet_silent_when_healthy() -> None:
    assert run(flannel_cluster(3), "bridge-outside-overlay-subnet") == []
    assert run(calico_cluster(), "bridge-outside-overlay-subnet") == []
