"""The versioned JSON form of snapshots: ``load(dump(snapshot)) == snapshot``.

The codec walks the frozen dataclasses by their type hints, so a field added to
the model is written and read without extra code. Fields equal to their default
are left out of the JSON. Columnar tables use their own packed form.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from functools import cache
from typing import Any

from netdoctor.model.cluster import ClusterSnapshot
from netdoctor.model.table import SchemaError, Table

SNAPSHOT_SCHEMA = "netdoctor.snapshot/1"


def to_json(value: Any) -> Any:
    """Convert a model object to plain JSON data."""
    if isinstance(value, Table):
        return value.to_json()
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data: dict[str, Any] = {}
        for item in dataclasses.fields(value):
            current = getattr(value, item.name)
            if item.default is not dataclasses.MISSING and current == item.default:
                continue
            data[item.name] = to_json(current)
        return data
    if isinstance(value, tuple):
        return [to_json(item) for item in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(kind: Any, data: Any, where: str = "$") -> Any:
    """Build a value of type ``kind`` from JSON data; ``where`` is the JSON path for errors."""
    origin = typing.get_origin(kind)

    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                return from_json(option, data, where)

    if origin is tuple:
        if not isinstance(data, list):
            raise SchemaError(f"{where}: expected a list")
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], item, f"{where}[{i}]") for i, item in enumerate(data))
        if len(args) != len(data):
            raise SchemaError(f"{where}: expected {len(args)} items")
        return tuple(from_json(arg, item, f"{where}[{i}]") for i, (arg, item) in enumerate(zip(args, data)))

    if isinstance(kind, type) and issubclass(kind, Table):
        return kind.from_json(data, where)

    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind[str(data).upper()]
        except KeyError:
            raise SchemaError(f"{where}: invalid value {data!r}") from None

    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise SchemaError(f"{where}: expected an object")
        hints = _hints(kind)
        names = {item.name for item in dataclasses.fields(kind)}
        unknown = set(data) - names
        if unknown:
            raise SchemaError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        required = [
            item.name
            for item in dataclasses.fields(kind)
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            raise SchemaError(f"{where}: missing required field(s) {', '.join(missing)}")
        values = {name: from_json(hints[name], item, f"{where}.{name}") for name, item in data.items()}
        try:
            return kind(**values)
        except (TypeError, ValueError) as error:  # a missing field, or a check in __post_init__
            raise SchemaError(f"{where}: {error}") from None

    if kind is bool:
        if not isinstance(data, bool):
            raise SchemaError(f"{where}: expected true or false")
        return data
    if kind is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise SchemaError(f"{where}: expected an integer")
        return data
    if kind is str:
        if not isinstance(data, str):
            raise SchemaError(f"{where}: expected a string")
        return data
    if kind is Any:
        return data
    raise SchemaError(f"{where}: cannot read values of type {kind!r}")


def dump_snapshot(snapshot: ClusterSnapshot) -> dict[str, Any]:
    """Return the JSON data of a snapshot, with its schema tag first."""
    return {"schema": SNAPSHOT_SCHEMA, **to_json(snapshot)}


def dumps_snapshot(snapshot: ClusterSnapshot) -> str:
    """Return a snapshot as JSON text."""
    return json.dumps(dump_snapshot(snapshot), separators=(",", ":"))


def load_snapshot(data: Any, where: str = "snapshot") -> ClusterSnapshot:
    """Build a snapshot from JSON data; raise :class:`SchemaError` naming the bad field."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: expected a JSON object")
    schema = data.get("schema")
    if schema != SNAPSHOT_SCHEMA:
        raise SchemaError(
            f"{where}: schema {schema!r} is not supported; this netdoctor reads {SNAPSHOT_SCHEMA!r}."
            " Collect the snapshot again with this version (netdoctor collect -o FILE)."
        )
    body = {key: value for key, value in data.items() if key != "schema"}
    snapshot: ClusterSnapshot = from_json(ClusterSnapshot, body, "$")
    return snapshot


def loads_snapshot(text: str | bytes, where: str = "snapshot") -> ClusterSnapshot:
    """Parse snapshot JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SchemaError(f"{where}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    return load_snapshot(data, where)
