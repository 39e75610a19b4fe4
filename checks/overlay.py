"""Overlay device checks: the device a node's backend needs is present and up."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from netdoctor.checks.flannel import PUBLIC_IP_ANNOTATION, NodeLeases, flannel_device
from netdoctor.checks.mesh import address_owners, remote_owner, tunnel_remotes
from netdoctor.engine import check
from netdoctor.facts import POD_BRIDGE_NAMES, NodeFacts, cluster_facts
from netdoctor.flannel import DEFAULT_PREFIX, Lease, leases, prefixes
from netdoctor.model import (
    ClusterSnapshot,
    Evidence,
    Finding,
    Interface,
    KubeNode,
    Severity,
    make_details,
)
from netdoctor.model.addr import AF_INET, AddressError, parse_ip

#: OVS interface types whose bridge must be present and up.
_TUNNEL_TYPES = ("gre", "vxlan", "geneve")

#: The device flanneld creates for each backend type in the network config.
FLANNEL_DEVICES = {"udp": "flannel0", "vxlan": "flannel.1"}


def _finding(node: str, summary: str, evidence: list[Evidence], **facts: object) -> Finding:
    return Finding("overlay-interface-missing", Severity.ERROR, (node,), summary, tuple(evidence),
                   details=make_details(**facts))


def _describe(interface: Interface) -> str:
    return f"{interface.name} {interface.kind} state {interface.state} flags {','.join(interface.flags)} mtu {interface.mtu}"


@check("overlay-interface-missing", title="Overlay device missing or down", severity=Severity.ERROR,
       backends=("flannel-udp", "flannel-vxlan", "ovs", "calico"))
def overlay_interface_missing(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """The overlay device a node's backend needs is missing or down.

    What it checks:
        Flannel nodes (subnet.env captured, or a lease in etcd whose PublicIP is
        the node's) need flannel0 for the UDP backend or flannel.1 for VXLAN
        (from the etcd config's Backend.Type, else the node's lease
        BackendType; either one when neither was captured; none for host-gw). Calico nodes need tunl0 when any node
        routes pod blocks through tunl0 (IPIP mode). OVS nodes need the OVS
        bridge that holds the tunnel ports, and when it has no address of its
        own it must be a port of the pod bridge (``br0`` enslaved to docker0),
        unless the node routes peers' pod subnets through it (a routed mesh).
        A node whose OVS has no bridge with tunnel ports while peers hold
        tunnels to its address lost that bridge.
        A device counts as down when it lacks the UP flag. A flannel VXLAN
        device must be bound (``local``) to the node's lease ``PublicIP``
        (else its ``flannel.alpha.coreos.com/public-ip`` annotation) and to an
        address the node holds.
    Why it matters:
        Without the device the node's routes to peer pods have nowhere to go,
        so pods on this node reach no pod on another node. A VXLAN device
        bound to another address sends from a source the peers' FDB entries
        do not name, or cannot send at all once that address is gone (after
        the node's IP changed and flanneld kept the old device).
    Known problems:
        ``cali*`` veths have no IPv4 address by design and are not judged. A
        node where flanneld has not yet written subnet.env is not known to be a
        flannel node.
    Example:
        ``node1: flannel.1 is missing although FLANNEL_SUBNET is 10.244.1.1/24``.
    Fix safety:
        Restarting flanneld or calico-node re-creates the device and is safe;
        ``ip link set DEV up`` is safe.
    """
    facts = cluster_facts(snapshot)
    ipip_routes = _cluster_uses_tunl0(facts.nodes.values())
    node_leases = NodeLeases(_all_leases(snapshot))
    lease_owners = {owner for _, _, owner in facts.flannel_leases}
    kube = {item.name: item for item in snapshot.kube_nodes or ()}
    tunnelled_to, with_ports = _tunnelled_to(snapshot)
    for name, node in sorted(facts.nodes.items()):
        if node.node.interfaces is None:
            continue
        lease = node_leases.find(node)
        # Without the network config, the node's own lease names the backend that flanneld ran.
        lease_backend = lease.backend_type.lower() if lease is not None and lease.backend_type else None
        yield from _flannel(node, facts.flannel_backend or lease_backend, name in lease_owners)
        yield from _vxlan_binding(node, lease, kube.get(name))
        if ipip_routes and (node.calico_blocks or node.workload_rows):
            yield from _device_present(node, "tunl0", "Calico routes pod blocks through tunl0 (IPIP)")
        yield from _ovs(node)
        yield from _ovs_tunnel_bridge_gone(node, tunnelled_to.get(name, []), name in with_ports)


def _tunnelled_to(snapshot: ClusterSnapshot) -> tuple[dict[str, list[str]], set[str]]:
    """Map each node to the peers that hold an OVS tunnel port whose remote_ip is the node's address.

    Also returns the nodes that hold a tunnel port. Each address is parsed
    once, although every peer's ports name it.
    """
    remotes = [(node.name, tunnel_remotes(node)) for node in snapshot.nodes]
    with_ports = {name for name, node_remotes in remotes if node_remotes}
    if not with_ports:
        return {}, with_ports  # without tunnel ports, the addresses of every node need not be read
    owners = address_owners(snapshot)
    owner_of: dict[str, str | None] = {}
    found: dict[str, dict[str, None]] = {}
    for name, node_remotes in remotes:
        for remote in node_remotes:
            owner = remote_owner(remote, owners, owner_of)
            if owner is not None and owner != name:
                # A dict keeps the peers in first-seen order and finds a repeat in constant time.
                found.setdefault(owner, {})[name] = None
    return {owner: list(peers) for owner, peers in found.items()}, with_ports


def _ovs_tunnel_bridge_gone(node: NodeFacts, peers: list[str], has_ports: bool) -> Iterator[Finding]:
    """Report a node whose OVS has no tunnel port although peers send tunnelled traffic to it."""
    if node.node.ovs is None or not peers or has_ports:
        return
    bridges = ", ".join(sorted(bridge.name for bridge in node.node.ovs)) or "none"
    yield _finding(node.name, f"{node.name}: no OVS bridge holds a tunnel port, although {', '.join(sorted(peers))} "
                   f"tunnel to it (OVS bridges: {bridges})",
                   [Evidence(node.name, "ovs", f"bridges: {bridges}")])


def _all_leases(snapshot: ClusterSnapshot) -> tuple[Lease, ...]:
    if snapshot.etcd is None:
        return ()
    found = prefixes(snapshot.etcd)
    return leases(snapshot.etcd, found[0] if found else DEFAULT_PREFIX)


def _vxlan_binding(node: NodeFacts, lease: Lease | None, kube: KubeNode | None) -> Iterator[Finding]:
    """Report a flannel VXLAN device bound to an address other than the node's PublicIP or one it lacks."""
    device = flannel_device(node)
    if device is None or device.vxlan is None or not device.vxlan.local:
        return
    local = device.vxlan.local
    detail = f"{device.name} vxlan id {device.vxlan.vni} local {local}"
    public_ip, source, part = None, "", "etcd"
    if lease is not None and lease.public_ip:
        public_ip, source = lease.public_ip, f"its lease {lease.key} has PublicIP {lease.public_ip}"
    else:
        for key, value in kube.annotations if kube is not None else ():
            if key == PUBLIC_IP_ANNOTATION:
                public_ip, source, part = value, f"its annotation {key} is {value}", "kube_nodes"
    if public_ip is not None and public_ip != local:
        yield _finding(node.name, f"{node.name}: {device.name} is bound to local {local}, but {source}",
                       [Evidence(node.name, "interfaces", detail), Evidence(node.name, part, source)],
                       problem="wrong-local", device=device.name, local=local, expected_local=public_ip)
        return
    try:
        held = parse_ip(local)[1] in node.addresses
    except AddressError:
        return
    if not held:
        yield _finding(node.name, f"{node.name}: {device.name} is bound to local {local}, an address the node "
                       "does not hold", [Evidence(node.name, "interfaces", detail)],
                       problem="local-not-held", device=device.name, local=local)


def _cluster_uses_tunl0(nodes: Iterable[NodeFacts]) -> bool:
    return any(_main_routes_via(node, "tunl0") for node in nodes)


def _main_routes_via(node: NodeFacts, device: str) -> list[int]:
    """Return the rows of the node's IPv4 main-table routes that leave by ``device``.

    The device column is interned, so only the rows with that device's code are
    read, and no route object is built.
    """
    if node.routes is None or device not in node.routes.interned("dev")[0]:
        return []
    return node.routes.rows_on_devices(AF_INET, lambda name: name == device)


def _device_present(node: NodeFacts, device: str, reason: str) -> Iterator[Finding]:
    interface = node.node.interface(device)
    if interface is None:
        yield _finding(node.name, f"{node.name}: {device} is missing although {reason}",
                       [Evidence(node.name, "interfaces", f"no interface {device}")], problem="missing", device=device)
    elif not interface.is_up:
        yield _finding(node.name, f"{node.name}: {device} is down although {reason}",
                       [Evidence(node.name, "interfaces", _describe(interface))], problem="down", device=device)


def _flannel(node: NodeFacts, backend: str | None, has_lease: bool) -> Iterator[Finding]:
    env = node.node.flannel_env
    if env is None and not has_lease:
        return
    reason = f"FLANNEL_SUBNET is {env.subnet}" if env is not None and env.subnet else "the node holds a flannel lease"
    if backend in FLANNEL_DEVICES:
        yield from _device_present(node, FLANNEL_DEVICES[backend], f"{reason} and the backend is {backend}")
        return
    if backend is not None:
        return  # host-gw and other backends need no flannel device
    present = [node.node.interface(device) for device in FLANNEL_DEVICES.values()]
    existing = [interface for interface in present if interface is not None]
    if not existing:
        yield _finding(node.name, f"{node.name}: neither flannel0 nor flannel.1 exists although {reason}",
                       [Evidence(node.name, "interfaces", "no interface flannel0 or flannel.1")],
                       problem="missing", device="flannel.1", candidates="flannel0,flannel.1")
    elif not any(interface.is_up for interface in existing):
        yield from _device_present(node, existing[0].name, reason)


def _ovs(node: NodeFacts) -> Iterator[Finding]:
    for bridge in node.node.ovs or ():
        if not any(iface.type in _TUNNEL_TYPES for port in bridge.ports for iface in port.interfaces):
            continue
        interface = node.node.interface(bridge.name)
        if interface is None or not interface.is_up:
            # The list of a mesh's ports, one per peer, is built only for the finding.
            tunnels = [iface.name for port in bridge.ports for iface in port.interfaces if iface.type in _TUNNEL_TYPES]
            reason = f"OVS bridge {bridge.name} holds the tunnel ports {', '.join(sorted(tunnels))}"
            yield from _device_present(node, bridge.name, reason)
            continue
        if any(address.family == 4 for address in interface.addresses):
            continue
        pod_bridges = [pod.name for pod in node.pod_bridges if pod.name != bridge.name]
        if not pod_bridges:
            pod_bridges = sorted(
                other.name for other in node.node.interfaces or ()
                if other.name in POD_BRIDGE_NAMES and any(address.family == 4 for address in other.addresses)
            )
        if pod_bridges and interface.master not in pod_bridges and not _routes_pods_through(node, bridge.name):
            master = interface.master or "no bridge"
            yield _finding(node.name, f"{node.name}: OVS bridge {bridge.name} is enslaved to {master}, not to the pod "
                           f"bridge {pod_bridges[0]}, so pods cannot reach the tunnels",
                           [Evidence(node.name, "interfaces", _describe(interface))],
                           problem="not-enslaved", device=bridge.name, master=interface.master,
                           pod_bridge=pod_bridges[0])


def _routes_pods_through(node: NodeFacts, device: str) -> bool:
    """Tell whether the node has a route other than the default one that leaves by ``device``.

    Pods then reach the tunnels by routing into the bridge's internal port, so
    the bridge needs no pod bridge as its master.
    """
    if node.routes is None:
        return False
    lengths = node.routes.cells("dst_len")
    return any(lengths[row] > 0 for row in _main_routes_via(node, device))
