"""Parse ``firewall-cmd`` output: ``--list-all-zones``, ``--get-default-zone`` and ``--list-all-policies``.

Each zone or policy is a block: a header line ``name`` or ``name (active)``
(firewalld 0.x also prints ``(default, active)``), then ``key: value`` lines
indented with two spaces. Lists are separated by spaces, except rich rules and,
in firewalld 1.x, forward ports, which follow their key one per line, indented
with a TAB.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from netdoctor.capture import ParseError
from netdoctor.model.node import FirewalldPolicy, FirewalldState, FirewalldZone

logger = logging.getLogger(__name__)

_HEADER = re.compile(r"^(\S+)(?:\s+\(([a-z, ]+)\))?\s*$")
_KEY = re.compile(r"^([a-z][a-z -]*):(?:\s(.*))?$")
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-.]+$")

_LIST_KEYS = {
    "interfaces",
    "sources",
    "services",
    "ports",
    "protocols",
    "forward-ports",
    "source-ports",
    "icmp-blocks",
    "rich rules",
    "ingress-zones",
    "egress-zones",
}
_FLAG_KEYS = {"icmp-block-inversion", "forward", "masquerade"}


@dataclass
class _Block:
    name: str
    line: int
    marks: tuple[str, ...]
    values: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


def parse_firewalld_zones(text: str, source: str) -> tuple[FirewalldZone, ...]:
    """Parse ``firewall-cmd --list-all-zones`` (or ``--list-all`` for one zone), in output order."""
    zones = []
    for block in _read_blocks(text, source):
        zones.append(
            FirewalldZone(
                name=block.name,
                active="active" in block.marks,
                default="default" in block.marks,
                target=_single(block, "target"),
                icmp_block_inversion=_flag(block, "icmp-block-inversion", source),
                interfaces=_list(block, "interfaces"),
                sources=_list(block, "sources"),
                services=_list(block, "services"),
                ports=_list(block, "ports"),
                protocols=_list(block, "protocols"),
                forward=_flag(block, "forward", source),
                masquerade=_flag(block, "masquerade", source),
                forward_ports=_list(block, "forward-ports"),
                source_ports=_list(block, "source-ports"),
                icmp_blocks=_list(block, "icmp-blocks"),
                rich_rules=_list(block, "rich rules"),
            )
        )
    return tuple(zones)


def parse_firewalld_policies(text: str, source: str) -> tuple[FirewalldPolicy, ...]:
    """Parse ``firewall-cmd --list-all-policies``, in output order."""
    policies = []
    for block in _read_blocks(text, source):
        priority_text = _single(block, "priority")
        priority: int | None = None
        if priority_text is not None:
            try:
                priority = int(priority_text)
            except ValueError:
                raise ParseError(
                    source,
                    block.lines["priority"],
                    f"invalid priority {priority_text!r}: expected a whole number",
                ) from None
        policies.append(
            FirewalldPolicy(
                name=block.name,
                active="active" in block.marks,
                priority=priority,
                target=_single(block, "target"),
                ingress_zones=_list(block, "ingress-zones"),
                egress_zones=_list(block, "egress-zones"),
                services=_list(block, "services"),
                ports=_list(block, "ports"),
                protocols=_list(block, "protocols"),
                masquerade=_flag(block, "masquerade", source),
                forward_ports=_list(block, "forward-ports"),
                source_ports=_list(block, "source-ports"),
                icmp_blocks=_list(block, "icmp-blocks"),
                rich_rules=_list(block, "rich rules"),
            )
        )
    return tuple(policies)


def parse_default_zone(text: str, source: str) -> str:
    """Parse ``firewall-cmd --get-default-zone``: a single zone name."""
    names = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not names:
        raise ParseError(source, None, "the output is empty: expected the default zone name")
    number, name = names[0]
    if len(names) > 1 or not _ZONE_NAME.match(name):
        raise ParseError(
            source, number, f"invalid default zone {name[:60]!r}: expected one zone name"
        )
    return name


def parse_firewalld_state(
    zones_text: str,
    zones_source: str,
    default_zone_text: str | None = None,
    default_zone_source: str = "",
    policies_text: str | None = None,
    policies_source: str = "",
) -> FirewalldState:
    """Combine the three ``firewall-cmd`` captures into one :class:`FirewalldState`.

    Without ``--get-default-zone`` output, the zone marked ``(default)`` is the
    default zone, if the firewalld version marks one.
    """
    zones = parse_firewalld_zones(zones_text, zones_source)
    if default_zone_text is not None:
        default_zone: str | None = parse_default_zone(default_zone_text, default_zone_source)
    else:
        default_zone = next((zone.name for zone in zones if zone.default), None)
    policies = (
        parse_firewalld_policies(policies_text, policies_source)
        if policies_text is not None
        else None
    )
    return FirewalldState(zones=zones, default_zone=default_zone, policies=policies)


def _read_blocks(text: str, source: str) -> list[_Block]:
    blocks: list[_Block] = []
    block: _Block | None = None
    key: str | None = None

    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue

        if raw.startswith("\t"):
            if block is None or key is None:
                raise ParseError(
                    source, number, "a TAB-indented entry appears before any 'key:' line"
                )
            block.values[key].append(raw.strip())
            continue

        if raw.startswith(" "):
            if block is None:
                raise ParseError(
                    source,
                    number,
                    f"indented line {raw.strip()[:60]!r} appears before any zone name",
                )
            match = _KEY.match(raw.strip())
            if match is None:
                raise ParseError(
                    source, number, f"invalid line {raw.strip()[:60]!r}: expected '  key: value'"
                )
            key, value = match.group(1), (match.group(2) or "").strip()
            if key in block.values:
                raise ParseError(source, number, f"key {key!r} appears twice in {block.name!r}")
            if key in _LIST_KEYS:
                block.values[key] = value.split()
            else:
                block.values[key] = [value] if value else []
            block.lines[key] = number
            continue

        header = _HEADER.match(raw.strip())
        if header is None or not _ZONE_NAME.match(header.group(1)):
            raise ParseError(
                source,
                number,
                f"invalid header {raw.strip()[:60]!r}: expected 'name' or 'name (active)'",
            )
        marks = tuple(mark.strip() for mark in (header.group(2) or "").split(",") if mark.strip())
        block = _Block(name=header.group(1), line=number, marks=marks)
        blocks.append(block)
        key = None
    return blocks


def _single(block: _Block, key: str) -> str | None:
    values = block.values.get(key)
    return " ".join(values) if values else None


def _list(block: _Block, key: str) -> tuple[str, ...]:
    return tuple(block.values.get(key, ()))


def _flag(block: _Block, key: str, source: str) -> bool | None:
    value = _single(block, key)
    if value is None:
        return None
    if value not in ("yes", "no"):
        raise ParseError(
            source,
            block.lines[key],
            f"invalid {key} value {value!r} in {block.name!r}: expected yes or no",
        )
    return value == "yes"
