"""overlay-interface-missing."""

from __future__ import annotations

from dataclasses import replace

from test_checks_support import calico_node, flannel_cluster, flannel_node, iface, ovs_node, run

from netdoctor.model import ClusterSnapshot, EtcdData


def test_flannel_device_missing() -> None:
    node = flannel_node(1, with_flannel=False)
    findings = run(flannel_cluster(2, interfaces=node.interfaces), "overlay-interface-missing")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), "node1: neither flannel0 nor flannel.1 exists although FLANNEL_SUBNET is 198.51.100.1/26"),
    ]


def test_flannel_device_from_etcd_backend() -> None:
    node = flannel_node(1, with_flannel=False)
    snapshot = replace(flannel_cluster(2, interfaces=node.interfaces),
                       etcd=EtcdData((("/coreos.com/network/config", '{"Network": "198.51.100.0/24", "Backend": {"Type": "vxlan"}}'),)))

    findings = run(snapshot, "overlay-interface-missing")

    assert [finding.summary for finding in findings] == [
        "node1: flannel.1 is missing although FLANNEL_SUBNET is 198.51.100.1/26 and the backend is vxlan",
    ]


def test_flannel_device_down() -> None:
    node = flannel_node(1)
    interfaces = tuple(iface("flannel.1", 3, kind="vxlan", mtu=1450, up=False) if item.name == "flannel.1" else item
                       for item in node.interfaces or ())
    findings = run(flannel_cluster(2, interfaces=interfaces), "overlay-interface-missing")

    assert [finding.summary for finding in findings] == [
        "node1: flannel.1 is down although FLANNEL_SUBNET is 198.51.100.1/26",
    ]


def test_calico_tunl0_down() -> None:
    snapshot = ClusterSnapshot(nodes=(calico_node(1, 2, tunl0_up=False), calico_node(2, 2)))

    findings = run(snapshot, "overlay-interface-missing")

    assert [finding.summary for finding in findings] == [
        "node1: tunl0 is down although Calico routes pod blocks through tunl0 (IPIP)",
    ]


def test_ovs_bridge_not_enslaved() -> None:
    snapshot = ClusterSnapshot(nodes=(ovs_node(1, enslaved=False), ovs_node(2)))

    findings = run(snapshot, "overlay-interface-missing")

    assert [finding.summary for finding in findings] == [
        "node1: OVS bridge br0 is enslaved to no bridge, not to the pod bridge docker0, so pods cannot reach the tunnels",
    ]


def test_ovs_bridge_down() -> None:
    node = ovs_node(1)
    interfaces = tuple(replace(item, flags=("BROADCAST", "MULTICAST")) if item.name == "br0" else item
                       for item in node.interfaces or ())
    snapshot = ClusterSnapshot(nodes=(replace(node, interfaces=interfaces), ovs_node(2)))

    findings = run(snapshot, "overlay-interface-missing")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), "node1: br0 is down although OVS bridge br0 holds the tunnel ports gre1"),
    ]


def test_ovs_tunnel_ports_gone() -> None:
    node = ovs_node(1)
    assert node.ovs is not None
    bridge = node.ovs[0]
    without_tunnels = replace(bridge, ports=tuple(port for port in bridge.ports if port.name != "gre1"))
    snapshot = ClusterSnapshot(nodes=(replace(node, ovs=(without_tunnels,)), ovs_node(2)))

    findings = run(snapshot, "overlay-interface-missing")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), "node1: no OVS bridge holds a tunnel port, although node2 tunnel to it (OVS bridges: br0)"),
    ]


def test_overlay_silent_when_healthy() -> None:
    assert run(flannel_cluster(2), "overlay-interface-missing") == []
    assert run(ClusterSnapshot(nodes=(calico_node(1, 2), calico_node(2, 2))), "overlay-interface-missing") == []
    assert run(ClusterSnapshot(nodes=(ovs_node(1), ovs_node(2))), "overlay-interface-missing") == []


def test_overlay_not_judged_without_interfaces() -> None:
    assert run(flannel_cluster(2, interfaces=None), "overlay-interface-missing") == []
