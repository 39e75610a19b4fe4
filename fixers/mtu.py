"""MTU fixers: restore a node's lowered underlay MTU, or lower pod-side and overlay MTUs to what the encapsulation carries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from netdoctor.checks.mtu import node_overlays
from netdoctor.facts import ClusterFacts, NodeFacts, cluster_facts
from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.mesh import TUNNEL_TYPES
from netdoctor.model import Finding, Interface
from netdoctor.model.table import decimal_value


def _limit(node: NodeFacts, peers: list[NodeFacts], usual: int | None = None) -> int | None:
    """Return the largest inner packet every overlay of the node carries, to itself and to its peers.

    With ``usual``, an underlay MTU below it counts as ``usual``, as it will be
    once :func:`restore_underlay_mtu` has raised it.
    """
    underlay = node.underlay_mtu()
    if underlay is None:
        return None
    floor = usual or 0
    limits = [max(underlay[0], floor) - overlay.overhead for overlay in node_overlays(node)]
    names = {overlay.name for overlay in node_overlays(node)}
    for peer in peers:
        peer_underlay = peer.underlay_mtu()
        if peer_underlay is None:
            continue
        limits += [max(peer_underlay[0], floor) - overlay.overhead
                   for overlay in node_overlays(peer) if overlay.name in names]
    return min(limits) if limits else None


def usual_underlay_mtu(facts: ClusterFacts) -> int | None:
    """Return the underlay MTU that more than half of the nodes use, when at least two nodes do."""
    counts = Counter(underlay[0] for node in facts.nodes.values() if (underlay := node.underlay_mtu()) is not None)
    if not counts:
        return None
    mtu, count = counts.most_common(1)[0]
    return mtu if count >= 2 and count * 2 > sum(counts.values()) else None


@fixer("restore-underlay-mtu", title="Raise a node's underlay MTU back to what the other nodes use",
       checks=("mtu-mismatch",))
def restore_underlay_mtu(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Raise the underlay MTU of each node below the MTU most nodes' underlays use.

    One node whose ``eth0`` MTU dropped (a changed DHCP option, a hand-set
    value) makes its own overlay and its peers' overlays too large for it. Raising
    that one link is the smaller change. When the lower MTU is intended, the
    alternative is to lower every pod and overlay MTU in the cluster. While this fixer
    applies, :func:`lower_pod_mtu` plans against the restored MTU. Disruptive:
    the link drops packets in flight, and the network must carry the larger MTU,
    as it does for the other nodes.
    """
    facts = cluster_facts(context.snapshot)
    usual = usual_underlay_mtu(facts)
    if usual is None:
        return
    for node_name, node in sorted(facts.nodes.items()):
        underlay = node.underlay_mtu()
        if underlay is None or underlay[0] >= usual:
            continue
        # An OVS bridge without an mtu_request takes the smallest MTU of its ports, so its physical ports are raised.
        for name in _ovs_system_ports(node, underlay[1]) or [underlay[1]]:
            interface = node.node.interface(name)
            if interface is not None and interface.mtu < usual:
                yield NodeStep(node_name, _raise_step(finding, interface, usual))


def _ovs_system_ports(node: NodeFacts, bridge_name: str) -> list[str]:
    """Return the ports of OVS bridge ``bridge_name`` that are host network devices, not internal or tunnel ports."""
    return [interface.name for bridge in node.node.ovs or () if bridge.name == bridge_name
            for port in bridge.ports for interface in port.interfaces if interface.type in ("", "system")]


