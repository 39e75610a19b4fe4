"""Collect the firewalld configuration: from ``firewall-cmd`` when firewalld runs, else from its XML files.

``firewall-cmd`` talks to firewalld over the system D-Bus; a firewalld on a
private bus is reached by setting ``DBUS_SYSTEM_BUS_ADDRESS``, which the
commands inherit. When ``firewall-cmd --state`` does not print ``running``,
the permanent configuration is read instead: each zone, policy and service
file under ``<root>/etc/firewalld`` replaces the file of the same name under
``<root>/usr/lib/firewalld``, and ``firewalld.conf`` names the default zone.
The XML is read only for a target whose root is a directory for the node (a
lab node or a copied node image), never for ``/``. On a live host the files of
a firewalld that does not run filter nothing, so reading them would report
blocks that do not exist. A node without firewalld is not a gap.

Service definitions of the services the zones and policies name are read from
the same folders in both cases, so that the evaluation resolves their ports.
"""

from __future__ import annotations

import logging
from pathlib import Path
from xml.etree import ElementTree

from netdoctor.capture import ParseError
from netdoctor.capture.firewalld import parse_firewalld_state
from netdoctor.collect import Part
from netdoctor.model.node import (
    FirewalldPolicy,
    FirewalldService,
    FirewalldState,
    FirewalldZone,
    Provenance,
)
from netdoctor.model.table import decimal_value
from netdoctor.target import CollectionError, Target

logger = logging.getLogger(__name__)

CHANGES_HOST = False

#: Configuration folders, later ones overriding earlier ones.
CONFIG_DIRS = ("/usr/lib/firewalld", "/etc/firewalld")

#: Maximum depth of ``<include service=...>`` chains.
_MAX_INCLUDE_DEPTH = 8


def collect(target: Target) -> Part:
    """Read firewalld's runtime state if it runs, else its permanent XML configuration."""
    part = Part()
    installed = [directory for directory in CONFIG_DIRS if target.path(directory).is_dir()]
    offline_root = target.root.resolve() != Path("/")
    if target.which("firewall-cmd") is not None and _running(target):
        state = _collect_running(target, part)
        origin = "firewall-cmd"
    elif installed and offline_root:
        try:
            state = _read_xml(target)
        except (ElementTree.ParseError, OSError) as error:
            part.gap(target, "firewalld", f"cannot read the firewalld XML configuration: {error}")
            return part
        origin = " over ".join(str(target.path(directory)) for directory in reversed(installed))
    else:
        logger.debug("%s: firewalld is not running and no node root with its files was given", target.name)
        return part
    if state is None:
        return part
    services = _read_services(target, _service_names(state))
    part.values["firewalld"] = FirewalldState(state.zones, state.default_zone, state.policies, services)
    part.provenance.append(Provenance(source="firewalld", origin=origin))
    return part


def _running(target: Target) -> bool:
    try:
        result = target.run(["firewall-cmd", "--state"], timeout=10)
    except CollectionError as error:
        logger.info("%s: firewall-cmd --state failed: %s", target.name, error)
        return False
    return result.returncode == 0 and result.stdout.strip() == "running"


def _collect_running(target: Target, part: Part) -> FirewalldState | None:
    outputs: dict[str, str | None] = {}
    for option in ("--list-all-zones", "--get-default-zone", "--list-all-policies"):
        try:
            result = target.run(["firewall-cmd", option])
        except CollectionError as error:
            part.gap(target, "firewalld", f"firewall-cmd {option} failed: {error}")
            return None
        if result.returncode != 0:
            if option == "--list-all-policies":
                # firewalld older than 0.9 has no policies and rejects the option.
                outputs[option] = None
                continue
            part.gap(target, "firewalld", f"firewall-cmd {option} exited with status {result.returncode}: "
                     f"{result.stderr.strip()[:200]}")
            return None
        outputs[option] = result.stdout
    try:
        return parse_firewalld_state(
            outputs["--list-all-zones"] or "", "firewall-cmd --list-all-zones",
            outputs["--get-default-zone"], "firewall-cmd --get-default-zone",
            outputs["--list-all-policies"], "firewall-cmd --list-all-policies",
        )
    except ParseError as error:
        part.gap(target, "firewalld", f"cannot parse the output: {error}")
        return None


def _config_files(target: Target, kind: str) -> dict[str, Path]:
    """Return ``name -> file`` of one kind (``zones``, ``policies``, ``services``), /etc overriding /usr/lib."""
    files: dict[str, Path] = {}
    for directory in CONFIG_DIRS:
        folder = target.path(f"{directory}/{kind}")
        if folder.is_dir():
            for path in sorted(folder.glob("*.xml")):
                files[path.stem] = path
    return files


