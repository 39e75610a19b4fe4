"""Parse Open vSwitch configuration: ``ovs-vsctl show`` text and the OVSDB JSON dump.

Both parsers return bridges sorted by name, ports and interfaces sorted by name
and options sorted by key, so that the same OVS state gives equal results
whichever form was captured. ``ovs-vsctl show`` prints ports in hash order,
which is why the order of the text is not kept.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from netdoctor.capture import TOO_MANY_DIGITS, ParseError
from netdoctor.model.node import OvsBridge, OvsInterface, OvsPort

logger = logging.getLogger(__name__)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_RECORD = re.compile(r"^(Bridge|Port|Interface|Manager|Controller)\s+(.+)$")
_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*):(?:\s+(.*))?$")
_OPTION = re.compile(r'\s*([^=,\s]+)=("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)')


@dataclass
class _Interface:
    name: str
    type: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Port:
    name: str
    interfaces: list[_Interface] = field(default_factory=list)


@dataclass
class _Bridge:
    name: str
    datapath_type: str | None = None
    ports: list[_Port] = field(default_factory=list)


def parse_ovs_vsctl_show(text: str, source: str) -> tuple[OvsBridge, ...]:
    """Parse ``ovs-vsctl show``: bridges, their ports and the type, options and error of each interface.

    Manager, controller and other ``key: value`` lines (``tag:``, ``fail_mode:``,
    ``ovs_version:``) are read past.
    """
    bridges: list[_Bridge] = []
    bridge: _Bridge | None = None
    port: _Port | None = None
    interface: _Interface | None = None
    # The kind of record that the following key: value lines describe.
    owner = ""

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or _UUID.match(line):
            continue

        record = _RECORD.match(line)
        if record is not None:
            kind, name = record.group(1), _unquote(record.group(2).strip(), source, number)
            if kind == "Bridge":
                bridge, port, interface = _Bridge(name), None, None
                bridges.append(bridge)
            elif kind == "Port":
                if bridge is None:
                    raise ParseError(source, number, f"Port {name!r} appears before any Bridge")
                port, interface = _Port(name), None
                bridge.ports.append(port)
            elif kind == "Interface":
                if port is None:
                    raise ParseError(source, number, f"Interface {name!r} appears before any Port")
                interface = _Interface(name)
                port.interfaces.append(interface)
            owner = kind
            continue

        pair = _KEY_VALUE.match(line)
        if pair is None:
            raise ParseError(
                source,
                number,
                f"unexpected line {line[:60]!r}: expected 'Bridge', 'Port', 'Interface' or 'key: value'",
            )
        key, value = pair.group(1), (pair.group(2) or "").strip()

        if owner == "Interface" and interface is not None:
            if key == "type":
                interface.type = value
            elif key == "options":
                interface.options = _parse_options(value, source, number)
            elif key == "error":
                interface.error = _unquote(value, source, number)
        elif owner == "Bridge" and bridge is not None and key == "datapath_type":
            bridge.datapath_type = value or None
        if key == "ovs_version":
            owner = ""

    return _freeze(bridges)


def _unquote(text: str, source: str, number: int) -> str:
    if not text.startswith('"'):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ParseError(source, number, f"unbalanced quotes in {text[:60]!r}") from None
    if not isinstance(value, str):
        raise ParseError(source, number, f"expected a quoted name, not {text[:60]!r}")
    return value


def _parse_options(text: str, source: str, number: int) -> list[tuple[str, str]]:
    if not (text.startswith("{") and text.endswith("}")):
        raise ParseError(
            source, number, f"invalid options {text[:60]!r}: expected '{{key=value, ...}}'"
        )
    body = text[1:-1].strip()
    options: list[tuple[str, str]] = []
    position = 0
    while position < len(body):
        match = _OPTION.match(body, position)
        if match is None or match.end() == position:
            raise ParseError(
                source,
                number,
                f"invalid option at {body[position : position + 40]!r}: expected key=value",
            )
        options.append((match.group(1), _unquote(match.group(2).strip(), source, number)))
        position = match.end()
    return options


def parse_ovs_json(text: str, source: str) -> tuple[OvsBridge, ...]:
    """Parse ``ovsdb-client dump --format=json DB Open_vSwitch``: one JSON table per line.

    The Bridge, Port and Interface tables are required; rows are joined through
    their uuid references. When the Open_vSwitch table is present, only the
    bridges it lists are kept, as ``ovs-vsctl show`` does.
    """
    tables = _read_tables(text, source)
    for name in ("Bridge", "Port", "Interface"):
        if name not in tables:
            raise ParseError(
                source,
                None,
                f"the {name} table is missing: capture the whole Open_vSwitch database dump",
            )

    interfaces: dict[str, _Interface] = {}
    for row, line in tables["Interface"]:
        error = _scalar(row.get("error"), source, line)
        interfaces[_uuid(row, source, line)] = _Interface(
            name=_text(row, "name", source, line),
            type=_scalar(row.get("type"), source, line) or "",
            options=_map(row.get("options"), source, line),
            error=error or None,
        )

    ports: dict[str, _Port] = {}
    for row, line in tables["Port"]:
        members = [
            _lookup(interfaces, ref, "Interface", source, line)
            for ref in _refs(row.get("interfaces"), source, line)
        ]
        ports[_uuid(row, source, line)] = _Port(
            name=_text(row, "name", source, line), interfaces=members
        )

    wanted: set[str] | None = None
    if "Open_vSwitch" in tables:
        wanted = set()
        for row, line in tables["Open_vSwitch"]:
            wanted.update(_refs(row.get("bridges"), source, line))

    bridges: list[_Bridge] = []
    for row, line in tables["Bridge"]:
        if wanted is not None and _uuid(row, source, line) not in wanted:
            continue
        members = [
            _lookup(ports, ref, "Port", source, line)
            for ref in _refs(row.get("ports"), source, line)
        ]
        bridges.append(
            _Bridge(
                name=_text(row, "name", source, line),
                datapath_type=_scalar(row.get("datapath_type"), source, line) or None,
                ports=members,
            )
        )
    return _freeze(bridges)


def _read_tables(text: str, source: str) -> dict[str, list[tuple[dict[str, Any], int]]]:
    decoder = json.JSONDecoder()
    tables: dict[str, list[tuple[dict[str, Any], int]]] = {}
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        line = text.count("\n", 0, position) + 1
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise ParseError(
                source, error.lineno, f"invalid JSON: {error.msg} (column {error.colno})"
            ) from None
        except RecursionError:
            raise ParseError(source, line, "invalid JSON: nested too deeply to read") from None
        except ValueError:
            # CPython's default limit on converting decimal text to int raises this while parsing.
            raise ParseError(source, line, TOO_MANY_DIGITS) from None

        if (
            not isinstance(document, dict)
            or not isinstance(document.get("headings"), list)
            or not isinstance(document.get("data"), list)
        ):
            raise ParseError(
                source,
                line,
                "expected an OVSDB table: an object with 'caption', 'headings' and 'data'",
            )
        caption = document.get("caption")
        if not isinstance(caption, str) or not caption.endswith(" table"):
            raise ParseError(source, line, "the table has no caption such as 'Bridge table'")
        headings = document["headings"]
        rows: list[tuple[dict[str, Any], int]] = []
        for data in document["data"]:
            if (
                not isinstance(data, list)
                or len(data) != len(headings)
                or not all(isinstance(name, str) for name in headings)
            ):
                raise ParseError(
                    source, line, f"a row of the {caption} does not match its headings"
                )
            rows.append((dict(zip(headings, data, strict=True)), line))
        tables[caption[: -len(" table")]] = rows
    return tables


def _atoms(value: Any, source: str, line: int) -> list[Any]:
    if isinstance(value, list) and len(value) == 2 and value[0] == "set":
        if not isinstance(value[1], list):
            raise ParseError(source, line, f"invalid OVSDB set {str(value)[:60]}")
        return value[1]
    return [value]


def _scalar(value: Any, source: str, line: int) -> str | None:
    atoms = _atoms(value, source, line)
    if not atoms:
        return None
    if len(atoms) != 1 or not isinstance(atoms[0], str | int | float | bool):
        raise ParseError(source, line, f"expected one OVSDB value, not {str(value)[:60]}")
    return str(atoms[0])


def _text(row: dict[str, Any], column: str, source: str, line: int) -> str:
    value = row.get(column)
    if not isinstance(value, str):
        raise ParseError(source, line, f"column {column!r} is missing or not a string")
    return value


def _uuid(row: dict[str, Any], source: str, line: int) -> str:
    value = row.get("_uuid")
    if not (
        isinstance(value, list)
        and len(value) == 2
        and value[0] == "uuid"
        and isinstance(value[1], str)
    ):
        raise ParseError(
            source, line, "a row has no '_uuid' column: dump the tables with all columns"
        )
    return value[1]


def _refs(value: Any, source: str, line: int) -> list[str]:
    references: list[str] = []
    for atom in _atoms(value, source, line) if value is not None else []:
        if not (
            isinstance(atom, list)
            and len(atom) == 2
            and atom[0] == "uuid"
            and isinstance(atom[1], str)
        ):
            raise ParseError(source, line, f"expected a uuid reference, not {str(atom)[:60]}")
        references.append(atom[1])
    return references


def _map(value: Any, source: str, line: int) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not (
        isinstance(value, list)
        and len(value) == 2
        and value[0] == "map"
        and isinstance(value[1], list)
    ):
        raise ParseError(source, line, f"expected an OVSDB map, not {str(value)[:60]}")
    pairs: list[tuple[str, str]] = []
    for pair in value[1]:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ParseError(source, line, f"invalid map entry {str(pair)[:60]}")
        pairs.append((str(pair[0]), str(pair[1])))
    return pairs


def _lookup(rows: dict[str, Any], reference: str, table: str, source: str, line: int) -> Any:
    if reference not in rows:
        raise ParseError(
            source, line, f"reference to {table} row {reference}, which the dump does not contain"
        )
    return rows[reference]


def _freeze(bridges: list[_Bridge]) -> tuple[OvsBridge, ...]:
    frozen = []
    for bridge in bridges:
        ports = []
        for port in bridge.ports:
            interfaces = tuple(
                sorted(
                    (
                        OvsInterface(
                            name=item.name,
                            type=item.type,
                            options=tuple(sorted(item.options)),
                            error=item.error,
                        )
                        for item in port.interfaces
                    ),
                    key=lambda item: item.name,
                )
            )
            ports.append(OvsPort(name=port.name, interfaces=interfaces))
        ports.sort(key=lambda port: port.name)
        frozen.append(
            OvsBridge(name=bridge.name, ports=tuple(ports), datapath_type=bridge.datapath_type)
        )
    frozen.sort(key=lambda bridge: bridge.name)
    return tuple(frozen)