def _raise_step(finding: Finding, interface: Interface, usual: int) -> Step:
    return Step(
        id=f"mtu-raise-{interface.name}",
        title=f"Raise the MTU of {interface.name} from {interface.mtu} to {usual}, as on most nodes",
        safety=Safety.DISRUPTIVE,
        why=(f"Most nodes' underlays use MTU {usual}, and the overlay MTUs assume it. Changing an MTU drops packets "
             "in flight on that interface, so it is applied only after confirmation. If the lower MTU is "
             "intended, decline this step: the other steps assume the raised MTU, so the pod and overlay MTUs "
             "of the nodes then need lowering by hand (ip link set DEV mtu N)."),
        fixer="restore-underlay-mtu",
        check=finding.check,
        action=Operation("link-mtu", {"name": interface.name, "mtu": usual}),
        inverse=Operation("link-mtu", {"name": interface.name, "mtu": interface.mtu}),
        preconditions=(Condition("link-mtu-is", {"name": interface.name, "mtu": interface.mtu}),),
        done=Condition("link-mtu-is", {"name": interface.name, "mtu": usual}),
        verify=f"ip link show dev {interface.name}",
    )


def _routed_limit(finding: Finding) -> int | None:
    """Return the smallest underlay MTU that the finding reports routed pod packets crossing, for a node without an overlay.

    Direct routing and BGP carry pod packets unencapsulated, so the limit is the
    smallest underlay MTU among the routing nodes, which the check computed from the same snapshot.
    """
    limit = finding.detail("limit")
    return decimal_value(limit) if limit is not None else None