def _default_zone(target: Target) -> str | None:
    for directory in reversed(CONFIG_DIRS):
        text = target.read_file(f"{directory}/firewalld.conf")
        if text is None:
            continue
        for line in text.splitlines():
            key, _, value = line.strip().partition("=")
            if key == "DefaultZone" and value:
                return value.strip()
    return None


def _read_xml(target: Target) -> FirewalldState:
    default_zone = _default_zone(target)
    zones = []
    for name, path in sorted(_config_files(target, "zones").items()):
        zones.append(_zone_from_xml(name, ElementTree.parse(path).getroot(), name == default_zone))
    policies = [
        _policy_from_xml(name, ElementTree.parse(path).getroot())
        for name, path in sorted(_config_files(target, "policies").items())
    ]
    return FirewalldState(tuple(zones), default_zone, tuple(policies))


def _names(root: ElementTree.Element, tag: str, attribute: str = "name") -> tuple[str, ...]:
    return tuple(element.get(attribute, "") for element in root.findall(tag))


def _ports(root: ElementTree.Element, tag: str) -> tuple[str, ...]:
    return tuple(f"{element.get('port')}/{element.get('protocol')}" for element in root.findall(tag))


def _zone_from_xml(name: str, root: ElementTree.Element, default: bool) -> FirewalldZone:
    interfaces = _names(root, "interface")
    sources = tuple(
        element.get("address") or f"ipset:{element.get('ipset', '')}" for element in root.findall("source")
    )
    return FirewalldZone(
        name=name,
        active=bool(interfaces or sources),
        default=default,
        target=root.get("target", "default"),
        icmp_block_inversion=root.find("icmp-block-inversion") is not None,
        interfaces=interfaces,
        sources=sources,
        services=_names(root, "service"),
        ports=_ports(root, "port"),
        protocols=_names(root, "protocol", "value"),
        forward=root.find("forward") is not None,
        masquerade=root.find("masquerade") is not None,
        source_ports=_ports(root, "source-port"),
        icmp_blocks=_names(root, "icmp-block"),
        rich_rules=tuple(rich_rule_text(rule) for rule in root.findall("rule")),
    )


def _policy_from_xml(name: str, root: ElementTree.Element) -> FirewalldPolicy:
    priority_text = root.get("priority") or ""
    priority = decimal_value(priority_text.removeprefix("-"))
    if priority is None:
        priority = -1
    elif priority_text.startswith("-"):
        priority = -priority
    return FirewalldPolicy(
        name=name,
        priority=priority,
        target=root.get("target", "CONTINUE"),
        ingress_zones=_names(root, "ingress-zone"),
        egress_zones=_names(root, "egress-zone"),
        services=_names(root, "service"),
        ports=_ports(root, "port"),
        protocols=_names(root, "protocol", "value"),
        masquerade=root.find("masquerade") is not None,
        source_ports=_ports(root, "source-port"),
        icmp_blocks=_names(root, "icmp-block"),
        rich_rules=tuple(rich_rule_text(rule) for rule in root.findall("rule")),
    )


def rich_rule_text(rule: ElementTree.Element) -> str:
    """Render a ``<rule>`` element as ``firewall-cmd`` prints the rich rule."""
    parts = ["rule"]
    for attribute in ("family", "priority"):
        if rule.get(attribute) is not None:
            parts.append(f'{attribute}="{rule.get(attribute)}"')
    for child in rule:
        tag = child.tag
        attributes = [f'{key}="{value}"' for key, value in child.attrib.items() if key != "invert"]
        if tag in ("source", "destination"):
            negation = ["NOT"] if child.get("invert") in ("true", "yes", "1") else []
            parts += [tag, *negation, *attributes]
        elif tag == "reject":
            parts += ["reject", *attributes]
        else:
            parts += [tag, *attributes]
    return " ".join(parts)


def _service_names(state: FirewalldState) -> set[str]:
    names = {service for zone in state.zones for service in zone.services}
    names |= {service for policy in state.policies or () for service in policy.services}
    return names


def _read_services(target: Target, names: set[str]) -> tuple[FirewalldService, ...]:
    files = _config_files(target, "services")
    services = []
    for name in sorted(names):
        resolved = _resolve_service(files, name, 0)
        if resolved is not None:
            services.append(resolved)
    return tuple(services)


def _resolve_service(files: dict[str, Path], name: str, depth: int) -> FirewalldService | None:
    path = files.get(name)
    if path is None or depth > _MAX_INCLUDE_DEPTH:
        return None
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        logger.warning("cannot read firewalld service %s: %s", path, error)
        return None
    ports, protocols, source_ports = list(_ports(root, "port")), list(_names(root, "protocol", "value")), list(
        _ports(root, "source-port"))
    for included in _names(root, "include", "service"):
        inner = _resolve_service(files, included, depth + 1)
        if inner is not None:
            ports += inner.ports
            protocols += inner.protocols
            source_ports += inner.source_ports
    return FirewalldService(name, tuple(ports), tuple(protocols), tuple(source_ports))
