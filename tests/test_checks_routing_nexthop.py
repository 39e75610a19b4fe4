"""route-wrong-nexthop."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_checks_support import (
    calico_cluster,
    calico_node,
    flannel_cluster,
    flannel_node,
    ovs_node,
    pod_gateway,
    pod_subnet,
    routes,
    run,
    underlay_ip,
)

from netdoctor import facts, synthetic
from netdoctor.model import ClusterSnapshot, NodeSnapshot, RouteTable
from netdoctor.model.routes import ROUTE_TABLES


def host_gw_node(i: int, count: int = 3, *, override: dict[int, str] | None = None,
                 own: str | None = None) -> NodeSnapshot:
    """Build a direct-routing node: each peer's pod subnet via the peer's underlay address.

    ``override`` replaces the route to one peer by the given line; ``own`` replaces the docker0 route.
    """
    node = flannel_node(i, count, with_flannel=False)
    lines = ["default via 192.0.2.1 dev eth0", f"192.0.2.0/24 dev eth0 proto kernel scope link src {underlay_ip(i)}",
             own or f"{pod_subnet(i)} dev docker0 proto kernel scope link src {pod_gateway(i)}"]
    for j in range(1, count + 1):
        if j != i:
            lines.append((override or {}).get(j, f"{pod_subnet(j)} via {underlay_ip(j)} dev eth0"))
    return replace(node, routes=routes(*lines))


def test_peer_subnet_via_another_peer() -> None:
    node1 = host_gw_node(1, override={2: f"{pod_subnet(2)} via {underlay_ip(3)} dev eth0"})
    snapshot = ClusterSnapshot(nodes=(node1, host_gw_node(2), host_gw_node(3)))

    findings = run(snapshot, "route-wrong-nexthop")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), ("node1: 198.51.100.64/26 via 192.0.2.13 dev eth0 sends node2's FLANNEL_SUBNET 198.51.100.64/26 "
                     "to node3 (192.0.2.13) instead of node2")),
    ]
    assert findings[0].evidence[0].item == "198.51.100.64/26 via 192.0.2.13 dev eth0"


def test_flannel_onlink_gateway_of_another_peer() -> None:
    node = flannel_node(1, 3)
    lines = ["default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",
             f"{pod_subnet(1)} dev docker0 proto kernel scope link src {pod_gateway(1)}",
             f"{pod_subnet(2)} via 198.51.100.128 dev flannel.1 onlink",
             f"{pod_subnet(3)} via 198.51.100.128 dev flannel.1 onlink"]
    snapshot = flannel_cluster(3, routes=routes(*lines), interfaces=node.interfaces)

    findings = run(snapshot, "route-wrong-nexthop")

    assert [finding.summary for finding in findings] == [
        ("node1: 198.51.100.64/26 via 198.51.100.128 dev flannel.1 onlink sends node2's FLANNEL_SUBNET "
        "198.51.100.64/26 to node3's pod address 198.51.100.128 instead of node2"),
    ]


def test_flannel_gateway_outside_peer_subnet() -> None:
    lines = ["default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",
             f"{pod_subnet(1)} dev docker0 proto kernel scope link src {pod_gateway(1)}",
             f"{pod_subnet(2)} via 203.0.113.64 dev flannel.1 onlink"]
    findings = run(flannel_cluster(2, routes=routes(*lines)), "route-wrong-nexthop")

    assert [finding.summary for finding in findings] == [
        ("node1: 198.51.100.64/26 via 203.0.113.64 dev flannel.1 onlink sends node2's FLANNEL_SUBNET "
        "198.51.100.64/26 via 203.0.113.64, which is outside 198.51.100.64/26, where flannel puts node2's VTEP address"),
    ]


def test_peer_subnet_onto_own_bridge() -> None:
    node1 = host_gw_node(1, 2, override={2: f"{pod_subnet(2)} dev docker0 scope link"})
    findings = run(ClusterSnapshot(nodes=(node1, host_gw_node(2, 2))), "route-wrong-nexthop")

    assert [finding.summary for finding in findings] == [
        ("node1: 198.51.100.64/26 dev docker0 scope link sends node2's FLANNEL_SUBNET 198.51.100.64/26 onto this "
        "node's own pod bridge docker0 instead of to node2"),
    ]


def test_own_subnet_routed_into_overlay() -> None:
    node = flannel_node(1, 2)
    lines = ["default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",
             f"{pod_subnet(1)} dev docker0 proto kernel scope link src {pod_gateway(1)} metric 100",
             f"{pod_subnet(1)} via {pod_subnet(1).split('/')[0]} dev flannel.1 onlink",
             f"{pod_subnet(2)} via 198.51.100.64 dev flannel.1 onlink"]
    findings = run(flannel_cluster(2, routes=routes(*lines), interfaces=node.interfaces), "route-wrong-nexthop")

    assert [finding.summary for finding in findings] == [
        ("node1: its own pod subnet 198.51.100.0/26 on docker0 is routed '198.51.100.0/26 via 198.51.100.0 dev "
        "flannel.1 onlink' instead of through docker0"),
    ]


def test_calico_route_via_wrong_node() -> None:
    wrong = f"{pod_subnet(2)} via {underlay_ip(3)} dev tunl0 proto bird onlink"
    node1 = calico_node(1, 3)
    lines = [line for line in (route.describe() for route in node1.routes or ()) if not line.startswith(pod_subnet(2))]
    snapshot = ClusterSnapshot(nodes=(replace(node1, routes=routes(*lines, wrong)), calico_node(2, 3), calico_node(3, 3)))

    findings = run(snapshot, "route-wrong-nexthop")

    assert [finding.summary for finding in findings] == [
        ("node1: 198.51.100.64/26 via 192.0.2.13 dev tunl0 proto bird onlink sends node2's Calico block "
        "198.51.100.64/26 to node3 (192.0.2.13) instead of node2"),
    ]


def test_nexthop_silent_when_right() -> None:
    assert run(flannel_cluster(3), "route-wrong-nexthop") == []
    assert run(calico_cluster(), "route-wrong-nexthop") == []
    assert run(ClusterSnapshot(nodes=(ovs_node(1), ovs_node(2))), "route-wrong-nexthop") == []
    assert run(ClusterSnapshot(nodes=(host_gw_node(1), host_gw_node(2), host_gw_node(3))), "route-wrong-nexthop") == []


def test_nexthop_ignores_unknown_router() -> None:
    node1 = host_gw_node(1, 2, override={2: f"{pod_subnet(2)} via 192.0.2.254 dev eth0"})

    assert run(ClusterSnapshot(nodes=(node1, host_gw_node(2, 2))), "route-wrong-nexthop") == []


def _synthetic_with_wrong_gateway(backend: str, nodes: int) -> ClusterSnapshot:
    """Build a synthetic cluster whose node 5 routes node 6's pod subnet via node 7's gateway."""
    snapshot = synthetic.generate(backend, nodes, seed=2)
    # Calico gives node i block i (a /26) of the pod network, the other backends subnet i (a /24).
    shift = 6 if backend == "calico" else 8
    sender = snapshot.nodes[5]
    assert sender.routes is not None
    rows = list(sender.routes)
    main = [route for route in rows if route.table == ROUTE_TABLES["main"]]
    to_six = next(route for route in main if route.dst == synthetic.POD_NETWORK + (6 << shift))
    to_seven = next(route for route in main if route.dst == synthetic.POD_NETWORK + (7 << shift))
    rows[rows.index(to_six)] = to_six._replace(gateway=to_seven.gateway)
    changed = list(snapshot.nodes)
    changed[5] = replace(sender, routes=RouteTable.from_rows(rows))
    return replace(snapshot, nodes=tuple(changed))


@pytest.mark.parametrize("backend", ["calico", "flannel-vxlan", "direct-routing"])
def test_wrong_gateway_same_with_numpy(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # More peers than the vectorised suspects judge one by one, so flannel's VTEP gateways take the second stage.
    found = {}
    for label, pairs in (("python", 1 << 62), ("numpy", 0)):
        monkeypatch.setattr(facts, "BULK_MIN_PAIRS", pairs)
        found[label] = run(_synthetic_with_wrong_gateway(backend, 80), "route-wrong-nexthop")

    assert found["numpy"] == found["python"]
    assert [finding.nodes for finding in found["numpy"]] == [("node00005",)]
    assert "node00006's" in found["numpy"][0].summary
    assert "node00007" in found["numpy"][0].summary
