"""Kernel parameter fixers."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.support import sysctl_steps
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


@fixer("loosen-rp-filter", title="Set loose reverse-path filtering on the interface", checks=("rp-filter-strict",))
def loosen_rp_filter(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Set ``net.ipv4.conf.IFACE.rp_filter = 2`` (loose) now and in a file under ``/etc/sysctl.d``.

    Safe: the kernel uses the larger of the ``all`` and per-interface values,
    so 2 on the interface turns strict mode off there whatever ``all`` says,
    and loose mode still drops packets from sources with no route at all.
    """
    interface, key = finding.detail("interface"), finding.detail("sysctl")
    if interface is None or key is None:
        return
    for node in finding.nodes:
        for step in sysctl_steps(
            finding, fixer_id="loosen-rp-filter", key=key, value="2", previous=finding.detail("value") or "1",
            file=f"/etc/sysctl.d/90-netdoctor-rp-filter-{interface}.conf",
            reason=f"traffic arriving on {interface} is routed back by another interface.",
            title=f"Set loose reverse-path filtering on {interface}",
            why=f"Strict rp_filter on {interface} drops packets whose route back leaves by "
                f"{finding.detail('route_dev') or 'another interface'}.",
        ):
            yield NodeStep(node, step)


@fixer("enable-bridge-nf", title="Send bridged pod traffic through iptables", checks=("bridge-nf-disabled",))
def enable_bridge_nf(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Set ``net.bridge.bridge-nf-call-iptables = 1`` now and at boot; loading ``br_netfilter`` is shown, not run.

    Safe for pod traffic: bridged packets then meet kube-proxy's and the
    network policy chains. Loading a kernel module is display-only because
    netdoctor does not load modules on a node.
    """
    key = finding.detail("sysctl") or "net.bridge.bridge-nf-call-iptables"
    for node in finding.nodes:
        yield NodeStep(node, Step(
            id="modprobe-br-netfilter", title="Load br_netfilter now and at boot", safety=Safety.DISPLAY_ONLY,
            why="The net.bridge sysctls exist only while br_netfilter is loaded.",
            fixer="enable-bridge-nf", check=finding.check,
            display=("# modprobe br_netfilter",
                     "# echo br_netfilter > /etc/modules-load.d/br_netfilter.conf"),
        ))
        for step in sysctl_steps(
            finding, fixer_id="enable-bridge-nf", key=key, value="1", previous=finding.detail("value") or "0",
            file="/etc/sysctl.d/90-netdoctor-bridge-nf.conf",
            reason="pods on a bridge depend on iptables.",
            title="Send bridged traffic through iptables",
            why=f"Pods on {finding.detail('bridges') or 'the pod bridge'} depend on iptables chain "
                f"{finding.detail('chain') or 'KUBE-SERVICES'}, which bridged traffic skips while the key is 0.",
        ):
            yield NodeStep(node, step)
