"""Detection of the pod-network design (backend) each node runs.

Detection reads only what the snapshot shows, so a node can run several
backends at once (a half-migrated node), or none that netdoctor detects.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import chain, compress

from netdoctor.facts import DISCARD_TYPES, ClusterFacts, NodeFacts, PodSubnet, cluster_facts
from netdoctor.log import get_logger
from netdoctor.model import ClusterSnapshot
from netdoctor.model.addr import AF_INET

logger = get_logger(__name__)

#: OVS interface types that carry the overlay between nodes.
OVS_TUNNEL_TYPES = frozenset({"gre", "vxlan", "geneve", "stt"})

#: Route protocols of static routes and routing daemons other than BIRD.
DIRECT_ROUTE_PROTOCOLS = frozenset({"static", "zebra", "bgp", "boot"})


def detect_backends(snapshot: ClusterSnapshot) -> dict[str, tuple[str, ...]]:
    """Return the detected backends of every node, by node name, each tuple sorted."""
    facts = cluster_facts(snapshot)
    cached: dict[str, tuple[str, ...]] | None = facts.memo.get("backends")
    if cached is not None:
        return dict(cached)
    result: dict[str, tuple[str, ...]] = {}
    for name, node_facts in sorted(facts.nodes.items()):
        found = set()
        if _is_flannel_udp(node_facts):
            found.add("flannel-udp")
        if _is_flannel_vxlan(node_facts):
            found.add("flannel-vxlan")
        if _is_ovs(node_facts):
            found.add("ovs")
        if _is_calico(node_facts):
            found.add("calico")
        if _is_direct_routing(node_facts, facts):
            found.add("direct-routing")
        result[name] = tuple(sorted(found))
    facts.memo["backends"] = result
    return dict(result)


def _is_flannel_udp(facts: NodeFacts) -> bool:
    return facts.node.interface("flannel0") is not None


def _is_flannel_vxlan(facts: NodeFacts) -> bool:
    return any(
        interface.name.startswith("flannel.") and interface.kind in ("vxlan", "ethernet", "")
        for interface in facts.node.interfaces or ()
    )


def _is_ovs(facts: NodeFacts) -> bool:
    for bridge in facts.node.ovs or ():
        for port in bridge.ports:
            if any(interface.type in OVS_TUNNEL_TYPES for interface in port.interfaces):
                return True
    return any(
        interface.kind == "openvswitch" or interface.name == "ovs-system" for interface in facts.node.interfaces or ()
    )


def _is_calico(facts: NodeFacts) -> bool:
    tunnel = facts.node.interface("tunl0")
    if tunnel is not None and any(address.family == 4 for address in tunnel.addresses):
        return True
    if facts.node.interface("vxlan.calico") is not None:
        return True
    if any(interface.name.startswith("cali") for interface in facts.node.interfaces or ()):
        return True
    if facts.routes is None:
        return False
    lengths = facts.routes.cells("dst_len")
    return any(lengths[row] > 0 for row in facts.routes.rows_where("protocol", AF_INET, "bird".__eq__))


def _gateway_owners(facts: NodeFacts, cluster: ClusterFacts, family: int, gateways: set[int]) -> dict[int, str | None]:
    """Return which of ``gateways`` lead to a peer: None for one in the node's underlay, else the node it belongs to.

    Gateways outside both are left out. The sorted gateways are bisected once
    per underlay subnet, not tested one by one.
    """
    gateways.discard(0)
    bits = 32 if family == AF_INET else 128
    ordered = sorted(gateways)
    owners: dict[int, str | None] = {}
    for (subnet_family, network, length), _, _ in facts.underlay_subnets:
        if subnet_family != family:
            continue
        first = network >> (bits - length) << (bits - length)
        start = bisect_left(ordered, first)
        owners.update(dict.fromkeys(ordered[start:bisect_left(ordered, first + (1 << (bits - length)), start)]))
    # Gateways in the underlay keep None, as the underlay test comes first.
    for gateway in (gateways & cluster.node_by_address.keys()).difference(owners):
        owners[gateway] = cluster.node_by_address[gateway]
    return owners


def _is_direct_routing(facts: NodeFacts, cluster: ClusterFacts) -> bool:
    """Tell whether the node routes a peer's pod subnet via that peer's underlay address."""
    if facts.routes is None:
        return False
    candidates = {family: facts.routes.rows_where("protocol", family, DIRECT_ROUTE_PROTOCOLS.__contains__)
                  for family in facts.routes.families()}
    lengths, types = facts.routes.cells("dst_len"), facts.routes.cells("type")
    gateways = facts.routes.cells("gateway")
    # A route counts for any peer when its gateway is in the node's underlay (owner None), and for one node's subnets
    # when its gateway is that node's address. A row is judged when a pair reads it.
    owners = {family: _gateway_owners(facts, cluster, family, set(map(gateways.__getitem__, rows)))
              for family, rows in candidates.items()}
    families = facts.routes.cells("family")
    candidate_rows = set(chain.from_iterable(candidates.values()))

    def counts(row: int) -> bool:
        return (row in candidate_rows and gateways[row] in owners[families[row]] and lengths[row] != 0
                and types[row] not in DISCARD_TYPES)

    # A flannel node has a route of protocol "boot" to each peer's subnet via the peer's VTEP address, which is no
    # underlay or node address, so every row fails the test in C and no pair is read.
    if not any(counts(row) for family, family_rows in candidates.items()
               for row in compress(family_rows, map(owners[family].__contains__, map(gateways.__getitem__, family_rows)))):
        return False
    suspects = None
    if facts.routes.primed_rows():
        codes = facts.routes.text_codes("protocol", DIRECT_ROUTE_PROTOCOLS.__contains__)
        suspects = facts.routes.positions_where(unrouted=False, text=("protocol", codes)) if codes else set()
    routes = facts.routes

    def routed_directly(peer: NodeFacts, subnet: PodSubnet) -> bool:
        # Only the most specific route counts, and this test runs for every pair of nodes.
        best = routes.best_row(subnet.prefix)
        return best is not None and counts(best) and owners[families[best]][gateways[best]] in (None, peer.name)

    return cluster.any_peer_subnet(facts.name, suspects, routed_directly)
