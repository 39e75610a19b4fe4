"""mtu-mismatch."""

from __future__ import annotations

from dataclasses import replace

from test_checks_support import calico_cluster, flannel_cluster, flannel_node, iface, ovs_node, run

from netdoctor.model import ClusterSnapshot, Severity
from netdoctor.model.node import OvsInterface, OvsPort


def test_mtu_docker0_above_vxlan() -> None:
    node = flannel_node(1, bridge_mtu=1500)
    findings = run(flannel_cluster(2, interfaces=node.interfaces), "mtu-mismatch")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), "node1: docker0 1500, veth1a 1500 exceed 1450, what flannel.1 (VXLAN, 50 bytes) carries over eth0 MTU 1500"),
    ]
    assert findings[0].evidence[-1].item == "eth0 mtu 1500"


def test_mtu_flannel_udp_docker0() -> None:
    node = flannel_node(1, bridge_mtu=1500)
    interfaces = tuple(
        iface("flannel0", 3, kind="tun", mtu=1472, cidr="198.51.100.0/24") if item.name == "flannel.1" else item
        for item in node.interfaces or ()
    )
    findings = run(ClusterSnapshot(nodes=(replace(node, interfaces=interfaces),)), "mtu-mismatch")

    assert [finding.summary for finding in findings] == [
        "node1: docker0 1500, veth1a 1500 exceed 1472, what flannel0 (flannel UDP, 28 bytes) carries over eth0 MTU 1500",
    ]


def test_mtu_ovs_gre_bridges() -> None:
    snapshot = ClusterSnapshot(nodes=(ovs_node(1, bridge_mtu=1500), ovs_node(2)))

    findings = run(snapshot, "mtu-mismatch")

    assert [finding.summary for finding in findings] == [
        "node1: br0 1500, docker0 1500 exceed 1462, what gre1 (Ethernet over GRE, 38 bytes) carries over eth0 MTU 1500",
    ]


def test_mtu_each_ovs_port_and_device() -> None:
    node = ovs_node(1, bridge_mtu=1500)
    (bridge,) = node.ovs or ()
    second = OvsPort("gre2", (OvsInterface("gre2", "gre", (("remote_ip", "192.0.2.13"),)),))
    gretap = iface("gretap1", 9, kind="gretap", mtu=1500)
    node = replace(node, ovs=(replace(bridge, ports=bridge.ports + (second,)),),
                   interfaces=(node.interfaces or ()) + (gretap,))

    findings = run(ClusterSnapshot(nodes=(node, ovs_node(2))), "mtu-mismatch")

    # The device leads its own finding only: the ports share the interfaces above their limit.
    assert [finding.summary for finding in findings] == [
        "node1: br0 1500, docker0 1500 exceed 1462, what gre1 (Ethernet over GRE, 38 bytes) carries over eth0 MTU 1500",
        "node1: br0 1500, docker0 1500 exceed 1462, what gre2 (Ethernet over GRE, 38 bytes) carries over eth0 MTU 1500",
        ("node1: gretap1 1500, br0 1500, docker0 1500 exceed 1462, what gretap1 (Ethernet over GRE, 38 bytes) carries "
         "over eth0 MTU 1500"),
    ]


def test_mtu_overlay_device_differs_across_nodes() -> None:
    node = flannel_node(1, bridge_mtu=1400, flannel_mtu=1400)
    findings = run(flannel_cluster(2, interfaces=node.interfaces), "mtu-mismatch")

    assert [(finding.severity, finding.nodes, finding.summary) for finding in findings] == [
        (Severity.WARNING, ("node1", "node2"), "flannel.1 MTU differs across nodes: 1400 on node1, 1450 on node2"),
    ]


def test_mtu_peer_underlay_smaller() -> None:
    big = flannel_node(1, bridge_mtu=8950, flannel_mtu=8950)
    interfaces = tuple(iface("eth0", 2, mtu=9000, cidr="192.0.2.11/24") if item.name == "eth0" else item
                       for item in big.interfaces or ())
    findings = run(flannel_cluster(2, interfaces=interfaces), "mtu-mismatch")
    summaries = [finding.summary for finding in findings]

    assert "node1: flannel.1 MTU 8950 exceeds 1450, what VXLAN carries over node2's eth0 MTU 1500" in summaries
    assert findings[0].nodes == ("node1",)
    assert [finding.severity for finding in findings] == [Severity.ERROR]


def test_mtu_silent_when_healthy() -> None:
    assert run(flannel_cluster(3), "mtu-mismatch") == []
    assert run(calico_cluster(), "mtu-mismatch") == []
    assert run(ClusterSnapshot(nodes=(ovs_node(1), ovs_node(2))), "mtu-mismatch") == []
