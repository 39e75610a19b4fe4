"""Collect the kernel's network parameters (``net.*``) of the target's network namespace.

``/proc/sys/net`` shows the namespace of the process that opens it, so the
values are read by a command run on the target (``sysctl``, or ``cat`` when
sysctl is missing) rather than from this process's ``/proc``. A key that the
kernel does not have, such as ``net.bridge.bridge-nf-call-iptables`` while
``br_netfilter`` is not loaded, is left out, which means unknown.
"""

from __future__ import annotations

import logging

from netdoctor.capture import ParseError
from netdoctor.capture.sysctl import parse_sysctl
from netdoctor.collect import Part
from netdoctor.model.node import Provenance, Sysctls
from netdoctor.target import CollectionError, Target

logger = logging.getLogger(__name__)

CHANGES_HOST = False

#: Files read by the ``cat`` fallback when ``sysctl`` is not installed.
FALLBACK_FILES = (
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv4/conf/all/rp_filter",
    "/proc/sys/net/ipv4/conf/default/rp_filter",
    "/proc/sys/net/ipv4/conf/all/forwarding",
    "/proc/sys/net/ipv6/conf/all/forwarding",
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
)


def collect(target: Target) -> Part:
    """Read every ``net.*`` parameter with ``sysctl -a -r '^net\\.'``."""
    part = Part()
    argv = ["sysctl", "-a", "-r", r"^net\."]
    command = " ".join(argv)
    if target.which("sysctl") is None:
        return _collect_with_cat(target, part)
    try:
        result = target.run(argv)
    except CollectionError as error:
        part.gap(target, "sysctls", str(error))
        return part

    # sysctl exits non-zero when some keys are unreadable (stable_secret without
    # root) but still prints every other key, so only empty output is a failure.
    if not result.stdout.strip():
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
        part.gap(
            target,
            "sysctls",
            f"{command} printed nothing (exit status {result.returncode}): {reason}",
        )
        return part
    try:
        sysctls = parse_sysctl(result.stdout, command)
    except ParseError as error:
        part.gap(target, "sysctls", f"cannot parse the output: {error}")
        return part
    part.values["sysctls"] = sysctls
    part.provenance.append(Provenance(source="sysctls", origin=command))
    return part


def _collect_with_cat(target: Target, part: Part) -> Part:
    values: list[tuple[str, str]] = []
    for path in FALLBACK_FILES:
        try:
            result = target.run(["cat", path])
        except CollectionError as error:
            part.gap(target, "sysctls", f"sysctl is not installed and cat failed: {error}")
            return part
        if result.returncode == 0:
            key = path[len("/proc/sys/") :].replace("/", ".")
            values.append((key, result.stdout.strip()))
    if not values:
        part.gap(
            target, "sysctls", "sysctl is not installed and no /proc/sys/net file could be read"
        )
        return part
    part.values["sysctls"] = Sysctls(values=tuple(sorted(values)))
    part.provenance.append(Provenance(source="sysctls", origin="cat /proc/sys/net/..."))
    return part
