"""Flannel data-plane checks: each node's backend against the network config, and VXLAN VTEP entries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from itertools import compress
from typing import Any

from netdoctor.engine import check
from netdoctor.facts import ClusterFacts, NodeFacts, cluster_facts, prefix_text
from netdoctor.flannel import DEFAULT_PREFIX, Lease, NetworkConfig, leases, network_config, prefixes
from netdoctor.log import get_logger
from netdoctor.model import (
    ClusterSnapshot,
    Evidence,
    Finding,
    Interface,
    KubeNode,
    Severity,
    make_details,
)
from netdoctor.model.addr import AF_INET, format_ip, format_mac, parse_ip, parse_mac
from netdoctor.model.record import record
from netdoctor.model.routes import FdbTable, NeighbourTable

logger = get_logger(__name__)

#: flannel's VXLAN defaults when the network config leaves ``VNI`` or ``Port`` out;
#: a ``Port`` of 0 lets the kernel pick its default, 8472.
DEFAULT_VNI = 1
DEFAULT_VXLAN_PORT = 8472

#: Node annotations flanneld writes when it runs with the Kubernetes subnet manager.
BACKEND_TYPE_ANNOTATION = "flannel.alpha.coreos.com/backend-type"
BACKEND_DATA_ANNOTATION = "flannel.alpha.coreos.com/backend-data"
PUBLIC_IP_ANNOTATION = "flannel.alpha.coreos.com/public-ip"


@record
class Observation:
    """One backend setting of one node as one source shows it."""

    node: str
    #: ``backend type``, ``VNI`` or ``port``.
    setting: str
    value: str
    evidence: Evidence


def flannel_device(node: NodeFacts) -> Interface | None:
    """Return the node's flannel VXLAN device (``flannel.<VNI>``), if it has one."""
    for interface in node.node.interfaces or ():
        if interface.name.startswith("flannel.") and (interface.kind == "vxlan" or interface.vxlan is not None):
            return interface
    return None


def _annotation(kube: KubeNode | None, key: str) -> str | None:
    for name, value in kube.annotations if kube is not None else ():
        if name == key:
            return value
    return None


def _backend_data(kube: KubeNode | None) -> dict[str, object]:
    raw = _annotation(kube, BACKEND_DATA_ANNOTATION)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        logger.warning("%s: annotation %s is not JSON: %r", kube.name if kube else "?", BACKEND_DATA_ANNOTATION, raw)
        return {}
    return data if isinstance(data, dict) else {}


def _etcd_state(snapshot: ClusterSnapshot) -> tuple[NetworkConfig | None, tuple[Lease, ...]]:
    if snapshot.etcd is None:
        return None, ()
    found = prefixes(snapshot.etcd)
    prefix = found[0] if found else DEFAULT_PREFIX
    config = network_config(snapshot.etcd, prefix)
    return (config if config.error is None else None), leases(snapshot.etcd, prefix)


class NodeLeases:
    """The flannel leases of a cluster, indexed to find each node's lease with dict lookups.

    A node's lease is the one for its FLANNEL_SUBNET, else the first lease
    whose PublicIP the node holds. Scanning every lease for every node would
    make the checks quadratic in the size of the cluster.
    """

    def __init__(self, all_leases: tuple[Lease, ...]) -> None:
        self.by_subnet: dict[str, Lease] = {}
        #: Public address -> the position of the first lease with it, and that lease.
        self.by_address: dict[int, tuple[int, Lease]] = {}
        for position, lease in enumerate(all_leases):
            self.by_subnet.setdefault(lease.subnet.with_prefixlen, lease)
            if lease.public_ip is None:
                continue
            try:
                address = parse_ip(lease.public_ip)[1]
            except ValueError:
                continue
            self.by_address.setdefault(address, (position, lease))

    def find(self, node: NodeFacts) -> Lease | None:
        """Return the lease for the node's overlay subnet, else the first lease whose PublicIP the node holds."""
        if node.overlay_subnet is not None:
            lease = self.by_subnet.get(prefix_text(node.overlay_subnet.prefix))
            if lease is not None:
                return lease
        held_leases = [self.by_address[address] for address in node.addresses if address in self.by_address]
        return min(held_leases, key=lambda item: item[0])[1] if held_leases else None


