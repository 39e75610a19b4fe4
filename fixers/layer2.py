"""Layer-2 fixers: give an interface that shares its MAC on a segment back its own MAC, or a new one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.routing import route_params
from netdoctor.fixers.support import snapshot_node
from netdoctor.model import Finding, NodeSnapshot
from netdoctor.model.routes import NUD_STATES


def local_mac(node: str, interface: str) -> str:
    """Derive a stable locally administered unicast MAC from the node and interface names."""
    digest = bytearray(hashlib.sha256(f"{node}/{interface}".encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFC) | 0x02
    return ":".join(f"{byte:02x}" for byte in digest)


@fixer("set-unique-mac", title="Give the interface a MAC of its own", checks=("duplicate-mac",))
def set_unique_mac(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Give each sharing interface back the MAC that its peers expect, or a new locally administered MAC.

    The peers' permanent neighbour entries on a device of the same name (the
    entries flanneld and OVS agents program) name the MAC each node's address
    should have. An interface whose peers name another MAC, one that no
    interface in the snapshot uses, gets that MAC back. Of the others, the one
    the peers name with the shared MAC (else the first by node name) keeps it,
    and every other one gets a MAC derived from its node and interface names.

    Disruptive: the interface's traffic on that segment stops until peers
    learn the new MAC. An OVS bridge's MAC is set through
    ``other_config:hwaddr``, which ovs-vswitchd would otherwise restore, and the
    change takes the bridge's port down and up, so the routes and permanent
    neighbour entries on it are added back. Then every node's bridge of that
    name flushes the MACs it learned, so none keeps sending the moved MAC down
    the wrong tunnel. A new MAC on a flannel VTEP needs the lease's VtepMAC and
    the peers' entries to follow: ``fix --apply`` re-checks and plans them
    (repair-flannel-lease, replace-vtep-entry), and a display-only step shows
    the flanneld restart that does the same.
    """
    mac = (finding.detail("mac") or "").lower()
    members = [_member(text) for text in (finding.detail("members") or "").split(",") if "/" in text]
    if not mac or len(members) < 2:
        return
    expected = {member: _expected_mac(context, member) for member in members}
    used = _macs_in_use(context)
    chosen: dict[tuple[str, str], str] = {}
    for member, want in expected.items():
        if want is not None and want != mac and want not in used and want not in chosen.values():
            chosen[member] = want
    rest = [member for member in members if member not in chosen]
    keeper = next((member for member in rest if expected[member] == mac), rest[0] if rest else None)
    for member in members:
        if member == keeper:
            continue
        node, interface = member
        new = chosen.get(member) or local_mac(node, interface)
        yield from _mac_steps(finding, context, node, interface, mac, new, restored=member in chosen)
    bridges = sorted({interface for node, interface in members
                      if (node, interface) != keeper and _ovs_bridge(context, node, interface)})
    for bridge in bridges:
        for node in _nodes_with_bridge(context, bridge):
            yield NodeStep(node, _flush_step(finding, bridge))


def _member(text: str) -> tuple[str, str]:
    """Split a ``node/interface`` member of a duplicate-mac finding."""
    node, _, interface = text.partition("/")
    return node, interface


def _mac_steps(finding: Finding, context: FixContext, node: str, interface: str, mac: str, new: str, *,
               restored: bool) -> Iterator[NodeStep]:
    """Yield the MAC change of one interface and the steps that put back what the change removes."""
    ovs = _ovs_bridge(context, node, interface)
    segment = finding.detail("segment") or "the segment"
    reason = ("the MAC its peers' neighbour entries name for this node" if restored
              else "a locally administered MAC derived from the node and interface names")
    if ovs:
        action = Operation("ovs-bridge-hwaddr", {"bridge": interface, "mac": new})
        inverse = Operation("ovs-bridge-hwaddr", {"bridge": interface, "mac": mac})
    else:
        action = Operation("link-address", {"name": interface, "mac": new, "previous": {"name": interface, "mac": mac}})
        inverse = Operation("link-address", {"name": interface, "mac": mac})
    yield NodeStep(node, Step(
        id=f"mac-{interface}", title=f"Give {interface} the MAC {new} instead of the shared {mac}",
        safety=Safety.DISRUPTIVE,
        why=f"{interface} shares MAC {mac} with another node on {segment}, so frames flap between them; {new} is "
            f"{reason}. A MAC change interrupts the interface briefly, so it is applied only after confirmation.",
        fixer="set-unique-mac", check=finding.check, action=action, inverse=inverse,
        preconditions=(Condition("link-mac-is", {"name": interface, "mac": mac}),),
        done=Condition("link-mac-is", {"name": interface, "mac": new}), verify=f"ip link show dev {interface}",
    ))
    snapshot = snapshot_node(context, node)
    if snapshot is not None:
        for step in _restore_steps(finding, snapshot, interface, ovs):
            yield NodeStep(node, step)
    if interface.startswith("flannel.") and not restored:
        yield NodeStep(node, Step(
            id="restart-flanneld-mac", title="Restart flanneld so its lease and the peers use the new VTEP MAC",
            safety=Safety.DISPLAY_ONLY, why="Peers program their FDB and neighbour entries from the lease's VtepMAC.",
            fixer="set-unique-mac", check=finding.check, display=("# systemctl restart flanneld",),
        ))


