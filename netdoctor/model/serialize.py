"""The versioned JSON form of snapshots: ``load(dump(snapshot)) == snapshot``.

The codec walks the model's records by their type hints, so a field added to
the model is written and read without extra code. Fields equal to their default
are left out of the JSON. Columnar tables use their own packed form, and
iptables rules and chains are kept once per distinct rule or chain
(:mod:`netdoctor.model.rule_pool`).
"""

from __future__ import annotations

import codecs
import enum
import errno
import json
import os
import stat
import sys
import types
import typing
from functools import cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from netdoctor.model.addr import AF_INET, AF_INET6, AddressError, parse_ip, parse_prefix
from netdoctor.model.cluster import ClusterSnapshot
from netdoctor.model.node import BUILTIN_CHAINS, MAX_MTU, Address, IptablesTable, NodeSnapshot
from netdoctor.model.record import RecordSpec, record_spec, replace
from netdoctor.model.record_decoder import Decoder, compile_record_decoder
from netdoctor.model.rule_pool import (
    CHAIN_POOL_KEY,
    POOL_KEY,
    RULESET_FIELDS,
    RulePool,
    RuleReader,
    check_chain_counters,
    has_references,
)
from netdoctor.model.table import SchemaError, Table, gc_paused, number_text

if TYPE_CHECKING:
    from os import PathLike

SNAPSHOT_SCHEMA = "netdoctor.snapshot/3"
#: The tag of snapshots that share iptables rules as reference lists and keep chains in each node.
#: This version reads them too.
RULE_REFERENCES_SCHEMA = "netdoctor.snapshot/2"
#: The tag of snapshots that keep every iptables rule in its node. This version reads them too.
INLINE_RULES_SCHEMA = "netdoctor.snapshot/1"
#: Every schema tag this version reads.
READ_SCHEMAS = (SNAPSHOT_SCHEMA, RULE_REFERENCES_SCHEMA, INLINE_RULES_SCHEMA)


def to_json(value: Any) -> Any:
    """Convert a model object to plain JSON data."""
    if isinstance(value, Table):
        return value.to_json()
    if isinstance(value, enum.Enum):
        return value.name.lower()
    spec = record_spec(type(value))
    if spec is not None:
        data: dict[str, Any] = {}
        defaults = spec.defaults
        for name in spec.names:
            current = getattr(value, name)
            if name in defaults and current == defaults[name]:
                continue
            data[name] = to_json(current)
        return data
    if isinstance(value, tuple):
        return [to_json(item) for item in value]
    return value


def _field_type(kind: type, spec: RecordSpec, name: str) -> Any:
    """Return a record field's type, evaluating its annotation as ``typing.get_type_hints`` would.

    Fields are evaluated one at a time, when a snapshot first contains them:
    ``get_type_hints`` on every model class took a third of the time to load a
    3-node snapshot.
    """
    annotation = spec.annotations[name]
    if not isinstance(annotation, str):
        return annotation
    return _evaluate(kind.__module__, annotation)


@cache
def _evaluate(module: str, annotation: str) -> Any:
    """Evaluate an annotation in its module, once for each text: many fields share ``str | None`` and the like."""
    # The annotation text comes from the class's own source, as it does for get_type_hints.
    return eval(annotation, vars(sys.modules[module]))


def from_json(kind: Any, data: Any, where: str = "$") -> Any:
    """Build a value of type ``kind`` from JSON data; ``where`` is the JSON path for errors."""
    decoder = _decoder(kind)
    try:
        return decoder(data, None)
    except SchemaError:
        # Decoding again with paths names the bad field; valid input never pays for the paths.
        return decoder(data, where)


@cache
def _decoder(kind: Any) -> Decoder:
    """Return the decoder of one type, built once from its type hints.

    Reading the hints once per type, not once per value, is what makes loading a
    snapshot of thousands of nodes cost little more than parsing its JSON.
    """
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        return _union_decoder(kind)
    if origin is tuple:
        return _tuple_decoder(kind)
    if isinstance(kind, type) and issubclass(kind, Table):
        table = kind
        return lambda data, where: table.from_json(data, where or "$")
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _enum_decoder(kind)
    spec = record_spec(kind) if isinstance(kind, type) else None
    if spec is not None:
        return _record_decoder(kind, spec)
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind is Any:
        return lambda data, where: data

    def unreadable(data: Any, where: str | None) -> Any:
        raise SchemaError(f"{where}: cannot read values of type {kind!r}")

    return unreadable