def _observations(node: NodeFacts, lease: Lease | None, kube: KubeNode | None) -> list[Observation]:
    """Collect the backend type, VNI and port that the node's devices, lease and annotations show."""
    found: list[Observation] = []
    name = node.name
    device = flannel_device(node)
    if device is not None:
        item = f"{device.name} vxlan"
        if device.vxlan is not None:
            item += f" id {device.vxlan.vni}" + (f" dstport {device.vxlan.port}" if device.vxlan.port else "")
        found.append(Observation(name, "backend type", "vxlan", Evidence(name, "interfaces", item)))
        if device.vxlan is not None:
            found.append(Observation(name, "VNI", str(device.vxlan.vni), Evidence(name, "interfaces", item)))
            if device.vxlan.port is not None:
                found.append(Observation(name, "port", str(device.vxlan.port), Evidence(name, "interfaces", item)))
    udp = node.node.interface("flannel0")
    if udp is not None:
        found.append(Observation(name, "backend type", "udp",
                                 Evidence(name, "interfaces", f"flannel0 {udp.kind} mtu {udp.mtu}")))
    if lease is not None and lease.backend_type:
        found.append(Observation(name, "backend type", lease.backend_type,
                                 Evidence(None, "etcd", f"{lease.key} BackendType {lease.backend_type}")))
    annotated = _annotation(kube, BACKEND_TYPE_ANNOTATION)
    if annotated:
        found.append(Observation(name, "backend type", annotated.lower(),
                                 Evidence(name, "kube_nodes", f"{BACKEND_TYPE_ANNOTATION}={annotated}")))
    vni = _backend_data(kube).get("VNI")
    if isinstance(vni, int):
        found.append(Observation(name, "VNI", str(vni), Evidence(name, "kube_nodes", f"{BACKEND_DATA_ANNOTATION} VNI {vni}")))
    return found


def _expected(config: NetworkConfig) -> dict[str, str]:
    assert config.backend_type is not None
    expected = {"backend type": config.backend_type}
    if config.backend_type == "vxlan":
        expected["VNI"] = str(config.vni if config.vni is not None else DEFAULT_VNI)
        expected["port"] = str(config.port if config.port else DEFAULT_VXLAN_PORT)
    return expected


@check("flannel-backend-mismatch", title="Flannel backend differs between nodes or from the config",
       severity=Severity.ERROR, backends=("flannel-udp", "flannel-vxlan"))
