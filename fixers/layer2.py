"""Layer-2 fixers: give an interface that shares its MAC on a segment a new locally administered MAC."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.model import Finding


def local_mac(node: str, interface: str) -> str:
    """Derive a stable locally administered unicast MAC from the node and interface names."""
    digest = bytearray(hashlib.sha256(f"{node}/{interface}".encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFC) | 0x02
    return ":".join(f"{byte:02x}" for byte in digest)


@fixer("set-unique-mac", title="Give the interface a MAC of its own", checks=("duplicate-mac",))
def set_unique_mac(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Keep the MAC on the first node (by name) and set a new locally administered MAC on every other one.

    Disruptive: the interface's traffic on that segment stops until peers
    learn the new MAC. For a flannel VTEP, the lease's VtepMAC and the peers'
    entries must follow: ``fix --apply`` re-checks and plans them
    (repair-flannel-lease, replace-vtep-entry), and a display-only step shows
    the flanneld restart that does the same.
    """
    mac = finding.detail("mac")
    members = [member.split("/", 1) for member in (finding.detail("members") or "").split(",") if "/" in member]
    if mac is None or len(members) < 2:
        return
    for node, interface in members[1:]:
        new = local_mac(node, interface)
        params = {"name": interface, "mac": new, "previous": {"name": interface, "mac": mac}}
        yield NodeStep(node, Step(
            id=f"mac-{interface}", title=f"Give {interface} the MAC {new} instead of the shared {mac}",
            safety=Safety.DISRUPTIVE,
            why=f"{interface} shares MAC {mac} with another node on {finding.detail('segment') or 'the segment'}, so "
                "frames flap between them; a MAC change interrupts the interface briefly, so it is applied only after "
                "confirmation.",
            fixer="set-unique-mac", check=finding.check,
            action=Operation("link-address", params), inverse=Operation("link-address", {"name": interface, "mac": mac}),
            preconditions=(Condition("link-mac-is", {"name": interface, "mac": mac}),),
            done=Condition("link-mac-is", {"name": interface, "mac": new}), verify=f"ip link show dev {interface}",
        ))
        if interface.startswith("flannel."):
            yield NodeStep(node, Step(
                id="restart-flanneld-mac", title="Restart flanneld so its lease and the peers use the new VTEP MAC",
                safety=Safety.DISPLAY_ONLY, why="Peers program their FDB and neighbour entries from the lease's VtepMAC.",
                fixer="set-unique-mac", check=finding.check, display=("# systemctl restart flanneld",),
            ))
