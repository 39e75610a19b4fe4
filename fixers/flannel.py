"""Flannel data-plane fixers: the backend a node must run again, and stale VTEP neighbour and FDB entries."""

from __future__ import annotations

import json
from collections.abc import Iterator

from netdoctor.checks.flannel import flannel_device
from netdoctor.facts import NodeFacts, cluster_facts
from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.support import shared_vtep_mac
from netdoctor.flannel import DEFAULT_PREFIX, prefixes
from netdoctor.model import Finding, Interface
from netdoctor.model.addr import AF_INET
from netdoctor.model.table import decimal_value

#: Finding settings as the flannel-backend-mismatch check names them, and their key in ``Backend``.
BACKEND_KEYS = {"backend type": "Type", "VNI": "VNI", "port": "Port"}


@fixer("restore-flannel-backend", title="Run the flannel backend the network config names",
       checks=("flannel-backend-mismatch",))
def restore_flannel_backend(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Show how to bring a node back to the configured backend, or the etcd change that states the majority's.

    Display-only: the change takes a flanneld restart, which rebuilds the
    overlay device and interrupts the node's pod traffic for a few seconds.
    """
    setting, expected = finding.detail("setting"), finding.detail("expected")
    if setting is None:
        return
    display: list[str]
    if finding.detail("expected_from") == "config":
        key = finding.detail("config_key") or f"{DEFAULT_PREFIX}/config"
        display = [
            f"# {key} says {setting} {expected}; this node runs {finding.detail('value')}",
            f"# ETCDCTL_API=3 etcdctl get {key}    # check the config flanneld reads",
            "# remove the old device so flanneld re-creates it: ip link delete flannel.1 (or flannel0)",
            "# systemctl restart flanneld, then systemctl restart docker",
        ]
    elif expected is not None:
        etcd = context.snapshot.etcd
        found = prefixes(etcd) if etcd is not None else ()
        key = f"{found[0] if found else DEFAULT_PREFIX}/config"
        facts = cluster_facts(context.snapshot)
        network = facts.pod_networks[0].text if facts.pod_networks else "<POD NETWORK>"
        backend: dict[str, object] = {"Type": "vxlan"}
        name = BACKEND_KEYS.get(setting, setting)
        number = decimal_value(expected)
        backend[name] = expected if number is None else number
        value = json.dumps({"Network": network, "Backend": backend})
        display = [
            f"# most nodes run {setting} {expected}; this node runs {finding.detail('value')}",
            f"# state it in the network config: ETCDCTL_API=3 etcdctl put {key} '{value}'",
            "# or start flanneld on this node with the same backend flags as the others",
            "# then: systemctl restart flanneld && systemctl restart docker",
        ]
    else:
        display = [f"# the nodes disagree on {setting} ({finding.detail('value')}) and no value is shared by most:",
                   "# write the intended Backend into the network config in etcd, then restart flanneld on each node"]
    for node in finding.nodes:
        yield NodeStep(node, Step(
            id=f"flannel-backend-{setting.replace(' ', '-')}", title=f"Restore flannel's {setting}",
            safety=Safety.DISPLAY_ONLY,
            why="VXLAN packets with another VNI or port are dropped by the receiver, and a UDP-backend node "
                "cannot talk to a VXLAN node; the restart rebuilds the overlay device.",
            fixer="restore-flannel-backend", check=finding.check, display=tuple(display),
            verify="ip -d link show flannel.1",
        ))


@fixer("replace-vtep-entry", title="Replace a stale VTEP neighbour or FDB entry", checks=("vtep-mismatch",))
def replace_vtep_entry(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Point the neighbour entry at the peer's VTEP MAC, or the FDB entry at the peer's underlay address.

    When the peer's own device has the new MAC, the entries that MAC needs come
    with it: the node's FDB entry for it, and the peer's neighbour entries for the
    other VTEPs, which the MAC change removed. Safe: the stale entry already
    sends the traffic nowhere, and the new ones are what flanneld writes from
    the leases. Undo writes the old entry back and removes the added ones.
    """
    node = finding.nodes[0]
    entry, dev, mac = finding.detail("entry"), finding.detail("dev"), finding.detail("vtep_mac")
    if dev is None or mac is None:
        return
    peer = finding.detail("peer") or "the peer"
    if entry in ("neighbour", "fdb", "fdb-missing") and shared_vtep_mac(context, mac):
        # Two VTEPs have this MAC: set-unique-mac gives one of them another, and the next round
        # points the entries at whichever MAC each VTEP has then.
        return
    if entry == "neighbour":
        address, old = finding.detail("address"), finding.detail("lladdr")
        if address is None or old is None:
            return
        params = {"address": address, "lladdr": mac, "dev": dev}
        previous = {"address": address, "lladdr": old, "dev": dev}
        action = {**params, "previous": previous}
        yield NodeStep(node, Step(
            id=f"neigh-{address}", title=f"Point the neighbour entry for {peer}'s VTEP {address} at {mac}",
            safety=Safety.SAFE, why=f"The entry resolves {peer}'s VTEP address to {old}, a MAC no VTEP has.",
            fixer="replace-vtep-entry", check=finding.check,
            action=Operation("neigh-replace", action), inverse=Operation("neigh-replace", previous),
            preconditions=(Condition("link-present", {"name": dev}),),
            done=Condition("neigh-present", params), verify=f"ip neigh show dev {dev} {address}",
        ))
        yield from _follow_new_vtep(finding, context, node, finding.detail("peer"), mac)
        return
    if entry == "neighbour-missing":
        address = finding.detail("address")
        if address is None:
            return
        params = {"address": address, "lladdr": mac, "dev": dev}
        yield NodeStep(node, Step(
            id=f"neigh-{address}", title=f"Add the neighbour entry that resolves {peer}'s VTEP {address} to {mac}",
            safety=Safety.SAFE, why=f"Without it {dev} cannot resolve the next hop of {peer}'s pod subnet.",
            fixer="replace-vtep-entry", check=finding.check,
            action=Operation("neigh-replace", params), inverse=Operation("neigh-del", params),
            preconditions=(Condition("link-present", {"name": dev}),),
            done=Condition("neigh-present", params), verify=f"ip neigh show dev {dev} {address}",
        ))
        return
    remote = finding.detail("peer_underlay")
    if remote is None or "," in remote:
        return
    params = {"mac": mac, "dev": dev, "dst": remote}
    old_dst = finding.detail("dst")
    if entry == "fdb" and old_dst is not None:
        params_with_previous = {**params, "previous": {"mac": mac, "dev": dev, "dst": old_dst}}
        yield NodeStep(node, Step(
            id=f"fdb-{mac}", title=f"Send {peer}'s VTEP MAC {mac} to {remote} instead of {old_dst}",
            safety=Safety.SAFE, why=f"flannel.1 encapsulates {peer}'s traffic to {old_dst}, which is not {peer}.",
            fixer="replace-vtep-entry", check=finding.check,
            action=Operation("fdb-replace", params_with_previous),
            inverse=Operation("fdb-replace", {"mac": mac, "dev": dev, "dst": old_dst}),
            preconditions=(Condition("link-present", {"name": dev}),),
            done=Condition("fdb-present", params), verify=f"bridge fdb show dev {dev} | grep {mac}",
        ))
        return
    yield NodeStep(node, _fdb_append_step(finding, peer, mac, dev, remote))


def _fdb_append_step(finding: Finding, peer: str, mac: str, dev: str, remote: str) -> Step:
    params = {"mac": mac, "dev": dev, "dst": remote}
    return Step(
        id=f"fdb-{mac}", title=f"Add the FDB entry that sends {peer}'s VTEP MAC {mac} to {remote}",
        safety=Safety.SAFE, why=f"Without it {dev} does not know which underlay address to encapsulate to.",
        fixer="replace-vtep-entry", check=finding.check,
        action=Operation("fdb-append", params), inverse=Operation("fdb-del", params),
        preconditions=(Condition("link-present", {"name": dev}),),
        done=Condition("fdb-present", params), verify=f"bridge fdb show dev {dev} | grep {mac}",
    )


def _vtep(facts: NodeFacts) -> tuple[Interface, str, str] | None:
    """Return a node's flannel VXLAN device with its IPv4 overlay address and VTEP MAC, from its own snapshot."""
    device = flannel_device(facts)
    if device is None or not device.mac:
        return None
    address = next((item.address for item in device.addresses if item.family == AF_INET), None)
    return (device, address, device.mac.lower()) if address is not None else None


def _follow_new_vtep(finding: Finding, context: FixContext, node: str, peer: str | None, mac: str) -> Iterator[NodeStep]:
    """Complete the entries that a peer's new VTEP MAC needs, on the node and on the peer itself.

    The node's neighbour entry now names ``mac``, so it also needs an FDB entry
    for ``mac`` towards the peer's underlay address. When ``mac`` is the MAC of
    the peer's own device, the MAC changed on the peer. The kernel flushes every
    neighbour entry of a device whose MAC changes, the permanent ones too, so the
    peer gets its entries for the other VTEPs back. Both come from the snapshot only.
    """
    facts = cluster_facts(context.snapshot)
    owner = facts.nodes.get(peer or "")
    own_side = facts.nodes.get(node)
    found = _vtep(owner) if owner is not None else None
    if owner is None or own_side is None or found is None or found[2] != mac.lower():
        return
    device, _, _ = found
    remote = device.vxlan.local if device.vxlan is not None else None
    dev = finding.detail("dev") or device.name
    entries = own_side.node.fdb
    if remote and entries is not None and not any(
            entry.dev == dev and entry.lladdr.lower() == mac.lower() for entry in entries):
        yield NodeStep(node, _fdb_append_step(finding, owner.name, mac, dev, remote))

    neighbours = owner.node.neighbours
    if neighbours is None:
        return
    for other in facts.peers(owner.name):
        vtep = _vtep(other)
        if vtep is None:
            continue
        _, address, other_mac = vtep
        if any(entry.dev == device.name and entry.address == address and entry.lladdr for entry in neighbours):
            continue
        params = {"address": address, "lladdr": other_mac, "dev": device.name}
        yield NodeStep(owner.name, Step(
            id=f"neigh-{address}", title=f"Add the neighbour entry for {other.name}'s VTEP {address} ({other_mac})",
            safety=Safety.SAFE,
            why=f"{owner.name}'s {device.name} changed its MAC, which removed its neighbour entries. Without the "
                f"entry for {address}, replies to {other.name}'s pods are not sent.",
            fixer="replace-vtep-entry", check=finding.check,
            action=Operation("neigh-replace", params), inverse=Operation("neigh-del", params),
            preconditions=(Condition("link-present", {"name": device.name}),),
            done=Condition("neigh-present", params), verify=f"ip neigh show dev {device.name} {address}",
        ))
