"""tunnel-mesh-incomplete and duplicate-mac."""

from __future__ import annotations

from dataclasses import replace

from test_checks_overlay_flannel import vxlan_node
from test_checks_support import calico_cluster, flannel_cluster, ovs_node, run, underlay_ip

from netdoctor.model import ClusterSnapshot, NodeSnapshot, OvsBridge, OvsInterface, OvsPort


def mesh_node(i: int, remotes: list[str], *, docker_mac: str | None = None, br0_mac: str | None = None) -> NodeSnapshot:
    """Build an OVS node whose br0 holds one GRE port per remote address given."""
    node = ovs_node(i)
    ports = [OvsPort("br0", (OvsInterface("br0", "internal"),))]
    for number, remote in enumerate(remotes, start=1):
        ports.append(OvsPort(f"gre{number}", (OvsInterface(f"gre{number}", "gre", (("remote_ip", remote),)),)))
    macs = {"docker0": docker_mac or f"02:42:00:00:00:0{i}", "br0": br0_mac or f"82:e3:00:00:00:0{i}"}
    interfaces = tuple(replace(item, mac=macs.get(item.name, item.mac)) for item in node.interfaces or ())
    return replace(node, interfaces=interfaces, ovs=(OvsBridge("br0", tuple(ports)),))


def full_mesh(count: int) -> list[NodeSnapshot]:
    return [mesh_node(i, [underlay_ip(j) for j in range(1, count + 1) if j != i]) for i in range(1, count + 1)]


def test_mesh_missing_tunnel_asymmetric() -> None:
    nodes = full_mesh(3)
    nodes[2] = mesh_node(3, [underlay_ip(2)])

    findings = run(ClusterSnapshot(nodes=tuple(nodes)), "tunnel-mesh-incomplete")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node3",), "node3: no OVS tunnel to node1 (192.0.2.11), although node1 has one to node3"),
    ]
    assert findings[0].evidence[-1].item == "node1 has a tunnel to node3"


def test_mesh_names_every_missing_peer() -> None:
    nodes = full_mesh(4)
    nodes[0] = mesh_node(1, [])

    findings = run(ClusterSnapshot(nodes=tuple(nodes)), "tunnel-mesh-incomplete")

    assert [finding.summary for finding in findings] == [
        ("node1: no OVS tunnel to node2 (192.0.2.12), node3 (192.0.2.13), node4 (192.0.2.14); 3 of them have a "
        "tunnel to node1"),
    ]
    assert len(findings[0].evidence) == 6


def test_mesh_stray_and_duplicate_tunnels() -> None:
    nodes = full_mesh(3)
    nodes[0] = mesh_node(1, [underlay_ip(2), underlay_ip(3), underlay_ip(3), "192.0.2.77", underlay_ip(1)])

    findings = run(ClusterSnapshot(nodes=tuple(nodes)), "tunnel-mesh-incomplete")

    assert sorted(finding.summary for finding in findings) == [
        "node1: 2 OVS tunnels go to node3: gre2, gre3",
        "node1: OVS tunnel gre4 goes to 192.0.2.77, no captured node's address",
        "node1: OVS tunnel gre5 goes to 192.0.2.11, the node's own address",
    ]


def test_mesh_node_without_ovs_not_a_member() -> None:
    nodes = full_mesh(2) + [replace(mesh_node(3, []), ovs=None)]

    assert run(ClusterSnapshot(nodes=tuple(nodes)), "tunnel-mesh-incomplete") == []


def test_mesh_silent_when_complete() -> None:
    assert run(ClusterSnapshot(nodes=tuple(full_mesh(4))), "tunnel-mesh-incomplete") == []
    assert run(ClusterSnapshot(nodes=(ovs_node(1), ovs_node(2))), "tunnel-mesh-incomplete") == []
    assert run(flannel_cluster(3), "tunnel-mesh-incomplete") == []


def test_duplicate_vtep_mac() -> None:
    snapshot = ClusterSnapshot(nodes=(vxlan_node(1), vxlan_node(2, mac="0e:00:00:00:00:01"), vxlan_node(3)))

    findings = run(snapshot, "duplicate-mac")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1", "node2"), ("flannel.1 on node1 and flannel.1 on node2 share MAC 0e:00:00:00:00:01 on VXLAN VNI 1 "
                             "port 8472")),
    ]


def test_duplicate_docker0_mac_across_ovs_mesh() -> None:
    nodes = full_mesh(3)
    nodes[1] = mesh_node(2, [underlay_ip(1), underlay_ip(3)], docker_mac="02:42:00:00:00:01")

    findings = run(ClusterSnapshot(nodes=tuple(nodes)), "duplicate-mac")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1", "node2"), "docker0 on node1 and docker0 on node2 share MAC 02:42:00:00:00:01 on the OVS tunnel mesh"),
    ]
    assert findings[0].evidence[0].item == "docker0 link/ether 02:42:00:00:00:01 (bridge docker0 holding br0)"


def test_duplicate_mac_ignores_routed_bridges() -> None:
    nodes = [vxlan_node(i, 2) for i in (1, 2)]
    nodes = [replace(node, interfaces=tuple(replace(item, mac="02:42:ac:11:00:01") if item.name == "docker0" else item
                                            for item in node.interfaces or ())) for node in nodes]

    assert run(ClusterSnapshot(nodes=tuple(nodes)), "duplicate-mac") == []
    assert run(calico_cluster(), "duplicate-mac") == []
    assert run(ClusterSnapshot(nodes=tuple(full_mesh(3))), "duplicate-mac") == []
