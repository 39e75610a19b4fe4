"""Text renderings of snapshot parts for the raw view, close to what the original commands print.

Rendering is pure: it reads a node snapshot and returns lines. It does not import Textual.
"""

from __future__ import annotations

from collections.abc import Callable

from netdoctor.model import NodeSnapshot
from netdoctor.model.node import IptablesRuleset

#: Raw sources in the order the raw view lists them, with the command each one stands for.
RAW_SOURCES: dict[str, str] = {
    "interfaces": "ip -d addr",
    "routes": "ip route show table all",
    "neighbours": "ip neigh",
    "fdb": "bridge fdb",
    "iptables": "iptables-save",
    "ip6tables": "ip6tables-save",
    "sysctls": "sysctl -a",
    "flannel_env": "/run/flannel/subnet.env",
    "docker": "/etc/docker/daemon.json",
    "ovs": "ovs-vsctl show",
    "bgp": "birdc show protocols / vtysh show bgp summary",
    "firewalld": "firewall-cmd --list-all-zones",
    "meta": "collector facts",
}


def available_sources(node: NodeSnapshot) -> list[str]:
    """Return the raw sources that were captured on a node, in :data:`RAW_SOURCES` order."""
    captured = node.parts()
    result = [name for name in RAW_SOURCES if name in captured]
    if node.meta:
        result.append("meta")
    return result


def source_lines(node: NodeSnapshot, source: str) -> list[str]:
    """Return one captured source of a node as text lines; raise ``KeyError`` for an unknown source."""
    renderer = _RENDERERS[source]
    return renderer(node)


def _interfaces(node: NodeSnapshot) -> list[str]:
    lines = []
    for interface in node.interfaces or ():
        flags = ",".join(interface.flags)
        master = f" master {interface.master}" if interface.master else ""
        lines.append(
            f"{interface.index}: {interface.name}: <{flags}> mtu {interface.mtu}{master} state {interface.state}"
        )
        lines.append(f"    kind {interface.kind}" + (f" link/ether {interface.mac}" if interface.mac else ""))
        if interface.vxlan is not None:
            vxlan = interface.vxlan
            lines.append(
                f"    vxlan id {vxlan.vni} local {vxlan.local or '-'} dev {vxlan.dev or '-'} "
                f"dstport {vxlan.port or '-'}" + (" nolearning" if vxlan.learning is False else "")
            )
        if interface.tunnel is not None:
            lines.append(f"    tunnel local {interface.tunnel.local or 'any'} remote {interface.tunnel.remote or 'any'}")
        for address in interface.addresses:
            family = "inet" if address.family == 4 else "inet6"
            lines.append(f"    {family} {address.cidr} scope {address.scope}")
    return lines


def _routes(node: NodeSnapshot) -> list[str]:
    return [route.describe() for route in node.routes or ()]


def _neighbours(node: NodeSnapshot) -> list[str]:
    return [entry.describe() for entry in node.neighbours or ()]


def _fdb(node: NodeSnapshot) -> list[str]:
    return [entry.describe() for entry in node.fdb or ()]


def _ruleset(ruleset: IptablesRuleset | None) -> list[str]:
    """Return a ruleset as ``iptables-save`` prints it, in the form of ``-c`` where the capture has counters."""
    lines = []
    for table in ruleset.tables if ruleset is not None else ():
        lines.append(f"*{table.name}")
        for chain in table.chains:
            counted = f" [{chain.packets}:{chain.bytes}]" if chain.packets is not None else ""
            lines.append(f":{chain.name} {chain.policy or '-'}{counted}")
        for position, rule in enumerate(table.rules):
            # A rule's text starts with its chain's name.
            counters = table.counters(position)
            lines.append(f"-A {rule.text}" if counters is None else f"[{counters[0]}:{counters[1]}] -A {rule.text}")
        lines.append("COMMIT")
    return lines


def _sysctls(node: NodeSnapshot) -> list[str]:
    return [f"{key} = {value}" for key, value in node.sysctls.values] if node.sysctls else []


def _flannel_env(node: NodeSnapshot) -> list[str]:
    return [f"{key}={value}" for key, value in node.flannel_env.values] if node.flannel_env else []


def _docker(node: NodeSnapshot) -> list[str]:
    return node.docker.raw.splitlines() if node.docker else []


def _ovs(node: NodeSnapshot) -> list[str]:
    lines = []
    for bridge in node.ovs or ():
        lines.append(f'Bridge "{bridge.name}"')
        for port in bridge.ports:
            lines.append(f'    Port "{port.name}"')
            for interface in port.interfaces:
                lines.append(f'        Interface "{interface.name}"')
                if interface.type:
                    lines.append(f"            type: {interface.type}")
                if interface.options:
                    options = ", ".join(f"{key}={value}" for key, value in interface.options)
                    lines.append(f"            options: {{{options}}}")
                if interface.error:
                    lines.append(f'            error: "{interface.error}"')
    return lines


def _bgp(node: NodeSnapshot) -> list[str]:
    return [
        f"{session.daemon} {session.name} neighbor {session.neighbor or '-'} {session.state}"
        + (f" since {session.since}" if session.since else "")
        + (f" ({session.info})" if session.info else "")
        for session in node.bgp or ()
    ]


def _firewalld(node: NodeSnapshot) -> list[str]:
    state = node.firewalld
    if state is None:
        return []
    lines = [f"default zone: {state.default_zone or '-'}"]
    for zone in state.zones:
        marks = [mark for mark, present in (("default", zone.default), ("active", zone.active)) if present]
        lines.append(f"{zone.name}" + (f" ({', '.join(marks)})" if marks else ""))
        lines.append(f"  target: {zone.target or 'default'}")
        lines.append(f"  interfaces: {' '.join(zone.interfaces)}")
        lines.append(f"  sources: {' '.join(zone.sources)}")
        lines.append(f"  services: {' '.join(zone.services)}")
        lines.append(f"  ports: {' '.join(zone.ports)}")
        lines.append(f"  masquerade: {'yes' if zone.masquerade else 'no'}")
        lines.extend(f"  rule: {rule}" for rule in zone.rich_rules)
    return lines


def _meta(node: NodeSnapshot) -> list[str]:
    lines = [f"{key}: {value}" for key, value in node.meta]
    lines.extend(f"{item.source} <- {item.origin}" for item in node.provenance)
    return lines


_RENDERERS: dict[str, Callable[[NodeSnapshot], list[str]]] = {
    "interfaces": _interfaces,
    "routes": _routes,
    "neighbours": _neighbours,
    "fdb": _fdb,
    "iptables": lambda node: _ruleset(node.iptables),
    "ip6tables": lambda node: _ruleset(node.ip6tables),
    "sysctls": _sysctls,
    "flannel_env": _flannel_env,
    "docker": _docker,
    "ovs": _ovs,
    "bgp": _bgp,
    "firewalld": _firewalld,
    "meta": _meta,
}
