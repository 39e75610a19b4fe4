"""Routing checks: missing routes to peers' pod subnets, and discard routes that shadow them."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.engine import check
from netdoctor.facts import (
    DISCARD_TYPES,
    NodeFacts,
    PodSubnet,
    Prefix,
    cluster_facts,
    prefixes_overlap,
)
from netdoctor.model import ClusterSnapshot, Evidence, Finding, Severity

_SOURCE_PARTS = {"FLANNEL_SUBNET": "flannel_env", "flannel lease": "etcd", "podCIDR": "kube_nodes", "Calico block": "routes"}


def _subnet_evidence(subnet: PodSubnet) -> Evidence:
    return Evidence(subnet.node, _SOURCE_PARTS.get(subnet.source, "interfaces"), f"{subnet.source} {subnet.text}")


def _overlaps_own(prefix: Prefix, own: list[PodSubnet]) -> bool:
    return any(prefixes_overlap(prefix, subnet.prefix) for subnet in own)


@check("route-missing", title="No route to a peer's pod subnet", severity=Severity.ERROR, backends=("any",))
def route_missing(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """A node has no route that covers a peer node's pod subnet.

    What it checks:
        For every pair of nodes, each pod subnet of the peer (its flannel
        subnet from subnet.env or its lease, its pod bridge subnets, its Calico
        blocks) must be covered by a route in this node's main table other than
        the default route and discard routes. Any covering route counts: OVS's
        ``172.16.0.0/16 dev docker0`` and flannel UDP's ``/16`` route through
        flannel0 cover every peer by design.
    Why it matters:
        Without a covering route, traffic to the peer's pods follows the default
        route to the underlay gateway, which does not know the pod network, so
        pods on the two nodes cannot reach each other.
    Known problems:
        Only captured nodes are compared: a lease of a node that was not
        captured is not checked. A subnet that overlaps this node's own pod
        subnets is left to bridge-subnet-overlap. A discard route that covers
        the subnet is reported here too when no other route covers it.
    Example:
        ``node1: no route to node2's FLANNEL_SUBNET 10.244.61.0/24``.
    Fix safety:
        Restarting the overlay agent (flanneld, calico-node) re-creates the
        routes and is safe; adding a route by hand is safe but does not survive
        a reboot.
    """
    facts = cluster_facts(snapshot)
    for name, node in sorted(facts.nodes.items()):
        if node.routes is None:
            continue
        own = node.pod_subnets()
        for peer in facts.peers(name):
            for subnet in peer.pod_subnets():
                if _overlaps_own(subnet.prefix, own) or _is_covered(node, subnet.prefix):
                    continue
                evidence = [_subnet_evidence(subnet)]
                evidence += [Evidence(name, "routes", route.describe()) for route in node.routes.covering(subnet.prefix)
                             if route.type in DISCARD_TYPES]
                yield Finding(
                    check="route-missing",
                    severity=Severity.ERROR,
                    nodes=(name,),
                    summary=f"{name}: no route to {peer.name}'s {subnet.source} {subnet.text}",
                    evidence=tuple(evidence),
                )


def _is_covered(node: NodeFacts, prefix: Prefix) -> bool:
    assert node.routes is not None
    return node.routes.forwards(prefix)


@check("blackhole-route", title="Discard route shadows another node's pods", severity=Severity.ERROR,
       backends=("any",))
def blackhole_route(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """A blackhole, unreachable or prohibit route shadows another node's pod subnet.

    What it checks:
        Every discard route in a node's main table that overlaps a peer's pod
        subnet (flannel subnet, pod bridge, or Calico block). It is a fault
        when the discard route is this node's most specific route for the
        overlapping part, so traffic to the peer's pods is discarded. A Calico
        block is a node's own when its pods live there (``cali*`` /32 routes
        inside it) or its tunnel address (tunl0, vxlan.calico) is in it. A
        blackhole for the node's own block is Calico's normal aggregation route.
    Why it matters:
        When a Calico block moves to another node (after a node is drained or
        re-created), a stale ``blackhole ... proto bird`` left behind on the old
        node wins over the BGP route to the new owner, and every pod in the
        block is unreachable from that node.
    Known problems:
        Ownership comes from the captured nodes only: when the new owner of a
        block was not captured, a stale blackhole is not reported. An empty
        block (no pods, no tunnel address) has no owner and is never reported.
    Example:
        ``node1: blackhole 10.233.70.192/26 proto bird discards traffic to
        node3's Calico block 10.233.70.192/26``.
    Fix safety:
        Deleting the stale route, or restarting calico-node on the node, is
        safe for the node's own pods.
    """
    facts = cluster_facts(snapshot)
    for name, node in sorted(facts.nodes.items()):
        if node.routes is None or not node.discard_routes:
            continue
        own = node.pod_subnets()
        own_blocks = {block.prefix for block in node.calico_blocks}
        for route in node.discard_routes:
            blocked = (route.family, route.dst, route.dst_len)
            if route.dst_len == 0 or blocked in own_blocks:
                continue
            for peer in facts.peers(name):
                for subnet in peer.pod_subnets():
                    if not prefixes_overlap(blocked, subnet.prefix) or _overlaps_own(subnet.prefix, own):
                        continue
                    narrower = blocked if blocked[2] >= subnet.prefix[2] else subnet.prefix
                    best = node.routes.best(narrower)
                    if best is None or best.type not in DISCARD_TYPES:
                        continue
                    yield Finding(
                        check="blackhole-route",
                        severity=Severity.ERROR,
                        nodes=(name,),
                        summary=f"{name}: {route.describe()} discards traffic to {peer.name}'s {subnet.source} {subnet.text}",
                        evidence=(Evidence(name, "routes", route.describe()), _subnet_evidence(subnet)),
                    )