def _union_decoder(kind: Any) -> Decoder:
    options = typing.get_args(kind)
    optional = type(None) in options
    chosen = next((option for option in options if option is not type(None)), None)
    inner = _decoder(chosen) if chosen is not None else None

    def decode(data: Any, where: str | None) -> Any:
        if data is None and optional:
            return None
        if inner is None:
            raise SchemaError(f"{where}: cannot read values of type {kind!r}")
        return inner(data, where)

    return decode


def _tuple_decoder(kind: Any) -> Decoder:
    args = typing.get_args(kind)
    if len(args) == 2 and args[1] is Ellipsis:
        item_decoder = _decoder(args[0])

        def decode_items(data: Any, where: str | None) -> Any:
            if not isinstance(data, list):
                raise SchemaError(f"{where}: expected a list")
            if where is None:
                return tuple([item_decoder(item, None) for item in data])
            return tuple([item_decoder(item, f"{where}[{i}]") for i, item in enumerate(data)])

        return decode_items
    decoders = [_decoder(arg) for arg in args]

    def decode_fixed(data: Any, where: str | None) -> Any:
        if not isinstance(data, list):
            raise SchemaError(f"{where}: expected a list")
        if len(decoders) != len(data):
            raise SchemaError(f"{where}: expected {len(decoders)} items")
        return tuple([
            decoder(item, None if where is None else f"{where}[{i}]")
            for i, (decoder, item) in enumerate(zip(decoders, data))
        ])

    return decode_fixed


def _enum_decoder(kind: type[enum.Enum]) -> Decoder:
    def decode(data: Any, where: str | None) -> Any:
        try:
            return kind[str(data).upper()]
        except KeyError:
            raise SchemaError(f"{where}: invalid value {data!r}") from None

    return decode


#: How many values of a record class the generic decoder reads before the class's own decoder is
#: compiled. Compiling IptablesRule's decoder (24 fields) took as long as decoding about 130 of its
#: records generically (CPython 3.11, 2 vCPUs), so a snapshot with few records of a class skips it.
COMPILE_DECODER_AFTER = 64


def _record_decoder(kind: type, spec: RecordSpec) -> Decoder:
    """Return the decoder of a record class: generic at first, compiled once it has read many values.

    Decoding with a JSON path always takes the generic decoder, which names the bad field.
    """
    generic = _generic_record_decoder(kind, spec)
    compiled: Decoder | None = None
    calls = 0

    def decode(data: Any, where: str | None) -> Any:
        nonlocal compiled, calls
        if compiled is None:
            calls += 1
            if where is not None or calls <= COMPILE_DECODER_AFTER:
                return generic(data, where)
            compiled = _compiled_decoder(kind)
        return compiled(data, where)

    return decode


#: Record classes whose decoder is being compiled, so that a class that contains itself stops the recursion.
_compiling: set[type] = set()


@cache
def _compiled_decoder(kind: type) -> Decoder:
    """Compile the decoder of a record class, and those of the record classes its fields contain."""
    spec = record_spec(kind)
    assert spec is not None
    _compiling.add(kind)
    try:
        field_types = {name: _field_type(kind, spec, name) for name in spec.names}
        return compile_record_decoder(kind, spec, field_types, _fast_decoder, _generic_record_decoder(kind, spec))
    finally:
        _compiling.discard(kind)


def _fast_decoder(kind: Any) -> Decoder:
    """Return the compiled decoder of a record class, and the usual decoder of any other type."""
    if isinstance(kind, type) and kind not in _compiling and record_spec(kind) is not None:
        return _compiled_decoder(kind)
    return _decoder(kind)


def _generic_record_decoder(kind: type, spec: RecordSpec) -> Decoder:
    names = frozenset(spec.names)
    required = [name for name in spec.names if name not in spec.defaults and name not in spec.factories]
    # Decoders are looked up on first use, so that a type may refer to itself.
    decoders: dict[str, Decoder] = {}

    def field_decoder(name: str) -> Decoder:
        decoder = decoders.get(name)
        if decoder is None:
            decoder = decoders[name] = _decoder(_field_type(kind, spec, name))
        return decoder

    def decode(data: Any, where: str | None) -> Any:
        if not isinstance(data, dict):
            raise SchemaError(f"{where}: expected an object")
        if not names.issuperset(data):
            unknown = set(data) - names
            raise SchemaError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        missing = [name for name in required if name not in data]
        if missing:
            raise SchemaError(f"{where}: missing required field(s) {', '.join(missing)}")
        if where is None:
            values = {name: field_decoder(name)(item, None) for name, item in data.items()}
        else:
            values = {name: field_decoder(name)(item, f"{where}.{name}") for name, item in data.items()}
        try:
            return kind(**values)
        except (TypeError, ValueError) as error:  # a missing field, or a check in __post_init__
            raise SchemaError(f"{where}: {error}") from None

    return decode


