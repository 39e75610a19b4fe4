"""Routing checks: missing or misdirected routes to pod subnets, and discard routes that shadow them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from netdoctor.backends import OVS_TUNNEL_TYPES
from netdoctor.engine import check
from netdoctor.facts import (
    DISCARD_TYPES,
    ClusterFacts,
    NodeFacts,
    PodSubnet,
    Prefix,
    RouteIndex,
    cluster_facts,
    prefix_contains,
    prefixes_overlap,
    rows_with,
)
from netdoctor.model import ClusterSnapshot, Evidence, Finding, Route, Severity, make_details
from netdoctor.model.addr import AF_INET, format_ip, network_of, parse_ip

#: Overlay devices that never hold a node's own pods.
OVERLAY_DEVICES = frozenset({"flannel0", "tunl0", "vxlan.calico"})

_SOURCE_PARTS = {"FLANNEL_SUBNET": "flannel_env", "flannel lease": "etcd", "podCIDR": "kube_nodes", "Calico block": "routes"}


def _subnet_evidence(subnet: PodSubnet) -> Evidence:
    return Evidence(subnet.node, _SOURCE_PARTS.get(subnet.source, "interfaces"), f"{subnet.source} {subnet.text}")


def _overlaps_own(prefix: Prefix, own: list[PodSubnet]) -> bool:
    # Inline form of prefixes_overlap: this runs once per node and peer subnet.
    family, network, length = prefix
    bits = 32 if family == AF_INET else 128
    for subnet in own:
        other_family, other_network, other_length = subnet.prefix
        if other_family == family and (network ^ other_network) >> (bits - min(length, other_length)) == 0:
            return True
    return False


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
        # Only subnets whose best route is missing, a default or a discard route can be uncovered.
        suspects = _uncovered_positions(node.routes) if node.routes.primed_rows() else None
        for peer, subnet in facts.peer_subnets(name, suspects):
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
                details=make_details(peer=peer.name, prefix=subnet.text, subnet_source=subnet.source),
            )


#: Rows compared with every best row, one at a time. With more, the route index scans every position.
_SEARCHED_ROWS = 16

_DEFAULT_LENGTH = frozenset({0})


def _vectorised(facts: ClusterFacts) -> bool:
    """Tell whether the route indexes resolved the pod subnets with numpy. Smaller clusters never import it."""
    return any(node.routes is not None and node.routes.bulk_rows() is not None for node in facts.nodes.values())


def _uncovered_positions(routes: RouteIndex) -> set[int]:
    """Return the primed positions whose best route is missing, a default route or a discard route.

    This is ``routes.positions_where(discard=True, default=True)``. A node has
    few discard and default routes, so with numpy the best rows are compared
    with those few rows, in fewer steps than the route index takes.
    """
    best = routes.bulk_rows()
    if best is None:
        return routes.positions_where(discard=True, default=True)
    main = routes.inside_range((AF_INET, 0, 0))
    discard = rows_with(routes.cells("type"), DISCARD_TYPES, main.start, main.stop)
    defaults = rows_with(routes.cells("dst_len"), _DEFAULT_LENGTH, main.start, main.stop)
    # Default routes (destination 0, length 0) sort first in the main table, so those and a
    # missing route (-1) are the best rows below the first other row.
    leading = main.start + len(defaults)
    if defaults != list(range(main.start, leading)):
        leading = main.start
    compared = discard + [row for row in defaults if row >= leading]
    if len(compared) > _SEARCHED_ROWS:
        return routes.positions_where(discard=True, default=True)
    flags = best < leading
    for row in compared:
        flags |= best == row
    return set(flags.nonzero()[0].tolist())


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
        if node.routes is None or not node.discard_rows:
            continue
        own = node.pod_subnets()
        own_blocks = {block.prefix for block in node.calico_blocks}
        for row in node.discard_rows:
            blocked = node.routes.prefix(row)
            if blocked[2] == 0 or blocked in own_blocks:
                continue
            route = node.routes.route(row)
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
                        details=make_details(route=route.describe(), prefix=route.destination, peer=peer.name,
                                             peer_prefix=subnet.text),
                    )


class PodSubnetIndex:
    """An index of every node's pod subnets that finds the node of an address with one dict lookup per prefix length."""

    def __init__(self, nodes: dict[str, NodeFacts]) -> None:
        self._by_length: dict[int, dict[int, str]] = {}
        for name, node in nodes.items():
            for subnet in node.pod_subnets():
                family, network, length = subnet.prefix
                if family == AF_INET:
                    self._by_length.setdefault(length, {}).setdefault(network, name)
        self._lengths = sorted(self._by_length, reverse=True)

    def owner(self, address: int) -> str | None:
        """Return the node whose most specific pod subnet contains an IPv4 address, if any."""
        for length in self._lengths:
            owner = self._by_length[length].get(network_of(AF_INET, address, length))
            if owner is not None:
                return owner
        return None

    def by_length(self) -> list[tuple[int, dict[int, str]]]:
        """Return, longest first, each prefix length with the owner of each network of that length."""
        return [(length, self._by_length[length]) for length in self._lengths]


