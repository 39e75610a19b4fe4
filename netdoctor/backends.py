"""Detection of the pod-network design (backend) each node runs.

Detection reads only what the snapshot shows, so a node can run several
backends at once (a half-migrated node), or none that netdoctor detects.
"""

from __future__ import annotations

import logging

from netdoctor.facts import DISCARD_TYPES, NodeFacts, cluster_facts, prefix_contains
from netdoctor.model import ClusterSnapshot

logger = logging.getLogger(__name__)

#: OVS interface types that carry the overlay between nodes.
OVS_TUNNEL_TYPES = frozenset({"gre", "vxlan", "geneve", "stt"})

#: Route protocols of static routes and routing daemons other than BIRD.
DIRECT_ROUTE_PROTOCOLS = frozenset({"static", "zebra", "bgp", "boot"})


def detect_backends(snapshot: ClusterSnapshot) -> dict[str, tuple[str, ...]]:
    """Return the detected backends of every node, by node name, each tuple sorted."""
    facts = cluster_facts(snapshot)
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
        if _is_direct_routing(node_facts, facts.peers(name), facts.node_by_address):
            found.add("direct-routing")
        result[name] = tuple(sorted(found))
    return result


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
    if facts.node.routes is None:
        return False
    return any(route.protocol == "bird" and route.dst_len > 0 for route in facts.node.routes.main())


def _is_direct_routing(facts: NodeFacts, peers: list[NodeFacts], node_by_address: dict[int, str]) -> bool:
    """Tell whether the node routes a peer's pod subnet via that peer's underlay address."""
    if facts.routes is None:
        return False
    for peer in peers:
        for subnet in peer.pod_subnets():
            for route in facts.routes.covering(subnet.prefix):
                if route.dst_len == 0 or route.type in DISCARD_TYPES:
                    break
                if route.protocol not in DIRECT_ROUTE_PROTOCOLS or not route.gateway:
                    break
                if node_by_address.get(route.gateway) == peer.name or any(
                    prefix_contains(prefix, (route.family, route.gateway, 32)) for prefix, _, _ in facts.underlay_subnets
                ):
                    return True
                break
    return False