def _decode_bool(data: Any, where: str | None) -> bool:
    if not isinstance(data, bool):
        raise SchemaError(f"{where}: expected true or false")
    return data


def _decode_int(data: Any, where: str | None) -> int:
    if not isinstance(data, int) or isinstance(data, bool):
        raise SchemaError(f"{where}: expected an integer")
    return data


def _decode_str(data: Any, where: str | None) -> str:
    if not isinstance(data, str):
        raise SchemaError(f"{where}: expected a string")
    return data


_SCALARS: dict[Any, Decoder] = {bool: _decode_bool, int: _decode_int, str: _decode_str}


_NODE_FIELDS = record_spec(NodeSnapshot).names  # type: ignore[union-attr]


def dump_snapshot(snapshot: ClusterSnapshot) -> dict[str, Any]:
    """Return the JSON data of a snapshot: its schema tag, its nodes, the rules and chains they share, then the rest."""
    pool = RulePool()
    data: dict[str, Any] = {"schema": SNAPSHOT_SCHEMA}
    if snapshot.nodes:
        data["nodes"] = [_node_json(node, pool) for node in snapshot.nodes]
    if pool.bodies:
        data[POOL_KEY] = pool.bodies
    if pool.chains:
        data[CHAIN_POOL_KEY] = pool.chains
    data.update(to_json(replace(snapshot, nodes=())))
    return data


def _node_json(node: NodeSnapshot, pool: RulePool) -> dict[str, Any]:
    """Return a node's JSON as :func:`to_json` does, with references to ``pool`` in place of iptables rules."""
    data = to_json(replace(node, **dict.fromkeys(RULESET_FIELDS)))
    if all(getattr(node, name) is None for name in RULESET_FIELDS):
        return data
    # The fields keep the model's order, as to_json writes them.
    ordered: dict[str, Any] = {}
    for name in _NODE_FIELDS:
        ruleset = getattr(node, name) if name in RULESET_FIELDS else None
        if ruleset is not None:
            ordered[name] = pool.ruleset_json(ruleset, to_json)
        elif name in data:
            ordered[name] = data[name]
    return ordered


def dumps_snapshot(snapshot: ClusterSnapshot) -> str:
    """Return a snapshot as JSON text."""
    return json.dumps(dump_snapshot(snapshot), separators=(",", ":"))


def write_snapshot(snapshot: ClusterSnapshot, stream: typing.TextIO) -> None:
    """Write a snapshot as the same JSON text as :func:`dumps_snapshot`, one node at a time.

    Only one node's JSON is in memory at once, besides the distinct iptables
    rules and chains, which matters for clusters of thousands of nodes.
    """
    if not snapshot.nodes:
        stream.write(dumps_snapshot(snapshot))
        return
    # The fields after the node list and the shared rules and chains, as dumps_snapshot writes them.
    opening = f'{{"schema":{json.dumps(SNAPSHOT_SCHEMA)}'
    rest = json.dumps(dump_snapshot(replace(snapshot, nodes=())), separators=(",", ":"))[len(opening):]
    stream.write(opening + ',"nodes":[')
    pool = RulePool()
    for index, node in enumerate(snapshot.nodes):
        if index:
            stream.write(",")
        stream.write(json.dumps(_node_json(node, pool), separators=(",", ":")))
    stream.write("]")
    if pool.bodies:
        stream.write(f',"{POOL_KEY}":' + json.dumps(pool.bodies, separators=(",", ":")))
    if pool.chains:
        stream.write(f',"{CHAIN_POOL_KEY}":' + json.dumps(pool.chains, separators=(",", ":")))
    stream.write(rest)


