"""Open vSwitch mesh fixers: add the tunnel port a peer is missing, remove a tunnel to a gone peer or a duplicate."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.facts import cluster_facts
from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.routing import peer_address
from netdoctor.fixers.support import snapshot_node
from netdoctor.model import Finding, NodeSnapshot

#: OVS interface types that make a tunnel port.
TUNNEL_TYPES = ("gre", "vxlan", "geneve")


def _tunnels(node: NodeSnapshot | None) -> list[tuple[str, str, str, str]]:
    """Return ``(bridge, port, type, remote_ip)`` for every tunnel interface of a node."""
    found = []
    for bridge in node.ovs or () if node is not None else ():
        for port in bridge.ports:
            for interface in port.interfaces:
                if interface.type in TUNNEL_TYPES:
                    found.append((bridge.name, port.name, interface.type, dict(interface.options).get("remote_ip", "")))
    return found


def _free_name(kind: str, taken: set[str]) -> str:
    number = 0
    while f"{kind}{number}" in taken:
        number += 1
    taken.add(f"{kind}{number}")
    return f"{kind}{number}"


@fixer("repair-ovs-tunnel-mesh", title="Add missing OVS tunnel ports, remove stray or duplicate ones",
       checks=("tunnel-mesh-incomplete",))
def repair_ovs_tunnel_mesh(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Add one tunnel port with ``options:remote_ip`` per missing peer; delete a stray or duplicate port.

    Adding a port is safe: it opens a path that did not exist. Deleting one is
    disruptive, because any traffic still using it stops; undo adds it back
    with the same type and ``remote_ip``. The bridge and tunnel type come from
    the node's other tunnels, or from the peers' when the node has none.
    """
    name = finding.nodes[0]
    node = snapshot_node(context, name)
    problem = finding.detail("problem")
    if problem == "missing":
        yield from _add_missing(finding, context, name, node)
        return
    bridge, remote = finding.detail("bridge"), finding.detail("remote_ip")
    if problem == "duplicate":
        ports = sorted((finding.detail("tunnels") or "").split(","))[1:]
    else:
        ports = [finding.detail("tunnel") or ""]
    for port in [port for port in ports if port]:
        kind = next((item[2] for item in _tunnels(node) if item[1] == port), finding.detail("type") or "gre")
        params = {"bridge": bridge, "port": port, "type": kind, "remote_ip": remote}
        yield NodeStep(name, Step(
            id=f"ovs-del-{port}", title=f"Remove the OVS tunnel {port} to {remote}", safety=Safety.DISRUPTIVE,
            why=("Another tunnel already goes to the same peer, so packets flood over both."
                 if problem == "duplicate" else f"{remote} is no node of the mesh; the port floods traffic there.")
                + " Deleting a port stops whatever still uses it, so it is applied only after confirmation.",
            fixer="repair-ovs-tunnel-mesh", check=finding.check,
            action=Operation("ovs-del-port", params), inverse=Operation("ovs-add-port", params),
            preconditions=(Condition("ovs-port-present", {"bridge": bridge, "port": port}),),
            done=Condition("ovs-port-absent", {"port": port}), verify=f"ovs-vsctl list-ports {bridge}",
        ))


def _add_missing(finding: Finding, context: FixContext, name: str, node: NodeSnapshot | None) -> Iterator[NodeStep]:
    facts = cluster_facts(context.snapshot)
    own = _tunnels(node)
    template = own[0] if own else next(
        (item for peer in facts.peers(name) for item in _tunnels(snapshot_node(context, peer.name))), None)
    if template is None or name not in facts.nodes:
        return
    bridge, _, kind, _ = template
    if node is None or not any(item.name == bridge for item in node.ovs or ()):
        # The bridge itself is gone; the agent that builds it also programs its OpenFlow rules.
        yield NodeStep(name, _missing_bridge_note(finding, bridge))
        return
    taken = {item[1] for item in own}
    for peer_name in (finding.detail("missing_peers") or "").split(","):
        peer = facts.nodes.get(peer_name)
        reach = peer_address(facts.nodes[name], peer) if peer is not None else None
        if reach is None:
            continue
        port = _free_name(kind, taken)
        params = {"bridge": bridge, "port": port, "type": kind, "remote_ip": reach[0]}
        yield NodeStep(name, Step(
            id=f"ovs-add-{peer_name}", title=f"Add the OVS {kind} tunnel {port} to {peer_name} ({reach[0]})",
            safety=Safety.SAFE, why=f"Without a tunnel to {peer_name}, pods on the two nodes cannot reach each other.",
            fixer="repair-ovs-tunnel-mesh", check=finding.check,
            action=Operation("ovs-add-port", params), inverse=Operation("ovs-del-port", params),
            preconditions=(Condition("ovs-port-absent", {"port": port}),),
            done=Condition("ovs-tunnel-to", {"remote_ip": reach[0]}), verify=f"ovs-vsctl show | grep {reach[0]}",
        ))


def _missing_bridge_note(finding: Finding, bridge: str) -> Step:
    return Step(
        id=f"ovs-bridge-{bridge}", title=f"Restart the OVS agent so that it re-creates {bridge}",
        safety=Safety.DISPLAY_ONLY,
        why=f"The node has no bridge {bridge} for the tunnel ports, and a bare bridge without the agent's OpenFlow "
            "rules carries no pod traffic.",
        fixer="repair-ovs-tunnel-mesh", check=finding.check,
        display=("# restart the agent that owns the OVS bridges (for example the CNI's OVS daemon)",
                 f"# then check: ovs-vsctl list-ports {bridge}"),
    )
