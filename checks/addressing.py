"""Address plan checks: pod bridges, pod networks and host subnets that collide."""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Iterator

from netdoctor.backends import detect_backends
from netdoctor.engine import check
from netdoctor.facts import (
    DISCARD_TYPES,
    POD_BRIDGE_NAMES,
    NodeFacts,
    PodBridge,
    PodSubnet,
    Prefix,
    address_prefix,
    cluster_facts,
    is_overlay_interface,
    make_prefix,
    marked_rows,
    prefix_contains,
    prefix_text,
    prefixes_overlap,
    rows_with,
)
from netdoctor.model import ClusterSnapshot, Evidence, Finding, Route, Severity
from netdoctor.model.addr import AF_INET, AddressError, width

#: The overlay subnet's source when it comes from Docker's ``daemon.json``.
DOCKER_BIP = "Docker's bip"
from netdoctor.model.routes import ROUTE_TYPES


def _bridge_evidence(bridge: PodBridge) -> Evidence:
    ports = f" ports {', '.join(bridge.ports)}" if bridge.ports else " no ports"
    return Evidence(bridge.node, "interfaces", f"{bridge.name} inet {bridge.cidr} mtu {bridge.mtu}{ports}")


def _last(prefix: Prefix) -> int:
    family, net, length = prefix
    return net | ((1 << (width(family) - length)) - 1)


@check("bridge-subnet-overlap", title="Pod bridge subnets overlap", severity=Severity.ERROR,
       backends=("flannel-udp", "flannel-vxlan", "ovs", "direct-routing"))
