"""Layer-2 checks: MAC addresses that must be unique where nodes meet at layer 2."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.checks.mesh import tunnel_bridges
from netdoctor.engine import check
from netdoctor.facts import cluster_facts, prefix_text
from netdoctor.model import ClusterSnapshot, Evidence, Finding, Interface, Severity, make_details
from netdoctor.model.record import record


@record
class Member:
    """An interface of one node that takes part in a layer-2 segment shared with other nodes."""

    node: str
    interface: Interface
    #: Why it is in the segment: ``VTEP of VXLAN VNI 1 port 8472``, ``OVS bridge br0``, ...
    role: str


def vxlan_segments(snapshot: ClusterSnapshot) -> dict[str, list[Member]]:
    """Group every node's VXLAN devices by VNI and port: the devices of one group are VTEPs of one segment."""
    segments: dict[str, list[Member]] = {}
    for node in snapshot.nodes:
        for interface in node.interfaces or ():
            if interface.kind != "vxlan" and interface.vxlan is None:
                continue
            if interface.vxlan is not None:
                key = f"VXLAN VNI {interface.vxlan.vni}" + (f" port {interface.vxlan.port}" if interface.vxlan.port else "")
            else:
                key = f"VXLAN device {interface.name}"  # plain ``ip addr`` shows no VNI: group by name
            segments.setdefault(key, []).append(Member(node.name, interface, f"VTEP {interface.name}"))
    return segments


def ovs_segment(snapshot: ClusterSnapshot) -> list[Member]:
    """Return the bridges that the OVS tunnel mesh joins at layer 2.

    On a node with OVS tunnel ports, the OVS bridge that holds them and the
    Linux bridge its internal port is enslaved to (``br0`` in docker0) share
    one broadcast domain with the same bridges on every other node.
    """
    members: list[Member] = []
    for node in snapshot.nodes:
        bridges = sorted(tunnel_bridges(node))
        for bridge in bridges:
            interface = node.interface(bridge)
            if interface is None:
                continue
            members.append(Member(node.name, interface, f"OVS bridge {bridge}"))
            master = node.interface(interface.master) if interface.master else None
            if master is not None:
                members.append(Member(node.name, master, f"bridge {master.name} holding {bridge}"))
    return members


def underlay_segments(snapshot: ClusterSnapshot) -> dict[str, list[Member]]:
    """Group the nodes' underlay interfaces by subnet: interfaces with addresses in one subnet share its LAN."""
    segments: dict[str, list[Member]] = {}
    for name, node in sorted(cluster_facts(snapshot).nodes.items()):
        for prefix, cidr, device in node.underlay_subnets:
            interface = node.node.interface(device)
            if interface is None:
                continue
            key = f"the underlay subnet {prefix_text(prefix)}"
            segments.setdefault(key, []).append(Member(name, interface, f"underlay {device} {cidr}"))
    return segments


def _mac_of(member: Member) -> str | None:
    mac = (member.interface.mac or "").lower()
    return mac if mac and mac != "00:00:00:00:00:00" else None


@check("duplicate-mac", title="Two nodes share a MAC on one layer-2 segment", severity=Severity.ERROR,
       backends=("flannel-vxlan", "ovs", "calico", "direct-routing"))
def duplicate_mac(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """Two bridges or VTEPs that meet at layer 2 across nodes have the same MAC address.

    What it checks:
        The layer-2 segments that span nodes: the VTEPs of one VXLAN segment
        (devices with the same VNI and port, such as every node's
        ``flannel.1``; by device name when ``ip addr`` shows no VXLAN
        details), and the bridges an OVS tunnel mesh joins (the OVS bridge
        with the tunnel ports and the Linux bridge it is enslaved to), and the
        underlay interfaces whose addresses lie in one subnet. Within each
        segment every MAC must belong to one node only.
    Why it matters:
        flannel's FDB and neighbour entries map each peer's overlay address to
        its VTEP MAC, so two VTEPs with one MAC send one peer's traffic to the
        other. Across an OVS mesh, bridges with one MAC make the switches
        learn the MAC on the wrong tunnel and traffic to the gateway flaps
        between nodes. Cloned VMs and images with a MAC fixed in the network
        config cause it. Two nodes with one underlay MAC take turns receiving
        each other's traffic as the LAN switches and the peers' ARP caches
        relearn it.
    Known problems:
        Bridges that are only routed between nodes (docker0 under flannel,
        Calico or direct routing) are not compared, because Docker before 1.12
        gave every docker0 the same fixed MAC and that is harmless there. MACs
        of pods behind the bridges are not captured and not compared. Two
        nodes with addresses in one subnet are taken to share its LAN, so
        nodes on separate segments that reuse one subnet and one MAC would be
        reported.
    Example:
        ``flannel.1 on node1 and node2 share MAC 0e:00:00:00:00:01 on VXLAN
        VNI 1 port 8472``.
    Fix safety:
        Setting a new MAC (``ip link set DEV address MAC``) briefly interrupts
        the node's traffic on that segment, and a new VTEP MAC needs flanneld
        restarted so peers learn it.
    """
    segments = vxlan_segments(snapshot)
    segments.update(underlay_segments(snapshot))
    ovs = ovs_segment(snapshot)
    if ovs:
        segments["the OVS tunnel mesh"] = ovs
    for segment, members in sorted(segments.items()):
        by_mac: dict[str, list[Member]] = {}
        for member in members:
            mac = _mac_of(member)
            if mac is not None:
                by_mac.setdefault(mac, []).append(member)
        for mac, sharing in sorted(by_mac.items()):
            nodes = sorted({member.node for member in sharing})
            if len(nodes) < 2:
                continue
            listed = " and ".join(f"{member.interface.name} on {member.node}" for member in _sorted(sharing))
            yield Finding(
                "duplicate-mac", Severity.ERROR, tuple(nodes),
                f"{listed} share MAC {mac} on {segment}",
                tuple(Evidence(member.node, "interfaces", f"{member.interface.name} link/ether {mac} ({member.role})")
                      for member in _sorted(sharing)),
                details=make_details(
                    mac=mac, segment=segment,
                    members=",".join(f"{member.node}/{member.interface.name}" for member in _sorted(sharing)),
                ),
            )


def _sorted(members: list[Member]) -> list[Member]:
    return sorted(members, key=lambda member: (member.node, member.interface.name))

