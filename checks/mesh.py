"""Open vSwitch tunnel mesh checks: every node has exactly one tunnel port to every other node."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.backends import OVS_TUNNEL_TYPES
from netdoctor.engine import check
from netdoctor.log import get_logger
from netdoctor.model import (
    ClusterSnapshot,
    Evidence,
    Finding,
    NodeSnapshot,
    OvsBridge,
    Severity,
    make_details,
)
from netdoctor.model.addr import AF_INET, AddressError, parse_ip
from netdoctor.model.record import record

logger = get_logger(__name__)

#: The maximum number of missing peers a summary names before it counts the rest;
#: the evidence lists all of them.
SUMMARY_PEERS = 10


@record
class TunnelPort:
    """An OVS tunnel interface with its bridge and ``remote_ip`` option."""

    bridge: str
    name: str
    type: str
    remote_ip: str

    def describe(self) -> str:
        """Render the port as ``ovs-vsctl show`` names it, for evidence."""
        return f"bridge {self.bridge} port {self.name} type {self.type} options:remote_ip={self.remote_ip}"


def tunnel_ports(node: NodeSnapshot) -> list[TunnelPort]:
    """Return the node's OVS tunnel ports that name a remote address (``flow`` remotes are skipped)."""
    return [TunnelPort(bridge, name, kind, remote) for bridge, name, kind, remote in _tunnel_interfaces(node)]


def remote_owner(remote: str, owners: dict[int, str], known: dict[str, str | None]) -> str | None:
    """Return the node that has the address ``remote`` (from :func:`address_owners`), or None.

    A mesh names every node's address on every peer, so each text is parsed
    once and its owner kept in ``known``.
    """
    if remote not in known:
        try:
            known[remote] = owners.get(parse_ip(remote)[1])
        except AddressError:
            known[remote] = None
    return known[remote]


def tunnel_remotes(node: NodeSnapshot) -> list[str]:
    """Return the ``remote_ip`` of each port :func:`tunnel_ports` returns, without building a record per port.

    A node of an OVS mesh has a port per peer, so the mesh has N² ports in all.
    """
    return [remote for _, _, _, remote in _tunnel_interfaces(node)]


def tunnel_bridges(node: NodeSnapshot) -> set[str]:
    """Return the names of the bridges that hold a port :func:`tunnel_ports` returns.

    Each bridge is read only up to its first such port.
    """
    return {bridge.name for bridge in node.ovs or () if next(_bridge_tunnels(bridge), None) is not None}


def _tunnel_interfaces(node: NodeSnapshot) -> Iterator[tuple[str, str, str, str]]:
    """Yield the bridge, interface name, type and remote address of each OVS tunnel port with a remote address."""
    for bridge in node.ovs or ():
        yield from _bridge_tunnels(bridge)


def _bridge_tunnels(bridge: OvsBridge) -> Iterator[tuple[str, str, str, str]]:
    for port in bridge.ports:
        for interface in port.interfaces:
            remote = interface.option("remote_ip")
            if interface.type in OVS_TUNNEL_TYPES and remote and remote != "flow":
                yield bridge.name, interface.name, interface.type, remote


def address_owners(snapshot: ClusterSnapshot) -> dict[int, str]:
    """Map every global IPv4 address of every node's non-loopback interfaces to the node.

    OVS moves a node's underlay address onto an internal port (``br-phy``) in
    userspace set-ups, so OVS devices count here, unlike in the shared facts. An
    address that several nodes hold (Docker's default 172.17.0.1) maps to none.
    """
    owners: dict[int, str] = {}
    shared: set[int] = set()
    for node in snapshot.nodes:
        for interface in node.interfaces or ():
            if interface.kind == "loopback":
                continue
            for address in interface.addresses:
                if address.family != AF_INET or address.scope not in ("global", "universe"):
                    continue
                value = parse_ip(address.address)[1]
                if owners.setdefault(value, node.name) != node.name:
                    shared.add(value)
    for value in shared:
        del owners[value]
    return owners


@check("tunnel-mesh-incomplete", title="OVS tunnel mesh missing, duplicate or stray tunnels",
       severity=Severity.ERROR, backends=("ovs",))