def load_snapshot(data: Any, where: str = "snapshot", *, consume: bool = False) -> ClusterSnapshot:
    """Build a snapshot from JSON data; raise :class:`SchemaError` naming the bad field.

    With ``consume``, each node's JSON is dropped from ``data`` once the node is
    built, so a large snapshot is not held twice in memory.
    """
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: expected a JSON object")
    if "schema" not in data:
        raise SchemaError(
            f"{where}: the 'schema' key is missing; a snapshot starts with "
            f"{{\"schema\": \"{SNAPSHOT_SCHEMA}\", ...}} (write one with netdoctor collect -o FILE)"
        )
    schema = data.get("schema")
    if schema not in READ_SCHEMAS:
        raise SchemaError(
            f"{where}: schema {schema!r} is not supported; this netdoctor reads "
            f"{', '.join(map(repr, READ_SCHEMAS[:-1]))} and {READ_SCHEMAS[-1]!r}. Collect the snapshot again with "
            "this version (netdoctor collect -o FILE)."
        )
    for key, needs in ((POOL_KEY, RULE_REFERENCES_SCHEMA), (CHAIN_POOL_KEY, SNAPSHOT_SCHEMA)):
        if key in data and READ_SCHEMAS.index(schema) > READ_SCHEMAS.index(needs):
            shared = "rules" if key == POOL_KEY else "chains"
            raise SchemaError(f"$.{key}: unknown field in a {schema} snapshot; shared {shared} need the schema "
                              f"{needs!r} or later, so collect the snapshot again (netdoctor collect -o FILE)")
    body = {key: value for key, value in data.items() if key not in ("schema", "nodes", POOL_KEY, CHAIN_POOL_KEY)}
    items = data.get("nodes", [])
    if not isinstance(items, list):
        raise SchemaError("$.nodes: expected a list")
    # Tables whose chains and rules passed _check_rule_chains; nodes with equal tables share both tuples.
    checked: dict[tuple[Any, ...], frozenset[str] | None] = {}
    # A null list of shared chains is an error, not a file without them.
    chains = data.get(CHAIN_POOL_KEY, []) if schema == SNAPSHOT_SCHEMA else None
    if schema == SNAPSHOT_SCHEMA and chains is None:
        raise SchemaError(f"$.{CHAIN_POOL_KEY}: expected a list")
    # A schema without shared rules has no pool: its rules are objects, which the reader reads too.
    rules = RuleReader(data.get(POOL_KEY, []), from_json, chains)
    nodes = []
    for index in range(len(items)):
        path = f"$.nodes[{index}]"
        try:
            item, held_rules = rules.hold(items[index], path)
            node = from_json(NodeSnapshot, item, path)
            if held_rules:
                node = rules.restore(node, held_rules, path)
        except SchemaError as error:
            raise SchemaError(f"{error}{_schema_hint(schema, items[index])}") from None
        if schema != SNAPSHOT_SCHEMA:
            _check_chain_objects(node, path)
        _check_node(node, path, checked)
        for name in ("routes", "neighbours", "fdb"):
            table = getattr(node, name)
            if table is not None:
                table.locate(f"{path}.{name}")
        nodes.append(node)
        if consume:
            items[index] = None
    names = [node.name for node in nodes]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise SchemaError(f"$.nodes: duplicate node name(s) {', '.join(map(repr, repeated))}")
    snapshot: ClusterSnapshot = from_json(ClusterSnapshot, body, "$")
    for number, kube_node in enumerate(snapshot.kube_nodes or ()):
        for position, cidr in enumerate(kube_node.pod_cidrs):
            _check_ip_text(cidr, f"$.kube_nodes[{number}].pod_cidrs[{position}]", parse_prefix)
        for position, address in enumerate(kube_node.internal_ips):
            _check_ip_text(address, f"$.kube_nodes[{number}].internal_ips[{position}]", parse_ip)
    return replace(snapshot, nodes=tuple(nodes))


def _schema_hint(schema: str, item: Any) -> str:
    """Return a hint for an error in a node that uses a form of rules or chains its schema predates, else ""."""
    if schema == INLINE_RULES_SCHEMA and has_references(item):
        return (f" (references to shared rules need the schema {RULE_REFERENCES_SCHEMA!r} or later, and shared "
                f"chains {SNAPSHOT_SCHEMA!r}, not {INLINE_RULES_SCHEMA!r})")
    if schema == RULE_REFERENCES_SCHEMA and has_references(item, shared_chains=True):
        return f" (chain positions and rules objects need the schema {SNAPSHOT_SCHEMA!r}, not {RULE_REFERENCES_SCHEMA!r})"
    return ""


