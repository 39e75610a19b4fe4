"""The path matrix: whether each node has a route or tunnel to every other node's pod subnet.

This reads only the snapshot, so "path exists" means the forwarding state is in
place on the source node: a route that covers the peer's pod subnet, leads to
an interface that is up, and, for a VXLAN or OVS tunnel, the neighbour, FDB
entry or tunnel port that sends the packet to the peer's underlay address. It
does not mean a packet was seen to arrive; probes answer that.

Cells are computed on first use and cached, because a 1,000-node cluster has a
million pairs and a view shows only a few hundred of them at a time.
"""

from __future__ import annotations

import enum
import logging
from threading import Lock

from netdoctor.facts import (
    DISCARD_TYPES,
    ClusterFacts,
    NodeFacts,
    PodSubnet,
    cluster_facts,
    prefix_text,
)
from netdoctor.model import ClusterSnapshot, Route
from netdoctor.model.addr import format_ip
from netdoctor.model.record import record

logger = logging.getLogger(__name__)

#: Cells kept in a matrix's cache; the cache starts over when it is full, so
#: scrolling through a huge matrix does not keep every verdict in memory.
MAX_CACHED_CELLS = 100_000


class PathStatus(enum.Enum):
    """The verdict for one ordered pair of nodes."""

    OK = "ok"
    BROKEN = "broken"
    #: The snapshot lacks what the verdict needs (routes not captured, no known pod subnet).
    UNKNOWN = "unknown"
    #: The pair is one node with itself.
    SELF = "self"


@record
class PathResult:
    """The verdict for a path from ``source`` to ``target``'s pod subnet, with the reason."""

    source: str
    target: str
    status: PathStatus
    #: One sentence that names the route, device or entry behind the verdict.
    reason: str
    #: The route the source node uses, as ``ip route`` prints it, when there is one.
    route: str | None = None


class _ForwardingIndex:
    """Neighbour and FDB lookups of one node, keyed by device."""

    def __init__(self, facts: NodeFacts) -> None:
        node = facts.node
        self.neighbours: dict[tuple[str, int], int] | None = None
        self.fdb: dict[tuple[str, int], tuple[int, int]] | None = None
        if node.neighbours is not None:
            self.neighbours = {}
            columns = zip(node.neighbours.column("dev"), node.neighbours.column("dst"), node.neighbours.column("lladdr"))
            for dev, dst, lladdr in columns:
                if lladdr:
                    self.neighbours[(dev, dst)] = lladdr
        if node.fdb is not None:
            self.fdb = {}
            columns_fdb = zip(node.fdb.column("dev"), node.fdb.column("mac"), node.fdb.column("family"), node.fdb.column("dst"))
            for dev, mac, family, dst in columns_fdb:
                if dst:
                    self.fdb.setdefault((dev, mac), (family, dst))