def _restore_steps(finding: Finding, node: NodeSnapshot, interface: str, ovs: bool) -> Iterator[Step]:
    """Build the steps that add back the permanent neighbour entries and, for an OVS bridge, the routes on it.

    A MAC change flushes every neighbour entry of the device, the permanent
    ones too. OVS also takes its internal port down and up to change the MAC,
    which removes the routes through it. Each step is already done while its
    entry or route survived.
    """
    for entry in node.neighbours or ():
        if entry.dev != interface or not entry.state & NUD_STATES["PERMANENT"] or entry.mac is None:
            continue
        params = {"address": entry.address, "lladdr": entry.mac, "dev": interface}
        yield Step(
            id=f"neigh-{entry.address}", title=f"Add back the neighbour entry {entry.address} -> {entry.mac} on {interface}",
            safety=Safety.SAFE, why=f"The MAC change of {interface} flushes its permanent neighbour entries.",
            fixer="set-unique-mac", check=finding.check,
            action=Operation("neigh-replace", params), inverse=Operation("neigh-del", params),
            preconditions=(Condition("link-present", {"name": interface}),),
            done=Condition("neigh-present", params), verify=f"ip neigh show dev {interface} {entry.address}",
        )
    if not ovs or node.routes is None:
        return
    for route in node.routes.main():
        if route.dev != interface or route.dst_len == 0 or route.protocol == "kernel" or route.type_name != "unicast":
            continue
        params = route_params(route)
        yield Step(
            id=f"route-{route.destination}", title=f"Add back the route {route.describe()}",
            safety=Safety.SAFE, why=f"OVS takes {interface} down and up to change its MAC, which removes the routes "
                                    "through it.",
            fixer="set-unique-mac", check=finding.check,
            action=Operation("route-add", params), inverse=Operation("route-del", params),
            preconditions=(Condition("link-present", {"name": interface}),),
            done=Condition("route-present", params), verify=f"ip route show {route.destination}",
        )


def _flush_step(finding: Finding, bridge: str) -> Step:
    return Step(
        id=f"ovs-fdb-flush-{bridge}", title=f"Flush the MACs that {bridge} learned",
        safety=Safety.SAFE,
        why=f"{bridge} keeps a learned MAC on the port it arrived on for 300 s by default, so frames for the MAC "
            "that moved would still go to the node that gave it up; until the bridge learns again, it floods them.",
        fixer="set-unique-mac", check=finding.check, action=Operation("ovs-fdb-flush", {"bridge": bridge}),
        verify=f"ovs-appctl fdb/show {bridge}",
    )


def _expected_mac(context: FixContext, member: tuple[str, str]) -> str | None:
    """Return the one MAC that other nodes' permanent entries on ``interface`` name for ``node``'s addresses.

    None when no entry names one, or when the entries disagree.
    """
    node, interface = member
    own = snapshot_node(context, node)
    if own is None:
        return None
    addresses = {address.address for item in own.interfaces or () for address in item.addresses}
    named: set[str] = set()
    for other in context.snapshot.nodes:
        if other.name == node:
            continue
        for entry in other.neighbours or ():
            if (entry.dev == interface and entry.state & NUD_STATES["PERMANENT"] and entry.mac is not None
                    and entry.address in addresses):
                named.add(entry.mac.lower())
    return named.pop() if len(named) == 1 else None


def _macs_in_use(context: FixContext) -> set[str]:
    return {item.mac.lower() for node in context.snapshot.nodes for item in node.interfaces or () if item.mac}


def _ovs_bridge(context: FixContext, node: str, interface: str) -> bool:
    """Tell whether ``interface`` is the internal port of an OVS bridge on ``node``."""
    snapshot = snapshot_node(context, node)
    return snapshot is not None and any(bridge.name == interface for bridge in snapshot.ovs or ())


def _nodes_with_bridge(context: FixContext, bridge: str) -> list[str]:
    return sorted(node.name for node in context.snapshot.nodes if any(item.name == bridge for item in node.ovs or ()))