def _check_chain_objects(node: NodeSnapshot, path: str) -> None:
    """Check the counters of the chains that a node of an older schema declares as objects in its tables."""
    for name in RULESET_FIELDS:
        ruleset = getattr(node, name)
        for number, table in enumerate(ruleset.tables if ruleset is not None else ()):
            for position, declared in enumerate(table.chains):
                check_chain_counters(declared, f"{path}.{name}.tables[{number}].chains[{position}]")


def _check_node(node: NodeSnapshot, where: str, checked: dict[tuple[Any, ...], frozenset[str] | None]) -> None:
    """Reject values the type hints allow but no collector writes: names that would garble
    a report, impossible MTUs, addresses that do not parse and rules for undeclared chains.
    """
    name = node.name
    # split() splits at the characters str.isspace() accepts, so a name without them splits into itself.
    if not name or not name.isprintable() or name.split() != [name]:
        raise SchemaError(f"{where}.name: invalid node name {name!r}; a node name is printable text without spaces")
    # Paths are built only when raising, because a large snapshot has several interfaces per node.
    for position, interface in enumerate(node.interfaces or ()):
        if not 0 <= interface.mtu <= MAX_MTU:
            raise SchemaError(f"{where}.interfaces[{position}].mtu: {number_text(interface.mtu)} is out of range "
                              f"(0 to {MAX_MTU})")
        for number, address in enumerate(interface.addresses):
            problem = _address_problem(address)
            if problem is not None:
                raise SchemaError(f"{where}.interfaces[{position}].addresses[{number}]{problem}")
        for part, ends in (("vxlan", interface.vxlan), ("tunnel", interface.tunnel)):
            for end in ("local", "remote"):
                value = getattr(ends, end) if ends is not None else None
                if value is not None and value != "any":
                    _check_ip_text(value, f"{where}.interfaces[{position}].{part}.{end}", parse_ip)
    if node.docker is not None and node.docker.bip:
        _check_ip_text(node.docker.bip, f"{where}.docker.bip", parse_prefix)

    for field in RULESET_FIELDS:
        ruleset = getattr(node, field)
        if ruleset is not None:
            for number, table in enumerate(ruleset.tables):
                # The nodes keep the tuples alive until the snapshot is built, so their ids stay unique.
                key = (table.name, id(table.chains), id(table.rules))
                if key not in checked:
                    _check_rule_chains(table, name, f"{where}.{field}.tables[{number}]", checked)
                    checked[key] = None


_chain_name = attrgetter("name")
_rule_chain = attrgetter("chain")


def _check_rule_chains(table: IptablesTable, node: str, where: str,
                       checked: dict[tuple[Any, ...], frozenset[str] | None]) -> None:
    """Reject a rule whose chain the table neither declares nor has built in, as iptables-restore does.

    The capture parser rejects such a rule too, so only an edited or damaged file has one. kube-proxy
    writes about 4,600 rules per node for 1,000 services, so the chains of one tuple of rules are
    collected once (in ``checked``, by the tuple's id), and each table tests only those.
    """
    if not table.rules:
        return
    key = ("rule chains", id(table.rules))
    used = checked.get(key)
    if used is None:
        used = checked[key] = frozenset(map(_rule_chain, table.rules))
    known = set(map(_chain_name, table.chains))
    known.update(BUILTIN_CHAINS.get(table.name, ()))
    if known.issuperset(used):
        return
    position, rule = next((position, rule) for position, rule in enumerate(table.rules) if rule.chain not in known)
    raise SchemaError(f"{where}.rules: rule {position} (line {rule.line}) is for chain {rule.chain!r}, which table "
                      f"{table.name!r} of node {node!r} does not declare; declare the chain in {where}.chains, or "
                      "remove the rule")


def _address_problem(address: Address) -> str | None:
    """Describe what is wrong with an address, starting with the field's JSON path suffix; None if nothing is."""
    if address.family not in (AF_INET, AF_INET6):
        return f".family: {address.family} is not 4 (IPv4) or 6 (IPv6)"
    try:
        family, _ = parse_ip(address.address)
    except AddressError as error:
        return f".address: {error}"
    if family != address.family:
        return f".address: {address.address!r} is not an IPv{address.family} address"
    bits = 32 if family == AF_INET else 128
    if not 0 <= address.prefixlen <= bits:
        return f".prefixlen: {number_text(address.prefixlen)} is out of range (0 to {bits})"
    for name in ("peer", "broadcast"):
        value = getattr(address, name)
        try:
            if value is not None and parse_ip(value)[0] != family:
                return f".{name}: {value!r} is not an IPv{family} address"
        except AddressError as error:
            return f".{name}: {error}"
    return None