def bridge_subnet_overlap(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """Pod bridges on different nodes, or on one node, use overlapping subnets.

    What it checks:
        The IPv4 subnets of every pod bridge (a bridge with ports, or one that
        carries the node's pod subnet or the target of peers' pod routes). The
        subnets are sorted by first address and swept once, so the check is
        O(n log n) in the number of bridges. Each group of overlapping subnets
        is one finding.
    Why it matters:
        Flannel, OVS and direct routing give each node its own pod subnet. When
        two nodes' bridges share addresses, a pod's address is ambiguous. The
        node delivers traffic for a remote pod to its own bridge, and
        containers on different nodes get the same addresses. The classic case
        is Docker's default 172.17.0.1/16 on every node.
    Known problems:
        Docker's default docker0 with no ports on a Calico or CNI-bridge node is
        not a pod bridge and is ignored. An unused bridge that still carries an
        overlapping subnet but has ports for non-pod containers is reported.
    Example:
        ``docker0 172.17.0.1/16 on node1 overlaps docker0 172.17.0.1/16 on node2``.
    Fix safety:
        Moving a bridge to its own subnet restarts Docker and the containers on
        that node: disruptive.
    """
    facts = cluster_facts(snapshot)
    bridges = sorted(
        (bridge for node in facts.nodes.values() for bridge in node.pod_bridges),
        key=lambda bridge: (bridge.prefix[0], bridge.prefix[1], -_last(bridge.prefix), bridge.node, bridge.name),
    )
    group: list[PodBridge] = []
    group_end = -1
    group_family = 0
    for bridge in bridges + [None]:
        if bridge is not None and group and bridge.prefix[0] == group_family and bridge.prefix[1] <= group_end:
            group.append(bridge)
            group_end = max(group_end, _last(bridge.prefix))
            continue
        if len(group) > 1:
            yield _overlap_finding(group)
        if bridge is not None:
            group, group_end, group_family = [bridge], _last(bridge.prefix), bridge.prefix[0]


def _overlap_finding(group: list[PodBridge]) -> Finding:
    described = [f"{bridge.name} {bridge.cidr} on {bridge.node}" for bridge in group]
    nodes = tuple(sorted({bridge.node for bridge in group}))
    where = "on one node" if len(nodes) == 1 else "across nodes"
    return Finding(
        check="bridge-subnet-overlap",
        severity=Severity.ERROR,
        nodes=nodes,
        summary=f"pod bridge subnets overlap {where}: {described[0]} overlaps {', '.join(described[1:])}",
        evidence=tuple(_bridge_evidence(bridge) for bridge in group),
    )


@check("pod-network-overlaps-host", title="Pod network overlaps a host subnet or route", severity=Severity.ERROR,
       backends=("any",))
def pod_network_overlaps_host(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """The pod network or a pod bridge overlaps a host subnet or a non-pod route.

    What it checks:
        The pod networks (flannel's ``FLANNEL_NETWORK`` or the etcd config's
        ``Network``, a Calico pool inferred as the smallest prefix that holds
        every node's blocks, each pod bridge subnet and each route onto a
        Calico workload veth) against the subnets of
        the node's underlay addresses and against routes that do not lead to
        pods (for example a VPN route through ``tun0`` inside the pod network).
        One finding per pod network and host subnet or route, listing every
        node where it occurs.
    Why it matters:
        Addresses in both ranges become ambiguous. Pod routes, Calico blocks and
        NAT rules capture traffic meant for hosts on the LAN, or the LAN route
        captures traffic meant for pods. With Calico's default pool
        192.168.0.0/16 and hosts on 192.168.10.0/24, IPAM can even hand out a
        block inside the host LAN.
    Known problems:
        The Calico pool is inferred from the blocks, so it can be smaller than
        the configured pool and miss an overlap with a part of the pool that
        holds no block yet. Blocks spread wider than a /8 give no inferred pool.
    Example:
        ``Calico pool inferred from the nodes' blocks 192.168.0.0/16 overlaps
        host subnet 192.168.10.0/24 (node1 ens33 192.168.10.21/24, ...)``.
    Fix safety:
        Display only: renumbering the pod network or the hosts is a planned,
        disruptive change.
    """
    facts = cluster_facts(snapshot)
    # (pod network text, source, host side text) -> nodes and evidence
    found: dict[tuple[str, str, str], tuple[set[str], list[Evidence]]] = {}
    pod_networks = [(network.prefix, network.source) for network in facts.pod_networks]
    for name, node in sorted(facts.nodes.items()):
        node_routes = _NodeRoutes(node)
        networks = pod_networks + [(bridge.prefix, f"pod bridge {bridge.name}") for bridge in node.pod_bridges]
        networks += node_routes.workload_routes()
        for network, source in networks:
            for host_prefix, cidr, device in node.underlay_subnets:
                if not _may_overlap(network, host_prefix) or not prefixes_overlap(network, host_prefix):
                    continue
                key = (prefix_text(network), source, f"host subnet {prefix_text(host_prefix)}")
                nodes, evidence = found.setdefault(key, (set(), []))
                nodes.add(name)
                evidence.append(Evidence(name, "interfaces", f"{device} inet {cidr}"))
            for route in node_routes.non_pod_inside(network):
                key = (prefix_text(network), source, f"route {route.describe()}")
                nodes, evidence = found.setdefault(key, (set(), []))
                nodes.add(name)
                evidence.append(Evidence(name, "routes", route.describe()))
    for (network_text, source, host_side), (nodes, evidence) in sorted(found.items()):
        yield Finding(
            check="pod-network-overlaps-host",
            severity=Severity.ERROR,
            nodes=tuple(sorted(nodes)),
            summary=f"{source} {network_text} overlaps {host_side} on {', '.join(sorted(nodes))}",
            evidence=tuple(evidence),
        )


def _may_overlap(first: Prefix, second: Prefix) -> bool:
    """Tell whether two prefixes can overlap: their common leading bits agree. Cheaper than :func:`prefixes_overlap`."""
    family, network, length = first
    bits = 32 if family == AF_INET else 128
    return family == second[0] and (network ^ second[1]) >> (bits - min(length, second[2])) == 0


#: Non-pod routes of one family that a node keeps for bisection. With more, each pod network scans its own rows.
_FEW_ROUTES = 64


class _NodeRoutes:
    """A node's routes onto Calico workload veths, and its routes that lead neither to pods, nor to a peer, nor to the overlay.

    Rows are found by device. The device column is interned, so each row stores
    a small code. While the table has at most 256 devices, the low byte of a
    code is the whole code, so one byte per row is searched with
    ``bytes.translate`` in C. For the two searches each node needs, that costs
    less than :func:`rows_with`, which first checks the high bytes of every row.
    """

    def __init__(self, node: NodeFacts) -> None:
        self.node = node
        #: Device codes of ``cali*`` routes, and of routes onto devices that are no pod, overlay or flannel device.
        self.workload_codes: set[int] = set()
        self.other_codes: set[int] = set()
        #: family -> rows and destinations of the main table's non-discarding routes with other codes,
        #: or None when there are more than _FEW_ROUTES of them.
        self.candidates: dict[int, tuple[list[int], list[int]] | None] = {}
        routes = node.routes
        if routes is None:
            return
        self.values, self.index = routes.interned("dev")
        self.by_row: bytes | None = None
        if len(self.values) <= 256:
            low_byte = 0 if sys.byteorder == "little" else self.index.itemsize - 1
            self.by_row = self.index.tobytes()[low_byte::self.index.itemsize]
        self.destinations, self.lengths, self.types = (routes.cells(column) for column in ("dst", "dst_len", "type"))
        self.workload_codes = {code for code, device in enumerate(self.values) if device.startswith("cali")}
        if node.node.interfaces is None:
            return  # without the interfaces, pod and underlay devices cannot be distinguished
        pod_devices = {bridge.name for bridge in node.pod_bridges}
        pod_devices |= {interface.name for interface in node.node.interfaces or () if is_overlay_interface(interface)}
        self.underlay_devices = {interface.name for interface in node.underlay}
        # Routes onto pod and overlay devices are most of them; they are dropped by device code in bulk.
        self.other_codes = {
            code for code, device in enumerate(self.values)
            if device not in pod_devices and not device.startswith(("cali", "flannel"))
        }
        if not self.other_codes:
            return
        # A node has few other routes, so they are found once here and each pod network bisects them.
        for family in routes.families():
            main = routes.inside_range((family, 0, 0))
            rows = self._rows(self.other_codes, main.start, main.stop, limit=_FEW_ROUTES)
            if rows is None:
                self.candidates[family] = None
                continue
            rows = [row for row in rows if self.types[row] not in DISCARD_TYPES]
            self.candidates[family] = (rows, [self.destinations[row] for row in rows])

    def _rows(self, codes: set[int], start: int, stop: int, limit: int | None = None) -> list[int] | None:
        """Return the rows from ``start`` to ``stop`` whose device code is one of ``codes``, in order.

        Returns None when more than ``limit`` rows match.
        """
        if not codes or start >= stop:
            return []
        if self.by_row is None:
            found = rows_with(self.index, codes, start, stop)
            return None if limit is not None and len(found) > limit else found
        table = bytearray(256)
        for code in codes:
            table[code] = 1
        marks = self.by_row[start:stop].translate(table)
        if limit is not None and marks.count(1) > limit:
            return None
        return marked_rows(marks, start)

    def workload_routes(self) -> list[tuple[Prefix, str]]:
        """Return the prefixes routed onto Calico workload veths (``cali*``), which carry pod addresses."""
        routes = self.node.routes
        if routes is None or not self.workload_codes:
            return []
        found = []
        for family in routes.families():
            # The main table's rows of one family are one range, which contains every destination of the family.
            main = routes.inside_range((family, 0, 0))
            for row in self._rows(self.workload_codes, main.start, main.stop) or ():
                if self.lengths[row] > 0 and self.types[row] not in DISCARD_TYPES:
                    prefix = (family, self.destinations[row], self.lengths[row])
                    found.append((prefix, f"Calico workload route via {self.values[self.index[row]]}"))
        return found

    def non_pod_inside(self, network: Prefix) -> Iterator[Route]:
        """Yield the routes inside ``network`` that are no pod, peer or overlay route."""
        routes = self.node.routes
        family, net, length = network
        if routes is None or family not in self.candidates:
            return
        candidates = self.candidates[family]
        if candidates is None:
            inside = routes.inside_range(network)
            rows = self._rows(self.other_codes, inside.start, inside.stop) or []
        else:
            # Main-table rows of a family are sorted by destination, so the candidates are too.
            candidate_rows, destinations = candidates
            bits = 32 if family == AF_INET else 128
            first = bisect_left(destinations, net)
            rows = candidate_rows[first:bisect_left(destinations, net + (1 << (bits - length)), first)]
        for row in rows:
            if self.lengths[row] < length or self.types[row] in DISCARD_TYPES:
                continue
            route = routes.route(row)
            if route.protocol == "kernel" and route.dev in self.underlay_devices:
                continue  # a host subnet, reported against the address above
            if route.gateway and route.dev in self.underlay_devices:
                continue  # direct routing to a peer's pods over the underlay
            if route.type != ROUTE_TYPES["unicast"]:
                continue
            yield route


@check("bridge-outside-overlay-subnet", title="Pod bridge outside the node's overlay subnet", severity=Severity.ERROR,
       backends=("flannel-udp", "flannel-vxlan", "direct-routing"))
def bridge_outside_overlay_subnet(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """A pod bridge's subnet is not inside the subnet the overlay gave the node.

    What it checks:
        On nodes with an overlay subnet (``FLANNEL_SUBNET`` from subnet.env, the
        node's flannel lease in etcd, or its Kubernetes podCIDR; on a node of
        another detected backend without these, the ``bip`` of Docker's
        ``daemon.json``), every bridge
        with ports must carry an address inside that subnet, and at least one
        Docker or CNI bridge must carry it when such bridges exist.
    Why it matters:
        The overlay routes the node's subnet to it; containers on a bridge with
        another subnet (Docker started without ``--bip=${FLANNEL_SUBNET}``) get
        addresses no peer routes back, so cross-node traffic fails.
    Known problems:
        A Kubernetes node before its first pod has no ``cni0`` yet; its unused
        docker0 outside the subnet is then reported.
    Example:
        ``node1: docker0 172.17.0.1/16 is not inside FLANNEL_SUBNET 10.244.23.0/24``.
    Fix safety:
        Restarting Docker with ``--bip`` from subnet.env restarts the node's
        containers: disruptive.
    """
    facts = cluster_facts(snapshot)
    backends = detect_backends(snapshot)
    for name, node in sorted(facts.nodes.items()):
        overlay = node.overlay_subnet
        if overlay is None and backends.get(name):
            overlay = _docker_bip(node)
        if overlay is None or node.node.interfaces is None:
            continue
        offenders = [bridge for bridge in node.pod_bridges if bridge.ports and not prefix_contains(overlay.prefix, bridge.prefix)]
        carried = any(prefix_contains(overlay.prefix, bridge.prefix) for bridge in node.pod_bridges)
        if not carried and not offenders:
            offenders = _unused_docker_bridges(node, overlay.prefix)
        for bridge in offenders:
            yield Finding(
                check="bridge-outside-overlay-subnet",
                severity=Severity.ERROR,
                nodes=(name,),
                summary=f"{name}: {bridge.name} {bridge.cidr} is not inside {overlay.source} {overlay.text}",
                evidence=(_bridge_evidence(bridge), Evidence(name, _source_part(overlay.source), f"{overlay.source} {overlay.text}")),
            )


def _docker_bip(node: NodeFacts) -> PodSubnet | None:
    """Return the subnet of the ``bip`` that the node's Docker ``daemon.json`` gives docker0, if any."""
    docker = node.node.docker
    if docker is None or not docker.bip:
        return None
    try:
        return PodSubnet(node.name, make_prefix(docker.bip), DOCKER_BIP)
    except AddressError:
        return None


def _unused_docker_bridges(node: NodeFacts, overlay: Prefix) -> list[PodBridge]:
    result = []
    for interface in node.node.interfaces or ():
        if interface.name not in POD_BRIDGE_NAMES:
            continue
        for prefix, cidr in address_prefix(interface):
            if not prefix_contains(overlay, prefix):
                result.append(PodBridge(node.name, interface.name, prefix, cidr, interface.mtu, (), "docker bridge"))
    return result


def _source_part(source: str) -> str:
    parts = {"FLANNEL_SUBNET": "flannel_env", "flannel lease": "etcd", "podCIDR": "kube_nodes", DOCKER_BIP: "docker"}
    return parts.get(source, "interfaces")
