"""Kernel parameter checks."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.engine import check
from netdoctor.model import ClusterSnapshot, Evidence, Finding, Severity


@check("ip-forward-disabled", title="IP forwarding is off", severity=Severity.ERROR, backends=("any",))
def ip_forward_disabled(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """The kernel does not forward IPv4 packets between interfaces.

    What it checks:
        ``net.ipv4.ip_forward`` on every node whose sysctls were captured. A
        node without captured sysctls is not judged.
    Why it matters:
        Every pod network design routes pod traffic through the node: from the
        pod bridge or ``cali*`` veth to the overlay device or the underlay. With
        forwarding off the kernel drops those packets, so the node's pods lose
        all off-node connectivity while the node itself still works. The value
        resets to 0 on reboot unless a sysctl file sets it.
    Known problems:
        A node that runs no pods does not need forwarding and is still
        reported.
    Example:
        ``node2: net.ipv4.ip_forward = 0``.
    Fix safety:
        Setting ``net.ipv4.ip_forward = 1`` is safe; on some kernels writing it
        resets other per-interface settings, and it must also go into
        ``/etc/sysctl.d`` to survive a reboot.
    """
    for node in snapshot.nodes:
        if node.sysctls is None:
            continue
        value = node.sysctls.get("net.ipv4.ip_forward")
        if value is None or value.strip() != "0":
            continue
        yield Finding(
            check="ip-forward-disabled",
            severity=Severity.ERROR,
            nodes=(node.name,),
            summary=f"{node.name}: net.ipv4.ip_forward = 0, so the node does not route pod traffic",
            evidence=(Evidence(node.name, "sysctls", "net.ipv4.ip_forward = 0"),),
        )