def _check_ip_text(value: str, where: str, parse: Any) -> None:
    """Raise :class:`SchemaError` at ``where`` when ``parse`` (parse_ip or parse_prefix) rejects ``value``."""
    try:
        parse(value)
    except AddressError as error:
        raise SchemaError(f"{where}: {error}") from None


def loads_snapshot(text: str | bytes, where: str = "snapshot") -> ClusterSnapshot:
    """Parse snapshot JSON text."""
    with gc_paused():
        return load_snapshot(_parsed(text, where), where, consume=True)


def _parsed(text: str | bytes, where: str) -> Any:
    """Return the data of JSON text; invalid JSON raises :class:`SchemaError` naming ``where``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SchemaError(_json_error(where, error)) from None
    except RecursionError:
        raise SchemaError(f"{where}: invalid JSON: nested too deeply") from None
    except ValueError as error:  # an integer longer than int() accepts (sys.get_int_max_str_digits)
        raise SchemaError(f"{where}: invalid JSON{_long_number_place(text)}: {_number_error(error)}") from None


def _number_error(error: ValueError) -> str:
    """Return json's error for a number too long to read, without its advice to change an interpreter setting."""
    return str(error).split(";")[0]


def _long_number_place(text: str | bytes) -> str:
    """Return " at line L column C" for the first JSON value that is a number too long for int(), else "".

    json raises that error without a position. The place found is the first
    run of digits at the start of the text or after a ``:``, ``[`` or ``,``.
    A string that contains such a run before the number is taken for it.
    """
    import re

    limit = sys.get_int_max_str_digits()
    if not limit:
        return ""
    pattern = rf"(?:^|[:\[,])[ \t\r\n]*(-?[0-9]{{{limit + 1},}})"
    if isinstance(text, bytes):
        # Columns count characters, as in json's own syntax errors.
        text = text.decode("utf-8", "replace")
    found = re.search(pattern, text)
    if found is None:
        return ""
    at = found.start(1)
    line = text.count("\n", 0, at) + 1
    column = at - text.rfind("\n", 0, at)
    return f" at line {line} column {column}"


def _json_error(where: str, error: json.JSONDecodeError) -> str:
    # json's messages name the position separately ("Unterminated string starting at").
    message = error.msg.removesuffix(" at")
    if message.startswith("Unexpected UTF-8 BOM"):
        # read_text takes one byte order mark off, so in a file this is a second one. json's advice names a codec.
        message = "a byte order mark where the JSON should start; remove it"
    return f"{where}: invalid JSON at line {error.lineno} column {error.colno}: {message}"


def read_snapshot(path: str | PathLike[str]) -> ClusterSnapshot:
    """Read a snapshot file; the file's text is released before the nodes are built.

    Raises OSError when the file cannot be read and :class:`SchemaError` when it
    is not a valid snapshot.
    """
    # The decoder creates no reference cycles, so collections during a large load would free nothing.
    with gc_paused():
        # The text is an argument of _parsed only, so it is freed once parsed.
        data = _parsed(read_text(path), str(path))
        return load_snapshot(data, str(path), consume=True)


def read_text(path: str | PathLike[str]) -> str:
    """Return a file's UTF-8 text, without the byte order mark that some editors write first.

    The file is read as bytes and decoded once: a text stream would also scan
    the text for line endings, which took 0.2 s more for a 1.3 GiB snapshot.
    A memory map would save another 0.6 s there, but a file that shrinks while
    it is mapped (a ``collect -o`` rewriting it) ends the process with SIGBUS.
    Raises OSError when the file cannot be read or is a device, and
    :class:`SchemaError` when it is not UTF-8.
    """
    with open(path, "rb") as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            # A device such as /dev/zero would be read until memory runs out.
            raise OSError(errno.ENODEV, "it is a device, not a file")
        data = stream.read()
    if data[:2] == b"\x1f\x8b":
        raise SchemaError(f"{path}: not UTF-8 text: it looks gzip-compressed, so decompress it first (gunzip)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # The decoder reports positions after the byte order mark.
        position = error.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise SchemaError(f"{path}: not UTF-8 text: {error.reason} at byte {position:,}; save the file as UTF-8") from None
