"""MTU checks: pod and overlay MTUs against what the overlay carries over the underlay."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.engine import check
from netdoctor.facts import NodeFacts, cluster_facts
from netdoctor.model import ClusterSnapshot, Evidence, Finding, Interface, Severity, make_details
from netdoctor.model.record import record

#: Bytes each encapsulation adds over an IPv4 underlay.
OVERHEAD = {
    "VXLAN": 50,  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
    "Ethernet over GRE": 38,  # outer IPv4 20 + GRE 4 + inner Ethernet 14
    "GRE": 24,  # outer IPv4 20 + GRE 4
    "IPIP": 20,  # outer IPv4 20
    "flannel UDP": 28,  # outer IPv4 20 + UDP 8
    "Geneve": 50,  # outer IPv4 20 + UDP 8 + Geneve 8 without options + inner Ethernet 14
}

_OVS_ENCAPSULATION = {"gre": "Ethernet over GRE", "vxlan": "VXLAN", "geneve": "Geneve"}


@record
class Overlay:
    """One encapsulation a node uses: its device (None for an OVS port without one), kind and overhead."""

    name: str
    encapsulation: str
    device: Interface | None

    @property
    def overhead(self) -> int:
        return OVERHEAD[self.encapsulation]


def node_overlays(node: NodeFacts, ovs_ports: dict[tuple[str, str], Overlay] | None = None) -> list[Overlay]:
    """Return the overlays a node runs; kernel fallback devices (gre0, gretap0, sit0) are not overlays.

    An OVS mesh gives every node a tunnel port per peer, often with the same
    names on every node, so a caller that reads many nodes can pass
    ``ovs_ports`` to share one record per port name and type between them.
    """
    found: list[Overlay] = []
    for interface in node.node.interfaces or ():
        name = interface.name
        if name == "flannel0":
            found.append(Overlay(name, "flannel UDP", interface))
        elif name.startswith("flannel.") or name == "vxlan.calico" or (interface.kind == "vxlan" and interface.is_up):
            found.append(Overlay(name, "VXLAN", interface))
        elif name == "tunl0" and (interface.addresses or "calico" in _backend_hint(node)):
            found.append(Overlay(name, "IPIP", interface))
        elif interface.kind in ("gre", "ipip", "gretap") and name not in ("gre0", "gretap0", "tunl0") and interface.is_up:
            kind = {"gre": "GRE", "ipip": "IPIP", "gretap": "Ethernet over GRE"}[interface.kind]
            found.append(Overlay(name, kind, interface))
    for bridge in node.node.ovs or ():
        for port in bridge.ports:
            for ovs_interface in port.interfaces:
                encapsulation = _OVS_ENCAPSULATION.get(ovs_interface.type)
                if encapsulation is None:
                    continue
                if ovs_ports is None:
                    found.append(Overlay(ovs_interface.name, encapsulation, None))
                    continue
                key = (ovs_interface.name, encapsulation)
                overlay = ovs_ports.get(key)
                if overlay is None:
                    overlay = ovs_ports[key] = Overlay(ovs_interface.name, encapsulation, None)
                found.append(overlay)
    return found


def _backend_hint(node: NodeFacts) -> str:
    return "calico" if node.calico_blocks or node.workload_rows else ""


def _pod_side(node: NodeFacts) -> list[Interface]:
    """Return the interfaces pods send through before the overlay: pod bridges, their ports, cali* veths, OVS bridges."""
    result: dict[str, Interface] = {}
    for bridge in node.pod_bridges:
        interface = node.node.interface(bridge.name)
        if interface is not None:
            result[interface.name] = interface
        for port in node.node.ports_of(bridge.name):
            result[port.name] = port
    for interface in node.node.interfaces or ():
        if interface.name.startswith("cali"):
            result[interface.name] = interface
    underlay = {interface.name for interface in node.underlay}
    for ovs_bridge in node.node.ovs or ():
        interface = node.node.interface(ovs_bridge.name)
        # An uplink bridge such as br-phy has the underlay address, so it carries the encapsulated packets.
        if interface is not None and interface.name not in underlay:
            result[interface.name] = interface
    return sorted(result.values(), key=lambda interface: interface.name)


@check("mtu-mismatch", title="MTU larger than the overlay carries", severity=Severity.ERROR, backends=("any",))
def mtu_mismatch(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """Pod, bridge or overlay MTUs exceed what the encapsulation carries over the underlay.

    What it checks:
        For each overlay a node runs, the largest inner packet is the underlay
        MTU minus the encapsulation overhead: VXLAN 50 bytes, Ethernet over GRE
        38 (OVS gre ports carry Ethernet), GRE 24, IPIP 20, flannel UDP 28. The
        overlay device, the pod bridges and their ports, Calico's ``cali*``
        veths and OVS bridges must not exceed it. Across nodes, an overlay MTU
        above what the smallest peer underlay carries is reported on the nodes
        with the larger setting only, and overlay devices of the same name
        with different MTUs, none of them too large, are a warning. Nodes
        without an overlay (direct routing, BGP) route pod packets unchanged,
        so their pod-side MTUs must fit the smallest underlay MTU of those
        nodes. A pod bridge without ports is not judged.
    Why it matters:
        A pod that sends a full-size packet has it dropped at the overlay, and
        because pods rarely get the ICMP "fragmentation needed" back, TCP
        connections hang after the handshake while small requests work.
    Known problems:
        The underlay is the interface of the default route (or the first
        underlay interface), so a node that tunnels over another interface may
        be judged against the wrong MTU. IPv6 underlays add 20 more bytes, which is
        not counted.
    Example:
        ``node1: docker0 1500, veth62fa8c8 1500 exceed 1450, what flannel.1
        (VXLAN, 50 bytes) carries over eth0 MTU 1500``.
    Fix safety:
        Lowering a bridge or veth MTU is safe but drops packets in flight on
        that interface; changing the underlay MTU is disruptive.
    """
    facts = cluster_facts(snapshot)
    by_overlay: dict[str, list[tuple[NodeFacts, Overlay, int, str]]] = {}
    # Overlay names that some node has a device of: only those are compared across nodes.
    with_device: set[str] = set()
    ovs_ports: dict[tuple[str, str], Overlay] = {}
    routed: list[tuple[NodeFacts, int, str, list[Interface]]] = []
    for name, node in sorted(facts.nodes.items()):
        if node.node.interfaces is None:
            continue
        underlay = node.underlay_mtu()
        if underlay is None:
            continue
        underlay_mtu, underlay_name = underlay
        pod_side = _pod_side(node)
        overlays = node_overlays(node, ovs_ports)
        if not overlays:
            carrying = _carrying_pods(node, pod_side)
            if carrying:
                routed.append((node, underlay_mtu, underlay_name, carrying))
        # Pod-side interfaces above each limit, computed once per limit: an OVS mesh has a port per peer.
        above: dict[int, list[Interface]] = {}
        for overlay in overlays:
            limit = underlay_mtu - overlay.overhead
            by_overlay.setdefault(overlay.name, []).append((node, overlay, underlay_mtu, underlay_name))
            offenders = above.get(limit)
            if offenders is None:
                offenders = above[limit] = [interface for interface in pod_side if interface.mtu > limit]
            if overlay.device is not None:
                with_device.add(overlay.name)
                if overlay.device.mtu > limit:
                    offenders = [overlay.device, *offenders]
            if not offenders:
                continue
            listed = ", ".join(f"{interface.name} {interface.mtu}" for interface in offenders)
            verb = "exceeds" if len(offenders) == 1 else "exceed"
            yield Finding(
                check="mtu-mismatch",
                severity=Severity.ERROR,
                nodes=(name,),
                summary=f"{name}: {listed} {verb} {limit}, what {overlay.name} ({overlay.encapsulation}, "
                f"{overlay.overhead} bytes) carries over {underlay_name} MTU {underlay_mtu}",
                evidence=tuple(Evidence(name, "interfaces", f"{interface.name} mtu {interface.mtu}")
                               for interface in offenders + [_find(node, underlay_name)]),
                details=make_details(interfaces=",".join(interface.name for interface in offenders), limit=limit,
                                     overlay=overlay.name, underlay=underlay_name, underlay_mtu=underlay_mtu),
            )
    yield from _across_nodes({name: members for name, members in by_overlay.items() if name in with_device})
    yield from _routed_nodes(routed)


def _carrying_pods(node: NodeFacts, pod_side: list[Interface]) -> list[Interface]:
    """Return the pod-side interfaces that carry pod traffic; a pod bridge without ports carries none."""
    empty = {bridge.name for bridge in node.pod_bridges if not node.node.ports_of(bridge.name)}
    return [interface for interface in pod_side if interface.name not in empty]


def _routed_nodes(routed: list[tuple[NodeFacts, int, str, list[Interface]]]) -> Iterator[Finding]:
    """Compare the pod MTUs of nodes that route pod packets onto the underlay unchanged (no encapsulation).

    A pod packet crosses the sender's underlay and the receiver's, so every
    pod-side MTU must fit the smallest underlay MTU among these nodes.
    """
    if not routed:
        return
    small_node, small_mtu, small_device, _ = min(routed, key=lambda member: (member[1], member[0].name))
    for node, underlay_mtu, underlay_name, carrying in routed:
        offenders = [interface for interface in carrying if interface.mtu > small_mtu]
        if not offenders:
            continue
        listed = ", ".join(f"{interface.name} {interface.mtu}" for interface in offenders)
        verb = "exceeds" if len(offenders) == 1 else "exceed"
        where = f"its own {underlay_name}" if node is small_node else f"{small_node.name}'s {small_device}"
        yield Finding(
            check="mtu-mismatch",
            severity=Severity.ERROR,
            nodes=(node.name,),
            summary=f"{node.name}: {listed} {verb} MTU {small_mtu} of {where}, which routed pod packets cross "
            "without encapsulation",
            evidence=tuple(Evidence(node.name, "interfaces", f"{interface.name} mtu {interface.mtu}")
                           for interface in offenders) + (Evidence(small_node.name, "interfaces",
                                                                   f"{small_device} mtu {small_mtu}"),),
            details=make_details(interfaces=",".join(interface.name for interface in offenders), limit=small_mtu,
                                 underlay=small_device, underlay_mtu=small_mtu, limited_by=small_node.name),
        )


def _find(node: NodeFacts, name: str) -> Interface:
    interface = node.node.interface(name)
    assert interface is not None
    return interface


def _across_nodes(by_overlay: dict[str, list[tuple[NodeFacts, Overlay, int, str]]]) -> Iterator[Finding]:
    for overlay_name, members in sorted(by_overlay.items()):
        if len(members) < 2:
            continue
        smallest = min(members, key=lambda member: (member[2], member[0].name))
        small_node, small_overlay, small_mtu, small_device = smallest
        limit = small_mtu - small_overlay.overhead
        exceeded = False
        for node, overlay, underlay_mtu, _ in members:
            if overlay.device is None or node is small_node:
                continue
            # A device above its own limit is already reported against the node's own underlay.
            if overlay.device.mtu > underlay_mtu - overlay.overhead or overlay.device.mtu <= limit:
                continue
            exceeded = True
            # Only the node whose setting is too large is reported: the smallest peer is correct.
            yield Finding(
                check="mtu-mismatch",
                severity=Severity.ERROR,
                nodes=(node.name,),
                summary=f"{node.name}: {overlay_name} MTU {overlay.device.mtu} exceeds {limit}, what "
                f"{overlay.encapsulation} carries over {small_node.name}'s {small_device} MTU {small_mtu}",
                evidence=(Evidence(node.name, "interfaces", f"{overlay_name} mtu {overlay.device.mtu}"),
                          Evidence(small_node.name, "interfaces", f"{small_device} mtu {small_mtu}")),
                details=make_details(interfaces=overlay.device.name, limit=limit, overlay=overlay_name,
                                     underlay=small_device, underlay_mtu=small_mtu, limited_by=small_node.name),
            )
        devices = [(member[0].name, member[1].device.mtu) for member in members if member[1].device is not None]
        if len({mtu for _, mtu in devices}) > 1 and not exceeded:
            listed = ", ".join(f"{mtu} on {node}" for node, mtu in sorted(devices))
            yield Finding(
                check="mtu-mismatch",
                severity=Severity.WARNING,
                nodes=tuple(sorted(node for node, _ in devices)),
                summary=f"{overlay_name} MTU differs across nodes: {listed}",
                evidence=tuple(Evidence(node, "interfaces", f"{overlay_name} mtu {mtu}") for node, mtu in sorted(devices)),
                details=make_details(overlay=overlay_name),
            )