@fixer("lower-pod-mtu", title="Lower pod and overlay MTUs to what the overlay carries", checks=("mtu-mismatch",))
def lower_pod_mtu(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Set each offending bridge or device's MTU to the overlay's limit; show the pod side.

    Disruptive: an MTU change drops packets in flight on that interface and
    takes effect for new packets only. The host ends of pod veths are not
    lowered: the pod's own end keeps its MTU, and a veth drops a packet larger
    than its peer's MTU without an ICMP error, so lowering only the host end
    would turn "fragmentation needed" into a silent drop. Those veths get a
    display-only step instead: restart the pods once Docker (``--mtu`` or
    daemon.json ``mtu``) or the CNI config carries the new MTU.
    """
    facts = cluster_facts(context.snapshot)
    # A node below the usual underlay MTU gets it back from restore_underlay_mtu, so plan against that.
    usual = usual_underlay_mtu(facts)
    names_by_node: dict[str, list[str]] = {}
    names = [name for name in (finding.detail("interfaces") or finding.detail("overlay") or "").split(",") if name]
    for node_name in finding.nodes:
        names_by_node[node_name] = names
    for node_name, names in sorted(names_by_node.items()):
        node = facts.nodes.get(node_name)
        if node is None:
            continue
        limit = _limit(node, facts.peers(node_name), usual)
        if limit is None and not node_overlays(node):
            limit = _routed_limit(finding)
            if limit is not None and usual is not None:
                limit = max(limit, usual)
        underlay = node.underlay_mtu()
        if limit is None or underlay is None:
            continue
        interfaces = [node.node.interface(name) for name in names if name != underlay[1]]
        offenders = [interface for interface in interfaces if interface is not None and interface.mtu > limit]
        # Plain `ip addr` output has no link kind, so a pod veth there reads as an ethernet bridge
        # port; Calico's cali* veths have no bridge at all.
        pod_veths = [
            interface
            for interface in offenders
            if interface.kind == "veth"
            or interface.name.startswith("cali")
            or (interface.kind == "ethernet" and interface.master is not None)
        ]
        devices = sorted((interface for interface in offenders if interface not in pod_veths), key=lambda item: item.name)
        for interface in devices:
            yield NodeStep(node_name, _lower_step(finding, node, interface, limit))
        yield from _peer_ovs_steps(finding, facts, node, limit)
        # Docker (or the CNI config) must carry the new MTU before the pods are recreated.
        if any(interface.name == "docker0" or interface.master == "docker0" for interface in offenders):
            yield NodeStep(node_name, _docker_mtu_step(finding, node, limit))
        if pod_veths:
            yield NodeStep(node_name, _pod_veth_step(finding, pod_veths, limit))


def _lower_step(finding: Finding, node: NodeFacts, interface: Interface, limit: int) -> Step:
    """Build the step that lowers one device's MTU: through OVS for an OVS internal port, else through netlink."""
    kind = "ovs-mtu-request" if _ovs_internal(node, interface.name) else "link-mtu"
    return Step(
        id=f"mtu-{interface.name}",
        title=f"Lower the MTU of {interface.name} from {interface.mtu} to {limit}",
        safety=Safety.DISRUPTIVE,
        why=f"Packets larger than {limit} bytes do not fit the overlay and are dropped; changing an MTU drops "
            "packets in flight on that interface, so it is applied only after confirmation.",
        fixer="lower-pod-mtu",
        check=finding.check,
        action=Operation(kind, {"name": interface.name, "mtu": limit}),
        inverse=Operation(kind, {"name": interface.name, "mtu": interface.mtu}),
        preconditions=(Condition("link-mtu-is", {"name": interface.name, "mtu": interface.mtu}),),
        done=Condition("link-mtu-is", {"name": interface.name, "mtu": limit}),
        verify=f"ip link show dev {interface.name}",
    )


def _ovs_internal(node: NodeFacts, name: str) -> bool:
    """Tell whether OVS owns the device as an internal port; OVS resets such a port's MTU to its ``mtu_request``."""
    return any(interface.name == name and interface.type == "internal"
               for bridge in node.node.ovs or () for port in bridge.ports for interface in port.interfaces)


def _peer_ovs_steps(finding: Finding, facts: ClusterFacts, node: NodeFacts, limit: int) -> Iterator[NodeStep]:
    """Lower the OVS bridges of peers whose tunnels end on the node, so their packets fit the node's underlay.

    A peer's bridge that is larger than ``limit`` sends encapsulated packets that
    the node's smaller underlay drops without an ICMP error. Once lowered, the
    peer sends "fragmentation needed" back to its pods for such packets instead.
    A bridge that is a port of a Linux bridge (``br0`` in ``docker0``) is left
    alone: frames bridged into it are dropped without an ICMP error, as on a pod veth.
    """
    addresses = {cidr.partition("/")[0] for _, cidr, _ in node.underlay_subnets}
    for peer in facts.peers(node.name):
        for bridge in peer.node.ovs or ():
            tunnels = [interface for port in bridge.ports for interface in port.interfaces
                       if interface.type in TUNNEL_TYPES and interface.option("remote_ip") in addresses]
            device = peer.node.interface(bridge.name)
            if tunnels and device is not None and device.master is None and device.mtu > limit:
                yield NodeStep(peer.name, _lower_step(finding, peer, device, limit))


def _pod_veth_step(finding: Finding, veths: list[Interface], limit: int) -> Step:
    names = ", ".join(interface.name for interface in veths)
    return Step(
        id="pod-veth-mtu",
        title=f"Recreate the pods behind {names} with MTU {limit}",
        safety=Safety.DISPLAY_ONLY,
        why=(
            f"Both ends of a pod's veth need MTU {limit}. Lowering only the host end would make the kernel drop "
            "the pod's larger packets without the ICMP error that lets TCP lower its segment size."
        ),
        fixer="lower-pod-mtu",
        check=finding.check,
        display=(
            "# after Docker or the CNI config carries the new MTU, restart the affected containers or pods,",
            "# for example: docker restart CONTAINER, or kubectl delete pod POD (its controller recreates it)",
        ),
    )


def _docker_mtu_step(finding: Finding, node: NodeFacts, limit: int) -> Step:
    env = node.node.flannel_env
    display = [f'# /etc/docker/daemon.json: set "mtu": {limit}, or start dockerd with --mtu={limit}']
    if env is not None and env.mtu:
        display.append("# with flannel: . /run/flannel/subnet.env && dockerd --bip=${FLANNEL_SUBNET} --mtu=${FLANNEL_MTU}")
    display.append("# then restart Docker (this restarts the node's containers): systemctl restart docker")
    return Step(
        id="docker-mtu",
        title=f"Start Docker with --mtu={limit} so new containers get it",
        safety=Safety.DISPLAY_ONLY,
        why="Docker creates veths with its own MTU; without --mtu new containers come back at 1500.",
        fixer="lower-pod-mtu",
        check=finding.check,
        display=tuple(display),
    )
