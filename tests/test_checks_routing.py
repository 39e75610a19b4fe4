"""route-missing and blackhole-route."""

from __future__ import annotations

from dataclasses import replace

from test_checks_support import calico_cluster, calico_node, flannel_cluster, ovs_node, routes, run

from netdoctor.model import ClusterSnapshot


def test_route_missing_flannel_peer() -> None:
    table = routes("default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",
                   "198.51.100.0/26 dev docker0 proto kernel scope link src 198.51.100.1",
                   "198.51.100.64/26 via 198.51.100.64 dev flannel.1 onlink")
    findings = run(flannel_cluster(3, routes=table), "route-missing")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), "node1: no route to node3's FLANNEL_SUBNET 198.51.100.128/26"),
    ]
    assert findings[0].evidence[0].node == "node3"


def test_route_missing_silent_when_healthy() -> None:
    assert run(flannel_cluster(3), "route-missing") == []
    assert run(calico_cluster(), "route-missing") == []


def test_route_missing_accepts_covering_device_route() -> None:
    # OVS routes the whole pod network to docker0; that covers every peer.
    assert run(ClusterSnapshot(nodes=(ovs_node(1), ovs_node(2))), "route-missing") == []


def test_route_missing_ignores_unrouted_nodes_without_routes() -> None:
    snapshot = flannel_cluster(2, routes=None)

    assert run(snapshot, "route-missing") == []


def test_blackhole_shadowing_moved_block() -> None:
    # node1 keeps a blackhole for node3's block: the stale-block case.
    nodes = [calico_node(1, extra_routes=("blackhole 198.51.100.128/26 proto bird",)), calico_node(2), calico_node(3)]
    table = routes(*[line for line in _route_lines(nodes[0]) if "198.51.100.128/26 via" not in line])
    nodes[0] = replace(nodes[0], routes=table)

    findings = run(ClusterSnapshot(nodes=tuple(nodes)), "blackhole-route")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), "node1: blackhole 198.51.100.128/26 proto bird discards traffic to node3's Calico block 198.51.100.128/26"),
    ]
    assert [item.item for item in findings[0].evidence] == [
        "blackhole 198.51.100.128/26 proto bird", "Calico block 198.51.100.128/26",
    ]


def test_blackhole_whole_pod_network() -> None:
    table = routes("default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",
                   "198.51.100.0/26 dev docker0 proto kernel scope link src 198.51.100.1",
                   "unreachable 198.51.100.0/24")
    findings = run(flannel_cluster(2, routes=table), "blackhole-route")

    assert [finding.summary for finding in findings] == [
        "node1: unreachable 198.51.100.0/24 discards traffic to node2's FLANNEL_SUBNET 198.51.100.64/26",
    ]


def test_blackhole_own_block_is_normal() -> None:
    assert run(calico_cluster(), "blackhole-route") == []


def test_blackhole_covered_by_more_specific_route_is_normal() -> None:
    nodes = [calico_node(1, extra_routes=("unreachable 198.51.100.0/24",)), calico_node(2), calico_node(3)]

    assert run(ClusterSnapshot(nodes=tuple(nodes)), "blackhole-route") == []


def _route_lines(node: object) -> list[str]:
    return [route.describe() for route in node.routes]  # type: ignore[attr-defined]
