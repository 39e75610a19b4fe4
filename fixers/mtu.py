"""MTU fixers: lower pod-side and overlay MTUs to what the encapsulation carries."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.checks.mtu import node_overlays
from netdoctor.facts import NodeFacts, cluster_facts
from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.model import Finding


def _limit(node: NodeFacts, peers: list[NodeFacts]) -> int | None:
    """Return the largest inner packet every overlay of the node carries, to itself and to its peers."""
    underlay = node.underlay_mtu()
    if underlay is None:
        return None
    limits = [underlay[0] - overlay.overhead for overlay in node_overlays(node)]
    names = {overlay.name for overlay in node_overlays(node)}
    for peer in peers:
        peer_underlay = peer.underlay_mtu()
        if peer_underlay is None:
            continue
        limits += [peer_underlay[0] - overlay.overhead for overlay in node_overlays(peer) if overlay.name in names]
    return min(limits) if limits else None


def _routed_limit(finding: Finding) -> int | None:
    """Return the smallest underlay MTU that the finding reports routed pod packets crossing, for a node without an overlay.

    Direct routing and BGP carry pod packets unencapsulated, so the limit is the
    smallest underlay MTU among the routing nodes, which the check computed from the same snapshot.
    """
    limit = finding.detail("limit")
    return int(limit) if limit is not None and limit.isdigit() else None


@fixer("lower-pod-mtu", title="Lower pod and overlay MTUs to what the overlay carries", checks=("mtu-mismatch",))
def lower_pod_mtu(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Set each offending interface's MTU to the overlay's limit, veths before their bridge.

    Disruptive: an MTU change drops packets in flight on that interface and
    takes effect for new packets only. The Docker ``--mtu`` (or daemon.json
    ``mtu``) that keeps it across restarts is shown as a display-only step,
    because it needs a Docker restart.
    """
    facts = cluster_facts(context.snapshot)
    names_by_node: dict[str, list[str]] = {}
    names = [name for name in (finding.detail("interfaces") or finding.detail("overlay") or "").split(",") if name]
    for node_name in finding.nodes:
        names_by_node[node_name] = names
    for node_name, names in sorted(names_by_node.items()):
        node = facts.nodes.get(node_name)
        if node is None:
            continue
        limit = _limit(node, facts.peers(node_name))
        if limit is None and not node_overlays(node):
            limit = _routed_limit(finding)
        underlay = node.underlay_mtu()
        if limit is None or underlay is None:
            continue
        interfaces = [node.node.interface(name) for name in names if name != underlay[1]]
        offenders = [interface for interface in interfaces if interface is not None and interface.mtu > limit]
        # Ports first: a bridge's MTU follows its smallest port, so lowering the ports first avoids a bounce.
        offenders.sort(key=lambda interface: (interface.kind == "bridge" or interface.master is None, interface.name))
        for interface in offenders:
            yield NodeStep(node_name, Step(
                id=f"mtu-{interface.name}",
                title=f"Lower the MTU of {interface.name} from {interface.mtu} to {limit}",
                safety=Safety.DISRUPTIVE,
                why=f"Packets larger than {limit} bytes do not fit the overlay and are dropped; changing an MTU drops "
                    "packets in flight on that interface, so it is applied only after confirmation.",
                fixer="lower-pod-mtu",
                check=finding.check,
                action=Operation("link-mtu", {"name": interface.name, "mtu": limit}),
                inverse=Operation("link-mtu", {"name": interface.name, "mtu": interface.mtu}),
                preconditions=(Condition("link-mtu-is", {"name": interface.name, "mtu": interface.mtu}),),
                done=Condition("link-mtu-is", {"name": interface.name, "mtu": limit}),
                verify=f"ip link show dev {interface.name}",
            ))
        if any(interface.name == "docker0" or interface.master == "docker0" for interface in offenders):
            yield NodeStep(node_name, _docker_mtu_step(finding, node, limit))


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
