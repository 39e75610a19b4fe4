"""Compile a decoder function for one record class from its fields' types.

The generic decoder in :mod:`netdoctor.model.serialize` calls one decoder per
field through a dict lookup and builds each record with ``kind(**values)``.
On a 1,000-node snapshot of about 40,000 records, that cost more than parsing
the JSON. The compiled function reads each field with ``data.get``, tests
``str``, ``int`` and ``bool`` fields inline and sets the record's slots itself.

A compiled decoder returns the same values as the generic one. When a value is
not what the fast path expects (a missing or unknown field, a wrong type, a
``__post_init__`` that raises), it returns the generic decoder's result, which
raises :class:`~netdoctor.model.table.SchemaError` for invalid input. The generic
decoder also accepts what the exact type tests leave to it, such as a ``str``
subclass. A call with a JSON path always takes the generic decoder.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

from netdoctor.model.record import RecordSpec

#: A decoder takes the JSON data and its JSON path (None to skip building paths), and returns the model value.
Decoder = Callable[[Any, "str | None"], Any]

_SCALARS = (str, int, bool)

#: The value of ``data.get`` for a field the JSON object leaves out.
_ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "ABSENT"})()


def compile_record_decoder(
    kind: type,
    spec: RecordSpec,
    field_types: dict[str, Any],
    decoder_of: Callable[[Any], Decoder],
    generic: Decoder,
) -> Decoder:
    """Return a decoder for records of ``kind`` that returns what ``generic`` returns.

    ``field_types`` maps each field to its evaluated type, and ``decoder_of``
    returns the decoder of a type.
    """
    namespace: dict[str, Any] = {
        "_kind": kind,
        "_generic": generic,
        "_names": frozenset(spec.names),
        "_ABSENT": _ABSENT,
        "_dict": dict,
        "_list": list,
    }
    lines = [
        "def decode(data, where):",
        "    if where is not None or data.__class__ is not _dict or not _names.issuperset(data):",
        "        return _generic(data, where)",
        "    get = data.get",
    ]
    for position, name in enumerate(spec.names):
        lines += _field_lines(position, name, spec, field_types[name], decoder_of, namespace)
    lines += _construct_lines(kind, spec, namespace)
    source = "\n".join(lines) + "\n"
    # Generated source, as record.py writes __init__: the names come from the class's own annotations.
    exec(compile(source, f"<decoder of {kind.__module__}.{kind.__qualname__}>", "exec"), namespace)  # noqa: S102
    decode: Decoder = namespace["decode"]
    return decode


def _construct_lines(kind: type, spec: RecordSpec, namespace: dict[str, Any]) -> list[str]:
    """Return the source lines that build the record from ``f0``, ``f1``, ... and return it."""
    stand_in = _slots_stand_in(kind, spec)
    if stand_in is None:
        arguments = ", ".join(f"f{position}" for position in range(len(spec.names)))
        return [
            "    try:",
            f"        return _kind({arguments})",
            "    except (TypeError, ValueError):",
            "        return _generic(data, None)",
        ]
    # A frozen record's __init__ sets each slot with object.__setattr__, which took 100 to 200 ns
    # per field (CPython 3.11 on a shared 2-vCPU VM). The stand-in class has the same slots and
    # no __setattr__, so plain assignments fill them, and the object then takes the record's class.
    namespace["_stand_in"] = stand_in
    namespace["_new"] = object.__new__
    lines = ["    record = _new(_stand_in)"]
    lines += [f"    record.{name} = f{position}" for position, name in enumerate(spec.names)]
    lines.append("    record.__class__ = _kind")
    if spec.post_init:
        lines += [
            "    try:",
            "        record.__post_init__()",
            "    except (TypeError, ValueError):",
            "        return _generic(data, None)",
        ]
    lines.append("    return record")
    return lines


def _slots_stand_in(kind: type, spec: RecordSpec) -> type | None:
    """Return a plain class whose instances may be given ``kind`` as their class, or None.

    That holds for a record with the generated ``__init__`` whose only slots are
    its fields, directly under ``object``.
    """
    if spec.custom_init or kind.__bases__ != (object,) or kind.__dict__.get("__slots__") != spec.names:
        return None
    if kind.__new__ is not object.__new__:
        return None
    stand_in = type(f"{kind.__name__}Slots", (object,), {"__slots__": spec.names})
    try:
        # CPython allows the assignment only between classes of the same object layout.
        probe: Any = object.__new__(stand_in)
        probe.__class__ = kind
    except TypeError:
        return None
    return stand_in


def _field_lines(position: int, name: str, spec: RecordSpec, kind: Any, decoder_of: Callable[[Any], Decoder],
                 namespace: dict[str, Any]) -> list[str]:
    """Return the source lines that read one field into the local variable ``f<position>``."""
    value = f"f{position}"
    inner, optional = _strip_optional(kind)
    fail = "return _generic(data, None)"

    if inner in _SCALARS and name not in spec.factories:
        # A scalar needs no decoding, and get() returns the default when the field is absent.
        if name in spec.defaults:
            namespace[f"_default{position}"] = spec.defaults[name]
            absent = f"_default{position}"
        else:
            absent = "_ABSENT"  # fails the type test, so the generic decoder names the missing field
        namespace[f"_type{position}"] = inner
        test = f"{value}.__class__ is not _type{position}"
        if optional:
            test = f"{value} is not None and {test}"
        return [f"    {value} = get({name!r}, {absent})", f"    if {test}:", f"        {fail}"]

    lines = [f"    {value} = get({name!r}, _ABSENT)", f"    if {value} is _ABSENT:"]
    if name in spec.factories:
        namespace[f"_factory{position}"] = spec.factories[name]
        lines.append(f"        {value} = _factory{position}()")
    elif name in spec.defaults:
        namespace[f"_default{position}"] = spec.defaults[name]
        lines.append(f"        {value} = _default{position}")
    else:
        lines.append(f"        {fail}")

    guard = f"elif {value} is not None:" if optional else "else:"
    item = _tuple_item(inner)
    if item is None:
        # Any other type (a record, a table, an enum, a fixed tuple) goes through its own decoder.
        namespace[f"_decode{position}"] = decoder_of(inner if optional else kind)
        lines += [f"    {guard}", f"        {value} = _decode{position}({value}, None)"]
    elif item in _SCALARS:
        namespace[f"_item{position}"] = item
        lines += [
            f"    {guard}",
            f"        if {value}.__class__ is not _list:",
            f"            {fail}",
            f"        for item in {value}:",
            f"            if item.__class__ is not _item{position}:",
            f"                {fail}",
            f"        {value} = tuple({value})",
        ]
    elif _scalar_pair(item):
        # tuple[tuple[str, str], ...], the form of sysctls, metadata and options.
        first, second = typing.get_args(item)
        namespace[f"_first{position}"] = first
        namespace[f"_second{position}"] = second
        lines += [
            f"    {guard}",
            f"        if {value}.__class__ is not _list:",
            f"            {fail}",
            f"        for item in {value}:",
            "            if item.__class__ is not _list or len(item) != 2:",
            f"                {fail}",
            f"            if item[0].__class__ is not _first{position} or item[1].__class__ is not _second{position}:",
            f"                {fail}",
            f"        {value} = tuple([(item[0], item[1]) for item in {value}])",
        ]
    else:
        namespace[f"_item{position}"] = decoder_of(item)
        lines += [
            f"    {guard}",
            f"        if {value}.__class__ is not _list:",
            f"            {fail}",
            f"        {value} = tuple([_item{position}(item, None) for item in {value}])",
        ]
    return lines


def _strip_optional(kind: Any) -> tuple[Any, bool]:
    """Return ``(X, True)`` for ``X | None``, and ``(kind, False)`` for any other type."""
    if typing.get_origin(kind) in (types.UnionType, typing.Union):
        options = [option for option in typing.get_args(kind) if option is not type(None)]
        if len(options) == 1 and len(typing.get_args(kind)) == 2:
            return options[0], True
    return kind, False


def _scalar_pair(kind: Any) -> bool:
    """Tell whether ``kind`` is ``tuple[X, Y]`` with scalar ``X`` and ``Y``."""
    args = typing.get_args(kind)
    return typing.get_origin(kind) is tuple and len(args) == 2 and args[0] in _SCALARS and args[1] in _SCALARS


def _tuple_item(kind: Any) -> Any:
    """Return ``X`` for ``tuple[X, ...]``, or None for any other type."""
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None