def tunnel_mesh_incomplete(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """The OVS tunnel mesh lacks a tunnel between two nodes, has a stray one, or has duplicates.

    What it checks:
        The nodes whose OVS configuration was captured and that have at least
        one OVS bridge form the mesh, when any of them has a tunnel port (gre,
        vxlan, geneve, stt). Each needs one tunnel port whose ``remote_ip`` is
        an address of each other member, N x (N-1) in all. Each node is
        reported for the peers it has no tunnel to, naming those that have a
        tunnel back (an asymmetric mesh). Tunnels to an address that is no
        captured node's or is the node's own, and several tunnels to one peer,
        are reported too.
    Why it matters:
        Pods behind a missing tunnel cannot reach each other, while every
        other pair works, so the fault looks intermittent. A tunnel to a
        stale address sends traffic nowhere, and two tunnels to one peer make
        OVS flood frames twice and can loop them.
    Known problems:
        Nodes that were not captured cannot be told from addresses that are
        no node's, so a partial capture reports their tunnels as stray. A
        flow-based tunnel (``remote_ip=flow``) is not judged. flannel's VXLAN
        device has no per-peer tunnel ports: its missing or wrong FDB entries
        are reported by vtep-mismatch. Cost is O(N^2)
        in the number of mesh nodes at worst, and O(tunnel ports) when the
        mesh is complete.
    Example:
        ``node3: no OVS tunnel to node1 (192.0.2.11), although node1 has one
        to node3``.
    Fix safety:
        Adding the missing port (``ovs-vsctl add-port br0 greN -- set
        interface greN type=gre options:remote_ip=PEER``) is safe; deleting a
        stray or duplicate port drops the traffic that still uses it.
    """
    members = {node.name: node for node in snapshot.nodes if node.ovs}
    # A mesh has a port per pair of nodes, so records are built only for the ports a finding names.
    ports = {name: list(_tunnel_interfaces(node)) for name, node in members.items()}
    if not any(ports.values()):
        return
    owners = address_owners(snapshot)
    peer_addresses = {name: _underlay_text(node, owners) for name, node in members.items()}

    reached: dict[str, set[str]] = {}
    # Every peer's ports name a node's address, so each address is parsed once.
    owner_of: dict[str, str | None] = {}
    for name in sorted(members):
        reached[name], findings = _judge_ports(name, ports[name], owners, owner_of)
        yield from findings

    count = len(members)
    for name in sorted(members):
        have = reached[name]
        if len(have) == count - 1 and have <= members.keys():
            continue
        missing = sorted(set(members) - have - {name})
        if missing:
            yield _missing_finding(name, missing, reached, peer_addresses)


def _underlay_text(node: NodeSnapshot, owners: dict[int, str]) -> str:
    addresses = [
        address.address for interface in node.interfaces or () for address in interface.addresses
        if address.family == AF_INET and owners.get(parse_ip(address.address)[1]) == node.name
        and interface.kind != "bridge" and not interface.name.startswith(("docker", "cni", "flannel", "tunl"))
    ]
    return ", ".join(addresses) if addresses else "no address captured"


def _judge_ports(name: str, ports: list[tuple[str, str, str, str]], owners: dict[int, str],
                 owner_of: dict[str, str | None]) -> tuple[set[str], list[Finding]]:
    """Return the peers a node's tunnels reach, and findings for stray and duplicate tunnels.

    ``ports`` are the fields of :class:`TunnelPort`, as :func:`_tunnel_interfaces` yields them.
    """
    by_peer: dict[str, list[tuple[str, str, str, str]]] = {}
    findings: list[Finding] = []
    for fields in ports:
        owner = remote_owner(fields[3], owners, owner_of)
        if owner is None or owner == name:
            port = TunnelPort(*fields)
            target = "the node's own address" if owner == name else "no captured node's address"
            findings.append(Finding(
                "tunnel-mesh-incomplete", Severity.ERROR, (name,),
                f"{name}: OVS tunnel {port.name} goes to {port.remote_ip}, {target}",
                (Evidence(name, "ovs", port.describe()),),
                details=make_details(problem="own-address" if owner == name else "stray", bridge=port.bridge,
                                     tunnel=port.name, type=port.type, remote_ip=port.remote_ip),
            ))
            continue
        by_peer.setdefault(owner, []).append(fields)
    for peer, peer_fields in sorted(by_peer.items()):
        if len(peer_fields) > 1:
            peer_ports = [TunnelPort(*fields) for fields in peer_fields]
            names = ", ".join(port.name for port in peer_ports)
            findings.append(Finding(
                "tunnel-mesh-incomplete", Severity.ERROR, (name,),
                f"{name}: {len(peer_ports)} OVS tunnels go to {peer}: {names}",
                tuple(Evidence(name, "ovs", port.describe()) for port in peer_ports),
                details=make_details(problem="duplicate", peer=peer, bridge=peer_ports[0].bridge,
                                     tunnels=",".join(port.name for port in peer_ports),
                                     remote_ip=peer_ports[0].remote_ip),
            ))
    return set(by_peer), findings


def _missing_finding(name: str, missing: list[str], reached: dict[str, set[str]],
                     addresses: dict[str, str]) -> Finding:
    one_way = [peer for peer in missing if name in reached.get(peer, set())]
    named = ", ".join(f"{peer} ({addresses[peer]})" for peer in missing[:SUMMARY_PEERS])
    if len(missing) > SUMMARY_PEERS:
        named += f" and {len(missing) - SUMMARY_PEERS} more"
    summary = f"{name}: no OVS tunnel to {named}"
    if len(one_way) == len(missing) == 1:
        summary += f", although {one_way[0]} has one to {name}"
    elif one_way:
        summary += f"; {len(one_way)} of them have a tunnel to {name}"
    evidence = [Evidence(name, "ovs", f"no tunnel port with remote_ip in {peer}'s addresses ({addresses[peer]})")
                for peer in missing]
    evidence += [Evidence(peer, "ovs", f"{peer} has a tunnel to {name}") for peer in one_way]
    return Finding("tunnel-mesh-incomplete", Severity.ERROR, (name,), summary, tuple(evidence),
                   details=make_details(problem="missing", missing_peers=",".join(missing)))
