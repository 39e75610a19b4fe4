"""Kernel parameter fixers."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.model import Finding

#: The file that keeps the setting across reboots, on the node.
SYSCTL_FILE = "/etc/sysctl.d/90-netdoctor-ip-forward.conf"


@fixer("enable-ip-forward", title="Turn IPv4 forwarding on now and at boot", checks=("ip-forward-disabled",))
def enable_ip_forward(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Set ``net.ipv4.ip_forward = 1`` in the node's namespace and persist it in ``/etc/sysctl.d``.

    Safe: forwarding adds a path and cuts none. The file makes the value survive
    a reboot, which is how forwarding is usually lost.
    """
    for node in finding.nodes:
        yield NodeStep(node, Step(
            id="sysctl-ip-forward",
            title="Turn on IPv4 forwarding",
            safety=Safety.SAFE,
            why="With net.ipv4.ip_forward = 0 the kernel drops pod traffic that must cross this node.",
            fixer="enable-ip-forward",
            check=finding.check,
            action=Operation("sysctl", {"key": "net.ipv4.ip_forward", "value": "1"}),
            inverse=Operation("sysctl", {"key": "net.ipv4.ip_forward", "value": "0"}),
            done=Condition("sysctl-is", {"key": "net.ipv4.ip_forward", "value": "1"}),
            verify="sysctl net.ipv4.ip_forward",
        ))
        content = "# Written by netdoctor: pod traffic is routed through this node.\nnet.ipv4.ip_forward = 1\n"
        yield NodeStep(node, Step(
            id="persist-ip-forward",
            title=f"Keep IPv4 forwarding on after a reboot ({SYSCTL_FILE})",
            safety=Safety.SAFE,
            why="The sysctl resets to 0 at boot unless a file under /etc/sysctl.d sets it.",
            fixer="enable-ip-forward",
            check=finding.check,
            action=Operation("file", {"path": SYSCTL_FILE, "content": content}),
            inverse=Operation("file-restore", {"path": SYSCTL_FILE, "content": None}),
            done=Condition("file-is", {"path": SYSCTL_FILE, "content": content}),
            verify=f"cat {SYSCTL_FILE}",
        ))