def flannel_backend_mismatch(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """A node runs a different flannel backend, VNI or port than the network config or the other nodes.

    What it checks:
        For every node that shows flannel data, the backend type, VXLAN VNI
        and UDP port as its devices show them (``flannel.N`` with ``vxlan id
        VNI dstport PORT`` from ``ip -d addr``, ``flannel0`` for UDP), as its
        etcd lease's ``BackendType`` records, and as its node annotations
        (``flannel.alpha.coreos.com/backend-type`` and ``backend-data``) say.
        With the network config in etcd, each value must match its
        ``Backend`` (VNI 1 and port 8472 when the config leaves them out).
        Without the config, the value most nodes show is taken as right and
        the other nodes are reported; when no value has a majority, all of
        them are.
    Why it matters:
        VXLAN packets with another VNI or to another UDP port are dropped by
        the receiving kernel, and a UDP-backend node cannot talk to a VXLAN
        node at all, so pods on the mismatched node reach no pod elsewhere.
        This happens when the config is changed while some flanneld processes
        keep running with the old backend.
    Known problems:
        The port is only known from ``ip -d addr`` output; plain ``ip addr``
        shows no VXLAN details, so only the backend type is compared then. A
        node with both flannel0 and flannel.1 (a half-done migration) is
        reported even if the old device is unused.
    Example:
        ``node2: flannel VNI is 2 (flannel.2 vxlan id 2 dstport 8472), but the
        network config says 1``.
    Fix safety:
        Restarting flanneld on the node re-creates the device from the config
        and is safe, but pods lose cross-node traffic for a few seconds.
    """
    facts = cluster_facts(snapshot)
    config, all_leases = _etcd_state(snapshot)
    kube = {item.name: item for item in snapshot.kube_nodes or ()}
    node_leases = NodeLeases(all_leases)
    observations: list[Observation] = []
    for name, node in sorted(facts.nodes.items()):
        observations += _observations(node, node_leases.find(node), kube.get(name))
    if not observations:
        return
    if config is not None and config.backend_type is not None:
        yield from _against_config(observations, config)
    else:
        yield from _against_majority(observations)


def _against_config(observations: list[Observation], config: NetworkConfig) -> Iterator[Finding]:
    expected = _expected(config)
    wrong: dict[tuple[str, str], list[Observation]] = {}
    for item in observations:
        want = expected.get(item.setting)
        if want is not None and item.value != want:
            wrong.setdefault((item.node, item.setting), []).append(item)
    for (node, setting), items in sorted(wrong.items()):
        values = ", ".join(f"{item.value} ({item.evidence.item})" for item in items)
        yield Finding(
            "flannel-backend-mismatch", Severity.ERROR, (node,),
            f"{node}: flannel {setting} is {values}, but the network config says {expected[setting]}",
            tuple(item.evidence for item in items) + (Evidence(None, "etcd", f"{config.key} {_config_text(config)}"),),
            details=make_details(
                setting=setting, value=",".join(sorted({item.value for item in items})), expected=expected[setting],
                expected_from="config", config_key=config.key, backend_type=config.backend_type,
                vni=config.vni, port=config.port,
            ),
        )


def _config_text(config: NetworkConfig) -> str:
    parts = [f"Backend.Type {config.backend_type}"]
    if config.vni is not None:
        parts.append(f"VNI {config.vni}")
    if config.port is not None:
        parts.append(f"Port {config.port}")
    return ", ".join(parts)


def _against_majority(observations: list[Observation]) -> Iterator[Finding]:
    by_setting: dict[str, dict[str, set[str]]] = {}
    for item in observations:
        by_setting.setdefault(item.setting, {}).setdefault(item.node, set()).add(item.value)
    for setting, per_node in sorted(by_setting.items()):
        counts = Counter(value for values in per_node.values() for value in values)
        if len(counts) < 2:
            continue
        ranked = counts.most_common()
        majority = ranked[0][0] if ranked[0][1] > ranked[1][1] else None
        if majority is None:
            nodes = tuple(sorted(per_node))
            listed = "; ".join(f"{node} {', '.join(sorted(per_node[node]))}" for node in nodes)
            yield Finding(
                "flannel-backend-mismatch", Severity.ERROR, nodes,
                f"flannel {setting} differs across nodes and no value is shared by most: {listed}",
                tuple(item.evidence for item in observations if item.setting == setting),
                details=make_details(setting=setting, value=",".join(sorted(counts))),
            )
            continue
        for node, values in sorted(per_node.items()):
            if values == {majority}:
                continue
            items = [item for item in observations if item.node == node and item.setting == setting]
            values_text = ", ".join(f"{item.value} ({item.evidence.item})" for item in items)
            yield Finding(
                "flannel-backend-mismatch", Severity.ERROR, (node,),
                f"{node}: flannel {setting} is {values_text}, but {counts[majority]} of {len(per_node)} nodes show {majority}",
                tuple(item.evidence for item in items),
                details=make_details(
                    setting=setting, value=",".join(sorted(values)), expected=majority, expected_from="majority",
                ),
            )


@record
class Vtep:
    """A peer's VTEP: its overlay address, VTEP MAC and underlay IP, each with its source."""

    node: str
    overlay_address: int | None
    mac: int | None
    mac_source: str
    underlay: int | None
    underlay_source: str


def _peer_vtep(node: NodeFacts, lease: Lease | None, kube: KubeNode | None) -> Vtep:
    """Work out a node's VTEP from its own flannel.1 first, then its lease, then its annotations."""
    device = flannel_device(node)
    overlay = None
    if device is not None:
        overlay = next((parse_ip(address.address)[1] for address in device.addresses if address.family == AF_INET), None)
    if overlay is None and node.overlay_subnet is not None:
        overlay = node.overlay_subnet.prefix[1]

    mac, mac_source = None, ""
    data_mac = _backend_data(kube).get("VtepMAC")
    if device is not None and device.mac:
        mac, mac_source = _mac(device.mac), f"{node.name}'s {device.name}"
    elif lease is not None and lease.vtep_mac:
        mac, mac_source = _mac(lease.vtep_mac), f"lease {lease.key}"
    elif isinstance(data_mac, str):
        mac, mac_source = _mac(data_mac), f"{node.name}'s {BACKEND_DATA_ANNOTATION}"

    underlay, underlay_source = None, ""
    annotated_ip = _annotation(kube, PUBLIC_IP_ANNOTATION)
    if device is not None and device.vxlan is not None and device.vxlan.local:
        underlay, underlay_source = _ip(device.vxlan.local), f"{node.name}'s {device.name} local"
    elif lease is not None and lease.public_ip:
        underlay, underlay_source = _ip(lease.public_ip), f"lease {lease.key} PublicIP"
    elif annotated_ip:
        underlay, underlay_source = _ip(annotated_ip), f"{node.name}'s {PUBLIC_IP_ANNOTATION}"
    return Vtep(node.name, overlay, mac, mac_source, underlay, underlay_source)


def _mac(text: str) -> int | None:
    try:
        return parse_mac(text)
    except ValueError:
        return None


def _ip(text: str) -> int | None:
    try:
        family, value = parse_ip(text)
    except ValueError:
        return None
    return value if family == AF_INET else None


@check("vtep-mismatch", title="Flannel VXLAN FDB or neighbour entry points at a wrong VTEP",
       severity=Severity.ERROR, backends=("flannel-vxlan",))
def vtep_mismatch(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """A flannel VXLAN FDB or neighbour entry sends a peer's traffic to a wrong MAC or underlay IP.

    What it checks:
        flanneld programs each node's ``flannel.N`` with one permanent
        neighbour entry per peer (the peer's overlay address to the peer's
        VTEP MAC) and one FDB entry per peer (that MAC to the peer's underlay
        IP). Each entry is compared with the peer's VTEP: its MAC and local
        IP from its own ``flannel.N`` device, else its lease's ``VtepMAC`` and
        ``PublicIP``, else its ``flannel.alpha.coreos.com/backend-data`` and
        ``public-ip`` annotations. Reported are a neighbour entry with another
        MAC, an FDB entry for the peer's MAC with another ``dst``, a missing
        FDB entry for the peer's MAC when the neighbour entry exists, and a
        missing neighbour entry when the FDB entry exists.
    Why it matters:
        flannel.1 runs with ``nolearning``, so the kernel sends a peer's
        traffic exactly where these entries point. Without the neighbour
        entry the kernel sends an ARP request for the peer's VTEP address,
        and flannel.1 has no FDB entry for broadcasts, so the request is lost. After a peer's IP or VTEP MAC
        changes (a re-created node, a restarted flanneld without a fixed MAC)
        stale entries send the packets to an old address or MAC and they are
        lost, while every route still looks right.
    Known problems:
        Only captured peers are compared; entries for nodes outside the
        snapshot are not judged. A node whose FDB or neighbours were not
        captured is only judged on the part that was.
    Example:
        ``node1: flannel.1 FDB entry 8a:f4:e3:45:49:e7 dst 192.0.2.99 points
        at 192.0.2.12 ... for node2``.
    Fix safety:
        Replacing the entry (``bridge fdb replace``, ``ip neigh replace``) or
        restarting flanneld on the node is safe.
    """
    facts = cluster_facts(snapshot)
    _, all_leases = _etcd_state(snapshot)
    kube = {item.name: item for item in snapshot.kube_nodes or ()}
    members = {name: node for name, node in facts.nodes.items() if flannel_device(node) is not None}
    if len(members) < 2:
        return
    node_leases = NodeLeases(all_leases)
    vteps = {name: _peer_vtep(node, node_leases.find(node), kube.get(name)) for name, node in members.items()}
    expected = _ExpectedEntries.of(list(vteps.values()))
    ordered = sorted(members)
    for name in ordered:
        if expected is not None and expected.all_present(members[name], vteps[name]):
            continue
        yield from _node_vtep_entries(members[name], [vteps[peer] for peer in ordered if peer != name], facts)


class _ExpectedEntries:
    """The neighbour and FDB entries that every node's flannel device should have, one per peer.

    Comparing a node's entries with these as sets, in C, settles a node whose
    entries are all right. That is most nodes, and reading their entries one
    peer at a time took most of the check's time at 1,000 nodes.
    """

    def __init__(self, neighbours: set[tuple[int, int, int]], fdb: set[tuple[int, int]]) -> None:
        #: ``(overlay address, VTEP MAC, AF_INET)`` and ``(VTEP MAC, underlay IP)`` of every node.
        self.neighbours = neighbours
        self.fdb = fdb
        self.addresses = {address for address, _, _ in neighbours}
        self.macs = {mac for mac, _ in fdb}

    @classmethod
    def of(cls, vteps: list[Vtep]) -> _ExpectedEntries | None:
        """Return the entries of these VTEPs, or None unless each has an address, MAC and underlay IP of its own."""
        neighbours = {(vtep.overlay_address, vtep.mac, AF_INET) for vtep in vteps
                      if vtep.overlay_address is not None and vtep.mac}
        fdb = {(vtep.mac, vtep.underlay) for vtep in vteps if vtep.mac and vtep.underlay}
        entries = cls(neighbours, fdb)
        if not len(vteps) == len(neighbours) == len(fdb) == len(entries.addresses) == len(entries.macs):
            return None
        return entries

    def all_present(self, node: NodeFacts, own: Vtep) -> bool:
        """Tell whether the node's flannel device has exactly one entry for each peer, and it is right.

        The node's entries for itself, and entries for addresses and MACs of
        no captured node, are not looked at, as :func:`_node_vtep_entries` does.
        """
        device = flannel_device(node)
        if device is None or node.node.neighbours is None or node.node.fdb is None:
            return False
        return (_only_expected(node.node.neighbours, device.name, ("dst", "lladdr", "family"), self.neighbours,
                               self.addresses, (own.overlay_address, own.mac, AF_INET))
                and _only_expected(node.node.fdb, device.name, ("mac", "dst"), self.fdb, self.macs,
                                   (own.mac, own.underlay)))


def _only_expected(table: NeighbourTable | FdbTable, dev: str, columns: tuple[str, ...], expected: set[Any],
                   keys: set[int], own: tuple[Any, ...]) -> bool:
    """Tell whether the rows on ``dev`` whose first column is one of ``keys`` are ``expected`` less ``own``, one each."""
    names, codes = table.interned("dev")
    if dev not in names:
        return False
    on_dev = list(map(names.index(dev).__eq__, codes))
    first = list(compress(table.cells(columns[0]), on_dev))
    # One row for each key other than the node's own, and each of those rows expected.
    if sum(map(keys.__contains__, first)) - first.count(own[0]) != len(keys) - 1:
        return False
    missing = expected.difference(compress(zip(*(table.cells(column) for column in columns)), on_dev))
    missing.discard(own)
    return not missing


def _entries_on(table: NeighbourTable | FdbTable | None, dev: str, key: str, value: str,
                family: int | None = None) -> dict[int, list[tuple[int, int]]]:
    """Map each ``key`` of the entries on ``dev`` with a ``value`` to ``(value, row)`` pairs.

    The columns are read directly. A flannel node has one entry per peer, so a
    row is described only when a finding quotes it.
    """
    found: dict[int, list[tuple[int, int]]] = {}
    if table is None:
        return found
    names, codes = table.interned("dev")
    if dev not in names:
        return found
    keys, values, families = table.cells(key), table.cells(value), table.cells("family")
    for row in compress(range(len(table)), map(names.index(dev).__eq__, codes)):
        if values[row] and (family is None or families[row] == family):
            found.setdefault(keys[row], []).append((values[row], row))
    return found


def _node_vtep_entries(node: NodeFacts, peers: list[Vtep], facts: ClusterFacts) -> Iterator[Finding]:
    device = flannel_device(node)
    assert device is not None
    name, dev = node.name, device.name
    # neighbour address -> (MAC, row), and FDB MAC -> (remote VTEP, row).
    neighbours = _entries_on(node.node.neighbours, dev, "dst", "lladdr", AF_INET)
    fdb = _entries_on(node.node.fdb, dev, "mac", "dst")

    for peer in peers:
        if peer.mac is None:
            continue
        neighbour_ok = False
        if node.node.neighbours is not None and peer.overlay_address is not None:
            for lladdr, row in neighbours.get(peer.overlay_address, []):
                if lladdr == peer.mac:
                    neighbour_ok = True
                    continue
                text = node.node.neighbours[row].describe()
                mac_text = format_mac(peer.mac)
                yield _vtep_finding(
                    name, f"{name}: {dev} neighbour entry '{text}' for {peer.node} points at MAC {format_mac(lladdr)}, "
                    f"but {peer.mac_source} has MAC {mac_text}", text, "neighbours", peer.node,
                    f"{peer.mac_source} MAC {mac_text}",
                    make_details(entry="neighbour", dev=dev, address=_format_ip(peer.overlay_address),
                                 lladdr=format_mac(lladdr), vtep_mac=mac_text, peer=peer.node))
        if node.node.fdb is None or peer.underlay is None:
            continue
        entries = fdb.get(peer.mac, [])
        if (node.node.neighbours is not None and peer.overlay_address is not None
                and peer.overlay_address not in neighbours and entries):
            address_text = _format_ip(peer.overlay_address)
            mac_text = format_mac(peer.mac)
            yield _vtep_finding(
                name, f"{name}: {dev} has no neighbour entry for {peer.node}'s VTEP address {address_text}, so "
                f"the kernel cannot resolve the next hop of {peer.node}'s pod subnet", f"no neighbour entry for "
                f"{address_text} on {dev}", "neighbours", peer.node, f"{peer.mac_source} MAC {mac_text}",
                make_details(entry="neighbour-missing", dev=dev, address=address_text, vtep_mac=mac_text,
                             peer=peer.node))
        all_right = bool(entries) and all(dst == peer.underlay for dst, _ in entries)
        if all_right or (not entries and not neighbour_ok):
            continue
        mac_text = format_mac(peer.mac)
        underlay_text = _format_ip(peer.underlay)
        for dst, row in entries:
            if dst != peer.underlay:
                text = node.node.fdb[row].describe()
                owner = facts.node_by_address.get(dst)
                where = f"{owner}'s address" if owner else "no captured node's address"
                yield _vtep_finding(
                    name, f"{name}: {dev} FDB entry '{text}' for {peer.node}'s VTEP sends to {_format_ip(dst)} "
                    f"({where}), but {peer.underlay_source} is {underlay_text}", text, "fdb", peer.node,
                    f"{peer.underlay_source} {underlay_text}",
                    make_details(entry="fdb", dev=dev, vtep_mac=mac_text, dst=_format_ip(dst),
                                 peer_underlay=underlay_text, peer=peer.node))
        if not entries and neighbour_ok:
            yield _vtep_finding(
                name, f"{name}: {dev} has no FDB entry for {peer.node}'s VTEP MAC {mac_text}, so the neighbour entry "
                f"for {peer.node} leads nowhere", f"no FDB entry for {mac_text} on {dev}", "fdb", peer.node,
                f"{peer.mac_source} MAC {mac_text}",
                make_details(entry="fdb-missing", dev=dev, vtep_mac=mac_text, peer_underlay=underlay_text,
                             peer=peer.node))


def _format_ip(value: int) -> str:
    return format_ip(AF_INET, value)


def _vtep_finding(node: str, summary: str, item: str, part: str, peer: str, expected: str,
                  details: tuple[tuple[str, str], ...] = ()) -> Finding:
    return Finding("vtep-mismatch", Severity.ERROR, (node,), summary,
                   (Evidence(node, part, item), Evidence(peer, "interfaces", expected)), details=details)