class PathMatrix:
    """The N x N path verdicts of a snapshot, computed per cell on first use.

    Rows are sources and columns are targets, both in the snapshot's node order.
    Instances are safe to share between threads.
    """

    def __init__(self, snapshot: ClusterSnapshot) -> None:
        #: Node names in row and column order.
        self.names: tuple[str, ...] = snapshot.node_names
        self._facts: ClusterFacts = cluster_facts(snapshot)
        self._cells: dict[tuple[int, int], PathResult] = {}
        self._indexes: dict[str, _ForwardingIndex] = {}
        self._lock = Lock()

    def __len__(self) -> int:
        return len(self.names)

    def evaluated(self) -> int:
        """Return how many cells have been computed and cached so far."""
        return len(self._cells)

    def cell(self, row: int, column: int) -> PathResult:
        """Return the verdict for source ``names[row]`` and target ``names[column]``."""
        key = (row, column)
        cached = self._cells.get(key)
        if cached is not None:
            return cached
        result = self.path(self.names[row], self.names[column])
        with self._lock:
            if len(self._cells) >= MAX_CACHED_CELLS:
                self._cells.clear()
            self._cells[key] = result
        return result

    def path(self, source: str, target: str) -> PathResult:
        """Return the verdict for the path from ``source`` to ``target``'s pod subnets.

        Raises ``KeyError`` for a node name that is not in the snapshot.
        """
        source_facts = self._facts.nodes[source]
        target_facts = self._facts.nodes[target]
        if source == target:
            return PathResult(source, target, PathStatus.SELF, "the same node")
        if source_facts.routes is None:
            return PathResult(source, target, PathStatus.UNKNOWN, f"the routes of {source} were not captured")
        subnets = target_facts.pod_subnets()
        if not subnets:
            return PathResult(source, target, PathStatus.UNKNOWN, f"no pod subnet of {target} is known")

        first_ok: PathResult | None = None
        for subnet in subnets:
            result = self._check_subnet(source_facts, target_facts, subnet)
            if result.status is not PathStatus.OK:
                return result
            first_ok = first_ok or result
        assert first_ok is not None
        return first_ok

    def broken_pairs(self) -> list[PathResult]:
        """Return every pair whose verdict is broken, in row then column order.

        This evaluates all N x N cells without caching them.
        """
        result = []
        for source in self.names:
            for target in self.names:
                cell = self.path(source, target)
                if cell.status is PathStatus.BROKEN:
                    result.append(cell)
        return result

    def _index(self, facts: NodeFacts) -> _ForwardingIndex:
        index = self._indexes.get(facts.name)
        if index is None:
            index = _ForwardingIndex(facts)
            with self._lock:
                self._indexes[facts.name] = index
        return index

    def _check_subnet(self, source: NodeFacts, target: NodeFacts, subnet: PodSubnet) -> PathResult:
        assert source.routes is not None
        subnet_text = f"{prefix_text(subnet.prefix)} ({subnet.source})"
        route = source.routes.best(subnet.prefix, skip_default=True)
        if route is None:
            reason = f"{source.name} has no route to {target.name}'s pod subnet {subnet_text}"
            return PathResult(source.name, target.name, PathStatus.BROKEN, reason)

        described = route.describe()
        if route.type in DISCARD_TYPES:
            reason = f"{source.name} discards traffic to {subnet_text}: {described}"
            return PathResult(source.name, target.name, PathStatus.BROKEN, reason, described)
        problem = self._device_problem(source, target, route) or self._next_hop_problem(source, target, route)
        if problem is not None:
            return PathResult(source.name, target.name, PathStatus.BROKEN, problem, described)
        return PathResult(source.name, target.name, PathStatus.OK, f"{source.name} routes {subnet_text}: {described}", described)

    def _device_problem(self, source: NodeFacts, target: NodeFacts, route: Route) -> str | None:
        if not route.dev or source.node.interfaces is None:
            return None
        interface = source.node.interface(route.dev)
        if interface is None:
            return f"the route's device {route.dev} does not exist on {source.name}"
        if not interface.is_up or interface.state == "DOWN":
            return f"the route's device {route.dev} on {source.name} is down"
        if interface.kind == "vxlan":
            return self._vxlan_problem(source, target, route)
        ovs_bridges = {bridge.name for bridge in source.node.ovs or ()}
        if interface.kind == "openvswitch" or route.dev in ovs_bridges:
            return self._ovs_problem(source, target)
        if not route.gateway:
            return self._pod_bridge_problem(source, target, route, ovs_bridges)
        return None

    def _pod_bridge_problem(self, source: NodeFacts, target: NodeFacts, route: Route, ovs_bridges: set[str]) -> str | None:
        """Judge a route to a Linux bridge: the bridge's own connected subnet, or an OVS-bridged L2 overlay."""
        for bridge in source.pod_bridges:
            if bridge.name != route.dev:
                continue
            if (route.family, route.dst, route.dst_len) == bridge.prefix:
                return (
                    f"{source.name}'s own pod bridge {route.dev} has subnet {bridge.subnet}, "
                    f"which contains {target.name}'s pods (overlapping subnets)"
                )
            if any(port in ovs_bridges for port in bridge.ports):
                return self._ovs_problem(source, target)
        return None

    def _next_hop_problem(self, source: NodeFacts, target: NodeFacts, route: Route) -> str | None:
        if not route.gateway:
            return None
        owner = self._facts.node_by_address.get(route.gateway)
        if owner is not None and owner not in (target.name, source.name):
            via = format_ip(route.family, route.gateway)
            return f"{source.name}'s next hop {via} for {target.name}'s pods is an address of {owner}"
        return None

    def _vxlan_problem(self, source: NodeFacts, target: NodeFacts, route: Route) -> str | None:
        index = self._index(source)
        if not route.gateway or index.neighbours is None:
            return None
        via = format_ip(route.family, route.gateway)
        mac = index.neighbours.get((route.dev, route.gateway))
        if mac is None:
            return f"{source.name} has no neighbour entry for next hop {via} on {route.dev}"
        if index.fdb is None:
            return None
        remote = index.fdb.get((route.dev, mac))
        if remote is None:
            return f"{source.name} has no FDB entry on {route.dev} for the VTEP MAC of next hop {via}"
        owner = self._facts.node_by_address.get(remote[1])
        if owner is not None and owner != target.name:
            remote_text = format_ip(remote[0], remote[1])
            return f"{source.name}'s FDB sends {target.name}'s VTEP MAC to {remote_text}, an address of {owner}"
        return None

    def _ovs_problem(self, source: NodeFacts, target: NodeFacts) -> str | None:
        if source.node.ovs is None:
            return None
        for bridge in source.node.ovs:
            for port in bridge.ports:
                for interface in port.interfaces:
                    remote = interface.option("remote_ip")
                    if remote is not None and self._owner_of_text(remote) == target.name:
                        return None
        return f"{source.name} has no OVS tunnel port whose remote_ip is an address of {target.name}"

    def _owner_of_text(self, address: str) -> str | None:
        from netdoctor.model.addr import AddressError, parse_ip

        try:
            return self._facts.node_by_address.get(parse_ip(address.strip('"'))[1])
        except AddressError:
            return None


def path_matrix(snapshot: ClusterSnapshot) -> PathMatrix:
    """Return the lazily evaluated path matrix of a snapshot."""
    return PathMatrix(snapshot)