def _preferred(node: NodeFacts, prefix: Prefix) -> Route | None:
    """Return the route the kernel uses for a prefix: the most specific, then the lowest metric."""
    assert node.routes is not None
    candidates: list[Route] = []
    for route in node.routes.covering(prefix):
        if candidates and route.dst_len != candidates[0].dst_len:
            break
        candidates.append(route)
    return min(candidates, key=lambda route: route.metric) if candidates else None


def _gateways(route: Route) -> list[int]:
    if route.gateway:
        return [route.gateway]
    result = []
    for hop in route.nexthops:
        if hop.gateway:
            result.append(parse_ip(hop.gateway)[1])
    return result


@check("route-wrong-nexthop", title="Route to a pod subnet goes via the wrong node, device or gateway",
       severity=Severity.ERROR, backends=("any",))
def route_wrong_nexthop(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """The route to a pod subnet, a peer's or the node's own, leads to the wrong node, device or gateway.

    What it checks:
        For each peer pod subnet (flannel subnet, pod bridge, Calico block),
        the route the kernel uses for it is judged when that route is exactly
        for the subnet. Aggregates such as OVS's ``172.16.0.0/16 dev docker0``
        or flannel UDP's ``/16`` are by design and not judged. Reported are a
        gateway that is another node's underlay address or lies in another
        node's pod subnet (or in this node's own), a gateway on a
        ``flannel.N`` device outside the peer's subnet, a gateway on an OVS
        bridge with tunnel ports that is no node's or pod's address, and a route without a
        gateway onto this node's own pod bridge. For each of the node's own pod bridges, the route the kernel
        uses for the bridge subnet must leave through that bridge, not through
        an overlay device or a gateway.
    Why it matters:
        A route via the wrong peer delivers the packets to a node that does
        not host the pods; it drops them or routes them back, so two nodes'
        pods cannot talk while routes look present. A node's own subnet routed
        into the overlay sends its local pods' replies away from them. Stale
        host-gw or BGP routes after a node's IP changed, and hand-added routes
        with a typo, cause it.
    Known problems:
        A gateway that is no captured node's address and no pod address is
        judged only when it sits on the node's underlay subnet and the node
        routes another peer's pod subnet via that peer itself, so a router
        that carries every pod route is not reported. With one peer only, such
        a stale gateway is not reported. Only IPv4 routes of the
        main table are read, and policy routing rules are ignored.
    Example:
        ``node1: 10.244.2.0/24 via 192.0.2.13 dev eth0 sends node2's
        FLANNEL_SUBNET 10.244.2.0/24 to node3``.
    Fix safety:
        Replacing the route (``ip route replace``) or restarting the agent that
        owns it (flanneld, BIRD, FRR) is safe; traffic to those pods is already
        lost.
    """
    facts = cluster_facts(snapshot)
    # Both are needed only for the few routes the quick tests below do not settle.
    subnets: PodSubnetIndex | None = None
    expected = _ExpectedGateways.make(facts)
    for name, node in sorted(facts.nodes.items()):
        if node.routes is None:
            continue
        yield from _own_bridges_routed_away(node)
        own = node.pod_subnets()
        direct: bool | None = None
        types, lengths, gateways = (node.routes.cells(column) for column in ("type", "dst_len", "gateway"))
        for peer, subnet in facts.peer_subnets(name, _nexthop_suspects(facts, node, expected)):
            if _overlaps_own(subnet.prefix, own):
                continue
            row = node.routes.preferred_row(subnet.prefix)
            if row is None or lengths[row] != subnet.prefix[2] or types[row] in DISCARD_TYPES:
                continue
            if subnets is None:
                subnets = PodSubnetIndex(facts.nodes)
            # The usual right route, read from the columns: a single gateway that is
            # the peer's underlay address or its VTEP address inside its pod subnet.
            gateway = gateways[row]
            if gateway:
                owner = facts.node_by_address.get(gateway)
                if owner == peer.name or (owner is None and subnets.owner(gateway) == peer.name):
                    continue
            if direct is None:
                direct = _routes_peers_directly(node, facts.iter_peers(name), facts.node_by_address)
            route = node.routes.route(row)
            problem = _wrong_nexthop(node, peer.name, subnet, route, facts.node_by_address, subnets, direct)
            if problem is not None:
                yield Finding(
                    "route-wrong-nexthop", Severity.ERROR, (name,),
                    f"{name}: {route.describe()} sends {peer.name}'s {subnet.source} {subnet.text} {problem}",
                    (Evidence(name, "routes", route.describe()), _subnet_evidence(subnet)),
                    details=make_details(route=route.describe(), prefix=subnet.text, peer=peer.name),
                )


def _nexthop_suspects(facts: ClusterFacts, node: NodeFacts, expected: _ExpectedGateways | None) -> set[int] | None:
    """Return the primed positions whose route is not simply via the owner's underlay address, or None.

    The rest are right by the first test of :func:`_wrong_nexthop`, checked here
    for all positions at once: one gateway, and it is the owner node's address.
    """
    assert node.routes is not None
    if not node.routes.primed_rows():
        return None
    if expected is not None:
        suspects = expected.suspects(facts, node.routes)
        if suspects is not None:
            return suspects
    # Only a route exactly for the subnet is judged, so aggregates such as OVS's
    # pod-network route through docker0 are dropped here, before the per-pair loop.
    suspects = node.routes.gateway_owner_differs(facts.node_by_address, facts.owner_names(), facts.owner_codes)
    suspects -= node.routes.positions_where(discard=True)
    return suspects | node.routes.positions_where(unrouted=False, shared=True)


#: Positions with an unexpected gateway that :meth:`_ExpectedGateways.suspects` judges one by one. With
#: more, the route index judges every position.
_FEW_POSITIONS = 64


class _ExpectedGateways:
    """Per primed position, the subnet's owner and one of its underlay addresses, for clusters large enough for numpy.

    :meth:`suspects` does the work of :meth:`RouteIndex.gateway_owner_differs`
    and two :meth:`RouteIndex.positions_where` scans in fewer numpy calls. It
    compares every position's gateway with the owner's address at once, and
    looks up owners only for the few positions that differ.
    """

    def __init__(self, facts: ClusterFacts) -> None:
        from netdoctor import bulk

        np = bulk.np
        self.np = np
        names = facts.owner_names()
        first: dict[str, int] = {}
        for address in sorted(facts.node_by_address):
            first.setdefault(facts.node_by_address[address], address)
        #: Positions with no expected address (no owner, or an owner without an underlay address), always judged.
        self.unsure = [position for position, name in enumerate(names) if name is None or name not in first]
        self.addresses = np.array([first.get(name, 0) if name is not None else 0 for name in names], dtype=np.uint32)
        self._lengths: Any = None
        self._pod_subnets: PodSubnetIndex | None = None

    @classmethod
    def make(cls, facts: ClusterFacts) -> _ExpectedGateways | None:
        """Return the expected gateways when the route indexes resolved the pod subnets with numpy, else None."""
        return cls(facts) if _vectorised(facts) else None

    def suspects(self, facts: ClusterFacts, routes: RouteIndex) -> set[int] | None:
        """Return what :func:`_nexthop_suspects` returns, or None when a column is no IPv4 array or many positions differ.

        When many positions differ, it also leaves out those that the per-pair
        loop of :func:`route_wrong_nexthop` passes without judging. Those are
        routes not exactly for the subnet, and gateways in the owner's pod
        subnet (flannel's VTEP address) that are no node's underlay address.
        """
        rows = routes.primed_rows()
        gateways, lengths, types = routes.cells("gateway"), routes.cells("dst_len"), routes.cells("type")
        best, gateway_array = routes.bulk_rows(), routes.bulk_column("gateway")
        length_array, type_array = routes.bulk_column("dst_len"), routes.bulk_column("type")
        if best is None or gateway_array is None or length_array is None or type_array is None or not len(gateway_array):
            return None

        # A missing route (-1) reads the last row here; the loop below, or the test of best, drops it.
        gateway_of = gateway_array.take(best)
        settled = gateway_of == self.addresses
        differ = (~settled).nonzero()[0]
        if len(differ) > _FEW_POSITIONS:
            settled |= self._passed_by_loop(facts, routes, best, gateway_of, length_array.take(best),
                                            type_array.take(best))
            differ = (~settled).nonzero()[0]
            if len(differ) > _FEW_POSITIONS:
                return None

        assert rows is not None
        primed_lengths, names = routes.primed_lengths(), facts.owner_names()
        suspects: set[int] = set()
        for position in differ.tolist() + self.unsure:
            row = rows[position]
            if row == -1 or lengths[row] != primed_lengths[position] or types[row] in DISCARD_TYPES:
                continue
            if facts.node_by_address.get(gateways[row]) != names[position]:
                suspects.add(position)

        # Routes that repeat another row's destination and length: the lowest metric decides, so they are judged.
        shared = routes.shared_rows()
        if len(shared) > _SEARCHED_ROWS:
            return None
        suspects |= routes.positions_of_rows(shared)
        return suspects

    def _passed_by_loop(self, facts: ClusterFacts, routes: RouteIndex, best: Any, gateway_of: Any, length_of: Any,
                        type_of: Any) -> Any:
        """Flag the positions that the per-pair loop passes over, by each position's best row.

        Those are: no route, a route not exactly for the subnet, a discard
        route, and a gateway that is no node's underlay address but lies in
        the pod subnet of the position's only owner.
        """
        np = self.np
        if self._lengths is None:
            self._prepare(facts, routes)
        passed = (best < 0) | (length_of != self._lengths) | self._discard[type_of]
        found = np.searchsorted(self._node_addresses, gateway_of)
        inside = np.minimum(found, max(len(self._node_addresses) - 1, 0))
        is_node_address = (found < len(self._node_addresses)) & (self._node_addresses[inside] == gateway_of)
        owner = np.full(len(best), -1, dtype=np.int64)
        unresolved = np.ones(len(best), dtype=bool)
        for length, networks, codes in self._pod_networks:
            mask = np.uint32((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF)
            network = gateway_of & mask
            found = np.searchsorted(networks, network)
            inside = np.minimum(found, len(networks) - 1)
            hit = unresolved & (found < len(networks)) & (networks[inside] == network)
            owner[hit] = codes[inside[hit]]
            unresolved &= ~hit
        passed |= (gateway_of != 0) & ~is_node_address & (owner == self._owner_codes)
        return passed

    def _prepare(self, facts: ClusterFacts, routes: RouteIndex) -> None:
        """Build the arrays :meth:`_passed_by_loop` reads, once per run of the check."""
        np = self.np
        self._lengths = np.array(routes.primed_lengths(), dtype=np.uint8)
        self._discard = np.zeros(256, dtype=bool)
        self._discard[sorted(DISCARD_TYPES)] = True
        self._node_addresses = np.array(sorted(facts.node_by_address), dtype=np.uint32)
        code = {name: number for number, name in enumerate(sorted(facts.nodes))}
        # -2 matches no pod owner (-1 means none found), so a subnet that several nodes claim stays a suspect.
        self._owner_codes = np.array([-2 if name is None else code[name] for name in facts.owner_names()],
                                     dtype=np.int64)
        self._pod_networks = []
        for length, owners in PodSubnetIndex(facts.nodes).by_length():
            networks = sorted(owners)
            self._pod_networks.append((length, np.array(networks, dtype=np.uint32),
                                       np.array([code[owners[network]] for network in networks], dtype=np.int64)))


def _wrong_nexthop(node: NodeFacts, peer: str, subnet: PodSubnet, route: Route,
                   node_by_address: dict[int, str], subnets: PodSubnetIndex, direct: bool) -> str | None:
    """Return what is wrong with a route to a peer's subnet, or None when it is right or cannot be judged.

    ``direct`` is True when the node routes some peer's pod subnet via that peer's
    own underlay address, so a gateway on the underlay that is no node's address
    is stale rather than a router that carries pod routes.
    """
    gateways = _gateways(route)
    if not gateways:
        bridges = {bridge.name for bridge in node.pod_bridges}
        if route.dev in bridges:
            return f"onto this node's own pod bridge {route.dev} instead of to {peer}"
        return None
    for gateway in gateways:
        text = format_ip(AF_INET, gateway)
        underlay_owner = node_by_address.get(gateway)
        if underlay_owner is not None:
            if underlay_owner != peer:
                return f"to {underlay_owner} ({text}) instead of {peer}"
            continue
        pod_owner = subnets.owner(gateway)
        if pod_owner is not None:
            if pod_owner != peer:
                return f"to {pod_owner}'s pod address {text} instead of {peer}"
            continue
        if route.dev.startswith("flannel."):
            return f"via {text}, which is outside {subnet.text}, where flannel puts {peer}'s VTEP address"
        if route.dev in _ovs_tunnel_bridges(node):
            return f"via {text} into the OVS tunnel mesh on {route.dev}, but {text} is no node's or pod's address"
        if direct and any(prefix_contains(prefix, (AF_INET, gateway, 32)) for prefix, _, _ in node.underlay_subnets):
            return f"via {text}, which is no node's address, while other peers' pod subnets go via the peers themselves"
    return None


def _ovs_tunnel_bridges(node: NodeFacts) -> set[str]:
    """Return the node's OVS bridges that hold a tunnel port."""
    return {
        bridge.name for bridge in node.node.ovs or ()
        if any(interface.type in OVS_TUNNEL_TYPES for port in bridge.ports for interface in port.interfaces)
    }


def _routes_peers_directly(node: NodeFacts, peers: Iterable[NodeFacts], node_by_address: dict[int, str]) -> bool:
    """Tell whether a route to some peer's pod subnet goes via that peer's own underlay address."""
    assert node.routes is not None
    types, gateways = node.routes.cells("type"), node.routes.cells("gateway")
    for peer in peers:
        for subnet in peer.pod_subnets():
            row = node.routes.preferred_row(subnet.prefix)
            if row is None or types[row] in DISCARD_TYPES:
                continue
            if gateways[row]:
                if node_by_address.get(gateways[row]) == peer.name:
                    return True
            elif any(node_by_address.get(gateway) == peer.name for gateway in _gateways(node.routes.route(row))):
                return True
    return False


def _own_bridges_routed_away(node: NodeFacts) -> Iterator[Finding]:
    for bridge in node.pod_bridges:
        route = _preferred(node, bridge.prefix)
        if route is None or route.type in DISCARD_TYPES or route.dev == bridge.name:
            continue
        if route.dst_len == 0:
            continue  # no covering route at all is a missing connected route, not a wrong next hop
        if route.gateway or route.nexthops or route.dev.startswith(("flannel", "tunl")) or route.dev in OVERLAY_DEVICES:
            yield Finding(
                "route-wrong-nexthop", Severity.ERROR, (node.name,),
                f"{node.name}: its own pod subnet {bridge.subnet} on {bridge.name} is routed '{route.describe()}' "
                f"instead of through {bridge.name}",
                (Evidence(node.name, "routes", route.describe()),
                 Evidence(node.name, "interfaces", f"{bridge.name} {bridge.cidr}")),
                details=make_details(route=route.describe(), prefix=bridge.subnet, dev=bridge.name),
            )
