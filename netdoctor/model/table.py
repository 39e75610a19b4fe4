"""Columnar, immutable tables for the large per-node collections.

A 5,000-node Calico cluster holds about 25 million routes, and a flannel VXLAN
cluster of that size as many FDB and neighbour entries. One Python object per
entry would not fit in memory, so these collections are stored as one typed
array per field, with strings interned per table. A row is materialized as a
small ``NamedTuple`` only when it is read.

Rows are kept in canonical order (sorted by their field values), so two tables
built from the same entries in any order are equal and dump to the same JSON.
The JSON form stores each column as base64 of its little-endian array, which
``json.loads`` reads as one string per column instead of one object per value.
"""

from __future__ import annotations

import gc
import sys
from _thread import allocate_lock
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import chain, compress, pairwise, repeat
from operator import ne
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

# pybase64 decodes with SIMD instructions, about ten times faster than binascii. It accepts and rejects the same
# texts as binascii.a2b_base64(strict_mode=True) once the length is a multiple of four.
from pybase64 import b64decode, b64encode_as_string

R = TypeVar("R", bound=tuple[Any, ...])

#: Column kinds: unsigned integers of a fixed width, arbitrary-width unsigned
#: integers (IP addresses, which need 128 bits for IPv6), and interned strings.
_TYPECODES = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}
KINDS = frozenset(_TYPECODES) | {"ip", "str"}


class SchemaError(ValueError):
    """A table in a snapshot file does not match the table's schema."""


def decimal_value(text: str) -> int | None:
    """Return the value of a string of ASCII digits, or None for any other string.

    ``str.isdigit`` also accepts superscripts and the digits of other scripts,
    which ``int`` rejects or reads, and ``int`` rejects a string longer than
    ``sys.get_int_max_str_digits()`` (4,300 digits by default).
    """
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _value_text(value: Any) -> str:
    """Return a JSON value for an error message: numbers and strings as written, other values by their kind."""
    if value.__class__ is int:
        return number_text(value)
    if isinstance(value, str | float) and not isinstance(value, bool):
        return repr(value)[:40]
    kinds = {bool: "a boolean", list: "a list", dict: "an object", type(None): "null"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def number_text(value: int) -> str:
    """Return an integer for an error message, shortened to its first digits and length when it is very long."""
    try:
        text = str(value)
    except ValueError:
        # CPython converts at most 4,300 digits by default, and hex input such as 0xfff... can be longer.
        return f"a number of {value.bit_length():,} bits"
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text.lstrip('-'))} digits)"


class _CollectorPause:
    """A pause of the cyclic garbage collector that nests and may be entered from several threads."""

    def __init__(self) -> None:
        # threading.Lock is this function; importing threading would slow down every command.
        self._lock = allocate_lock()
        self._depth = 0
        self._was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._was_enabled:
                    gc.enable()


#: Pause the cyclic garbage collector while a large table or its input is built.
#:
#: ``json.loads`` of 100,000 routes allocates about 200,000 dicts and lists,
#: and the collections they trigger take about as long as the decoding itself.
#: Parsers and table builders create no reference cycles, so a collection
#: would free nothing. The collector resumes when the outermost pause in any
#: thread ends, unless it was disabled before the first one.
gc_paused = _CollectorPause()


class Column(NamedTuple):
    """The name and storage kind of one field of a table row."""

    name: str
    kind: str


def _to_le_bytes(values: array) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_le_bytes(typecode: str, raw: bytes, where: str = "column") -> array:
    values = array(typecode)
    if len(raw) % values.itemsize:
        raise SchemaError(f"{where}: {len(raw)} bytes is not a whole number of {values.itemsize}-byte values")
    values.frombytes(raw)
    if sys.byteorder == "big":
        values.byteswap()
    return values


class _StrColumn:
    """Interned strings: a list of distinct values and one index per row."""

    __slots__ = ("index", "values")

    def __init__(self, values: list[str], index: array) -> None:
        self.values = values
        self.index = index

    @classmethod
    def build(cls, items: Iterable[str]) -> _StrColumn:
        lookup: dict[str, int] = {}
        values: list[str] = []
        index = array("I")
        for item in items:
            position = lookup.get(item)
            if position is None:
                position = lookup[item] = len(values)
                values.append(item)
            index.append(position)
        return cls(values, index)

    @classmethod
    def build_fast(cls, items: Sequence[str]) -> _StrColumn:
        """Build the same column as :meth:`build` with C-level loops. ``items`` must be a sequence."""
        values = list(dict.fromkeys(items))
        lookup = {value: position for position, value in enumerate(values)}
        return cls(values, array("I", map(lookup.__getitem__, items)))

    @classmethod
    def concat(cls, parts: Sequence[_StrColumn]) -> _StrColumn:
        """Join columns whose rows follow each other, interning each string once, in first-row order."""
        values = list(dict.fromkeys(value for part in parts for value in part.values))
        lookup = {value: position for position, value in enumerate(values)}
        index = array("I")
        for part in parts:
            positions = [lookup[value] for value in part.values]
            index.extend(map(positions.__getitem__, part.index))
        return cls(values, index)

    def __getitem__(self, row: int) -> str:
        return self.values[self.index[row]]

    def __len__(self) -> int:
        return len(self.index)

    def __eq__(self, other: object) -> bool:
        # Both sides are built in canonical row order, so equal tables intern
        # their strings in the same order too.
        return isinstance(other, _StrColumn) and self.values == other.values and self.index == other.index

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "index": _b64_text(_to_le_bytes(self.index))}

    @classmethod
    def from_json(cls, data: Any, count: int, where: str) -> _StrColumn:
        if not isinstance(data, dict) or not isinstance(data.get("values"), list):
            raise SchemaError(f"{where}: expected an object with 'values' and 'index'")
        if len(data) != 2:
            unknown = sorted(map(str, set(data) - {"values", "index"}))
            raise SchemaError(f"{where}: unknown field(s) {', '.join(unknown)}" if unknown
                              else f"{where}: expected an object with 'values' and 'index'")
        raw = _b64(data.get("index"), where)
        index = _from_le_bytes("I", raw, where)
        values = data["values"]
        if len(index) != count:
            raise SchemaError(f"{where}: {len(index)} rows, expected {count}")
        try:
            # join() raises TypeError for any item that is not a str, as the isinstance test would.
            "".join(values)
        except TypeError:
            raise SchemaError(f"{where}: 'values' must be strings") from None
        if not _indexes_below(index, raw, len(values)):
            row, position = next((row, position) for row, position in enumerate(index) if position >= len(values))
            raise SchemaError(f"{where}.index: row {row} names string {position}, but 'values' has {len(values)}")
        return cls(values, index)


_BYTE_VALUES = bytes(range(256))


def _indexes_below(index: array, raw: bytes, limit: int) -> bool:
    """Tell whether every value of ``index``, stored in ``raw`` as little-endian u32, is below ``limit``.

    Up to 256 distinct strings, the test runs over the bytes in C: the three
    high bytes of each value are zero and the low byte is below ``limit``.
    ``max(index)`` creates an int per row and took three times as long on
    1,000 rows.
    """
    if limit > 256:
        return not index or max(index) < limit
    rows = len(raw) // 4
    lows = raw[::4]
    return raw.count(0) - lows.count(0) == 3 * rows and not lows.translate(None, _BYTE_VALUES[:limit])


def _b64_text(raw: bytes) -> str:
    return b64encode_as_string(raw)


def _b64(data: Any, where: str) -> bytes:
    if not isinstance(data, str):
        raise SchemaError(f"{where}: expected a base64 string")
    # "=" after a complete group is rejected here, as binascii.a2b_base64(strict_mode=True) accepts it in Python 3.11.
    if len(data) % 4 or data.endswith("==="):
        raise SchemaError(f"{where}: invalid base64")
    try:
        return b64decode(data, validate=True)
    except ValueError:  # non-ASCII text or invalid base64 (binascii.Error)
        raise SchemaError(f"{where}: invalid base64") from None


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64_length(data: Any, where: str) -> int:
    """Return the length of the bytes that base64 text decodes to, without decoding it.

    The text must be base64 characters in groups of four, with one or two ``=``
    only to complete the last group, as base64 encoders write it. The
    decoder accepts the same texts, and :func:`_b64` rejects the rest too.
    ``bytes.translate`` checks the characters as fast as decoding them, but
    builds no decoded copy.
    """
    if not isinstance(data, str):
        raise SchemaError(f"{where}: expected a base64 string")
    try:
        raw = data.encode("ascii")
    except UnicodeEncodeError:
        raise SchemaError(f"{where}: invalid base64") from None
    padding = raw.translate(None, _B64_ALPHABET)
    if len(raw) % 4 or padding not in (b"", b"=", b"==") or not raw.endswith(padding):
        raise SchemaError(f"{where}: invalid base64")
    return len(raw) // 4 * 3 - len(padding)


#: Whether :meth:`Table.from_json` checks the characters of integer columns (see :func:`columns_checked_when_read`).
_CHECK_ON_LOAD: ContextVar[bool] = ContextVar("netdoctor_check_columns_on_load", default=True)


@contextmanager
def columns_checked_when_read() -> Iterator[None]:
    """Defer the base64 check of integer columns, in this thread, from loading a table to decoding a column.

    Tables loaded inside the block check each integer column's length,
    padding and ASCII text at once. The other characters are checked when the
    column is decoded, or, when single rows are read, the characters that hold
    those rows, raising :class:`SchemaError` with the column's path then.
    Checking every character of a 5,000-node Calico snapshot on load took about
    1.4 s. The checks read five of a route table's twelve integer columns there,
    and decoding a column checks its characters at no extra cost.
    """
    token = _CHECK_ON_LOAD.set(False)
    try:
        yield
    finally:
        _CHECK_ON_LOAD.reset(token)


def _packed_lengths_valid(texts: list[Any], sizes: list[int], count: int) -> bool:
    """Tell whether each text is ASCII with the length and ``=`` padding of base64 of ``count`` values of its size."""
    for text, size in zip(texts, sizes):
        length = count * size
        pads = -length % 3
        if (text.__class__ is not str or len(text) != (length + 2) // 3 * 4 or not text.endswith("=" * pads)
                or not text.isascii()):
            return False
    return True


def _packed_texts_valid(texts: list[Any], sizes: list[int], count: int) -> bool:
    """Tell whether each text is valid base64 of ``count`` values of its size, checking all the texts in one pass.

    The length and the ``=`` padding of each text follow from its size and
    ``count``. One ``bytes.translate`` over all the texts joined then leaves
    only that padding exactly when every text is valid. A route table's 12
    integer columns are checked in one call instead of 12.
    """
    padding = 0
    for text, size in zip(texts, sizes):
        length = count * size
        pads = -length % 3
        if text.__class__ is not str or len(text) != (length + 2) // 3 * 4 or not text.endswith("=" * pads):
            return False
        padding += pads
    try:
        joined = "".join(texts).encode("ascii")
    except UnicodeEncodeError:
        return False
    return joined.translate(None, _B64_ALPHABET) == b"=" * padding


class _PackedColumn:
    """An integer column kept as its base64 text until a scan reads it.

    Decoding every column took longer than parsing the snapshot's JSON, and the
    checks read fewer than half of the route columns. Its length, padding and
    ASCII text were checked when the table was loaded, and its other
    characters then too unless :func:`columns_checked_when_read` deferred that
    to decoding. :meth:`Table.cells` and the other methods that return a
    column decode it once and keep the array. Reading one row, as
    ``Table.__getitem__`` does, decodes only the base64 groups that hold that
    row's bytes.
    """

    __slots__ = ("length", "name", "place", "size", "text", "typecode")

    def __init__(self, text: str, typecode: str, length: int, place: list[str], name: str) -> None:
        self.text = text
        self.typecode = typecode
        self.size = _ITEMSIZES[typecode]
        #: The number of bytes the text decodes to.
        self.length = length
        #: The table's path in the snapshot, shared with the table (see :meth:`Table.locate`), and the column's name.
        self.place = place
        self.name = name

    def __getitem__(self, row: int) -> int:
        # Four base64 characters encode three bytes, so the row's bytes start in group start // 3.
        start = row * self.size
        stop = start + self.size
        group = start // 3
        chunk = self._decoded(self.text[group * 4 : (stop + 2) // 3 * 4], min((stop + 2) // 3 * 3, self.length) - group * 3)
        offset = start - group * 3
        return int.from_bytes(chunk[offset : offset + self.size], "little")

    def decode(self) -> array:
        return _from_le_bytes(self.typecode, self._decoded(self.text, self.length))

    def _decoded(self, text: str, length: int) -> bytes:
        """Decode base64 text that must give ``length`` bytes, and raise :class:`SchemaError` when it does not."""
        try:
            raw = b64decode(text, validate=True)
        except ValueError:  # non-ASCII text or invalid base64 (binascii.Error)
            raw = None
        # Strict decoding accepts "=" that ends a group early, which would leave the values after it misplaced.
        if raw is None or len(raw) != length:
            raise SchemaError(f"{self.place[0]}.{self.name}: invalid base64")
        return raw


_ITEMSIZES = {typecode: array(typecode).itemsize for typecode in (*_TYPECODES.values(), "I")}


def _build_ip_column(items: Iterable[int]) -> Sequence[int]:
    values = list(items)
    if all(value < 1 << 32 for value in values):
        return array("I", values)
    return values


def _build_ip_column_fast(items: Sequence[int]) -> Sequence[int]:
    """Build the same column as :func:`_build_ip_column`: a u32 array when every value fits, else a list."""
    try:
        return array("I", items)
    except OverflowError:
        if min(items) < 0:
            raise
        return list(items)


def _ip_to_json(column: Sequence[int]) -> dict[str, str]:
    if isinstance(column, array):
        return {"u32": _b64_text(_to_le_bytes(column))}
    raw = b"".join(value.to_bytes(16, "big") for value in column)
    return {"u128": _b64_text(raw)}


def _ip_from_json(data: Any, count: int, where: str) -> Sequence[int]:
    """Decode a 128-bit IP column, or raise for anything but a u32 or u128 column; u32 columns stay packed."""
    if isinstance(data, dict) and len(data) == 1 and "u128" in data:
        raw = _b64(data["u128"], where)
        if len(raw) % 16:
            raise SchemaError(f"{where}: truncated 128-bit column")
        column = [int.from_bytes(raw[i : i + 16], "big") for i in range(0, len(raw), 16)]
    else:
        raise SchemaError(f"{where}: expected an object with one field, 'u32' or 'u128'")
    if len(column) != count:
        raise SchemaError(f"{where}: {len(column)} rows, expected {count}")
    return column


def _none_first(value: Any) -> Any:
    """Return a sort key for nested tuples that may hold None: None sorts before any value."""
    if value is None:
        return (0,)
    if isinstance(value, tuple):
        return (1, tuple(_none_first(item) for item in value))
    return (1, value)


def _sorts_before(first: tuple[Any, ...], second: tuple[Any, ...]) -> bool:
    """Tell whether row ``first`` sorts before or equal to row ``second`` in canonical order."""
    try:
        return bool(first <= second)
    except TypeError:
        return bool(_none_first(first) <= _none_first(second))


class Table(Generic[R]):
    """An immutable table of rows of type ``ROW``, stored column by column.

    Subclasses set ``ROW`` (a ``NamedTuple`` class), ``COLUMNS`` (one
    :class:`Column` per leading field of ``ROW``) and, for fields that are not
    columns, ``EXTRAS``: rarely set fields kept in a dict by row number, with a
    default value and JSON converters.
    """

    ROW: ClassVar[Callable[..., Any]]
    COLUMNS: ClassVar[tuple[Column, ...]]
    #: Column name -> position in COLUMNS, set on each subclass by its first cells() call.
    _positions: ClassVar[dict[str, int]]
    #: The column names, set on each subclass by its first from_json() call.
    _names: ClassVar[frozenset[str]]
    #: name -> (default, to_json, from_json) for fields stored sparsely.
    EXTRAS: ClassVar[dict[str, tuple[Any, Callable[[Any], Any], Callable[[Any], Any]]]] = {}

    __slots__ = ("_columns", "_count", "_extras", "_place")

    def __init__(self, columns: list[Any], count: int, extras: dict[str, dict[int, Any]],
                 place: list[str] | None = None) -> None:
        self._columns = columns
        self._count = count
        self._extras = extras
        #: The table's JSON path in a loaded snapshot, in a list its packed columns share.
        self._place = place

    def locate(self, where: str) -> None:
        """Set the JSON path that names the table in errors raised when a column is decoded."""
        if self._place is not None:
            self._place[0] = where

    @classmethod
    def from_rows(cls, rows: Iterable[R]) -> Any:
        """Build a table from rows in any order; they are stored sorted."""
        ordered = list(rows)
        try:
            ordered.sort()
        except TypeError:
            # An optional field holds None in one row and a value in another (a
            # next hop without a gateway, say). The key orders None first and
            # agrees with plain comparison everywhere else, so the order stays canonical.
            ordered.sort(key=_none_first)
        columns: list[Any] = []
        for position, column in enumerate(cls.COLUMNS):
            items = (row[position] for row in ordered)
            if column.kind == "str":
                columns.append(_StrColumn.build(items))
            elif column.kind == "ip":
                columns.append(_build_ip_column(items))
            else:
                columns.append(array(_TYPECODES[column.kind], items))
        extras: dict[str, dict[int, Any]] = {}
        for offset, (name, (default, _, _)) in enumerate(cls.EXTRAS.items()):
            position = len(cls.COLUMNS) + offset
            extras[name] = {i: row[position] for i, row in enumerate(ordered) if row[position] != default}
        return cls(columns, len(ordered), extras)

    @classmethod
    def from_tuples(cls, rows: list[Any]) -> Any:
        """Build the same table as :meth:`from_rows`, column by column, from plain tuples.

        Each tuple contains a row's fields in ``ROW`` order (a ``ROW`` instance
        works too), so a parser need not build one ``ROW`` object per row. The
        list is sorted in place, and each column is filled in one C-level pass.
        A field that its column cannot store raises ``OverflowError``, as
        :meth:`from_rows` does.
        """
        with gc_paused():
            try:
                rows.sort()
            except TypeError:
                rows.sort(key=_none_first)
            width = len(cls.COLUMNS) + len(cls.EXTRAS)
            # zip(*rows) makes one iterator per row, so it is fast only while the collector is paused.
            fields: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * width
            if len(fields) != width:
                raise ValueError(f"{cls.__name__} rows must have {width} fields")

            columns: list[Any] = []
            for column, items in zip(cls.COLUMNS, fields):
                if column.kind == "str":
                    columns.append(_StrColumn.build_fast(items))
                elif column.kind == "ip":
                    columns.append(_build_ip_column_fast(items))
                else:
                    columns.append(array(_TYPECODES[column.kind], items))
            extras: dict[str, dict[int, Any]] = {}
            for values, (name, (default, _, _)) in zip(fields[len(cls.COLUMNS) :], cls.EXTRAS.items()):
                set_rows = compress(range(len(values)), map(ne, values, repeat(default)))
                extras[name] = {i: values[i] for i in set_rows}
        return cls(columns, len(rows), extras)

    @classmethod
    def concat(cls, tables: Sequence[Any]) -> Any:
        """Return one table with the rows of all ``tables``, equal to :meth:`from_rows` over those rows.

        When each table's rows all sort before the next table's (IPv4 routes
        before IPv6 routes, say), the columns are joined without building a row
        object. Otherwise every row is read and sorted again.
        """
        if any(type(table) is not cls for table in tables):
            raise TypeError(f"{cls.__name__}.concat takes {cls.__name__} tables only")
        parts = [table for table in tables if len(table)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        if not all(_sorts_before(first[-1], second[0]) for first, second in pairwise(parts)):
            return cls.from_tuples([row for table in parts for row in table])

        columns: list[Any] = []
        for position, column in enumerate(cls.COLUMNS):
            stored = [table._unpacked(position) for table in parts]
            if column.kind == "str":
                columns.append(_StrColumn.concat(stored))
            elif column.kind == "ip" and not all(isinstance(part, array) for part in stored):
                columns.append(list(chain.from_iterable(stored)))
            else:
                joined = array(stored[0].typecode)
                for part in stored:
                    joined.extend(part)
                columns.append(joined)
        extras: dict[str, dict[int, Any]] = {name: {} for name in cls.EXTRAS}
        offset = 0
        for table in parts:
            for name in cls.EXTRAS:
                extras[name].update((row + offset, value) for row, value in table._extras[name].items())
            offset += len(table)
        return cls(columns, offset, extras)

    @classmethod
    def out_of_range(cls, row: tuple[Any, ...]) -> str | None:
        """Describe the first integer field of ``row`` that its column cannot store, or return None."""
        for position, column in enumerate(cls.COLUMNS):
            value = row[position]
            if column.kind in _TYPECODES:
                limit = 1 << (8 * array(_TYPECODES[column.kind]).itemsize)
                if not 0 <= value < limit:
                    return f"{column.name} {number_text(value)} is out of range (0 to {limit - 1})"
            elif column.kind == "ip" and not 0 <= value < 1 << 128:
                return f"{column.name} {value} is not an IP address"
        return None

    @classmethod
    def empty(cls) -> Any:
        """Return a table with no rows."""
        return cls.from_rows(())

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, row: int) -> R:
        if not -self._count <= row < self._count:
            raise IndexError(row)
        row %= self._count
        values = [column[row] for column in self._columns]
        for name, (default, _, _) in self.EXTRAS.items():
            values.append(self._extras[name].get(row, default))
        return self.ROW(*values)

    def __iter__(self) -> Iterator[R]:
        self._unpack_all()
        for row in range(self._count):
            yield self[row]

    def _unpacked(self, position: int) -> Any:
        """Return one stored column, decoding it first if it is still packed."""
        stored = self._columns[position]
        if stored.__class__ is _PackedColumn:
            stored = self._columns[position] = stored.decode()
        return stored

    def _unpack_all(self) -> None:
        for position in range(len(self._columns)):
            self._unpacked(position)

    def column(self, name: str) -> Sequence[Any]:
        """Return the raw values of one column, for scans that need no row objects.

        String columns are returned as a sequence of strings; IP columns as
        integers.
        """
        for position, column in enumerate(self.COLUMNS):
            if column.name == name:
                stored = self._unpacked(position)
                if column.kind == "str":
                    return [stored.values[i] for i in stored.index]
                return stored
        raise KeyError(name)

    def cells(self, name: str) -> Sequence[Any]:
        """Return one column as stored, indexable by row without copying it.

        Unlike :meth:`column`, a string column is not expanded into a list:
        each item is looked up when read, so reading a few rows of a large
        table costs only those rows.
        """
        positions = type(self).__dict__.get("_positions")
        if positions is None:
            positions = {column.name: position for position, column in enumerate(self.COLUMNS)}
            type(self)._positions = positions
        stored: Sequence[Any] = self._columns[positions[name]]
        if stored.__class__ is _PackedColumn:
            stored = self._unpacked(positions[name])
        return stored

    def interned(self, name: str) -> tuple[list[str], array]:
        """Return a string column as its distinct values and, per row, the position of its value.

        Scans can test the positions with ``map()`` instead of reading a string per row.
        """
        stored = self.cells(name)
        if not isinstance(stored, _StrColumn):
            raise KeyError(f"{name} is not a string column")
        return stored.values, stored.index

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Table)
        self._unpack_all()
        other._unpack_all()
        return self._count == other._count and self._columns == other._columns and self._extras == other._extras

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._count))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._count} rows)"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: the row count and one encoded entry per column."""
        columns: dict[str, Any] = {}
        for position, column in enumerate(self.COLUMNS):
            stored = self._unpacked(position)
            if column.kind == "str":
                columns[column.name] = stored.to_json()
            elif column.kind == "ip":
                columns[column.name] = _ip_to_json(stored)
            else:
                columns[column.name] = _b64_text(_to_le_bytes(stored))
        data: dict[str, Any] = {"count": self._count, "columns": columns}
        extras = {
            name: [[row, to_json(value)] for row, value in sorted(self._extras[name].items())]
            for name, (_, to_json, _) in self.EXTRAS.items()
            if self._extras[name]
        }
        if extras:
            data["extras"] = extras
        return data

    @classmethod
    def _check_packed(cls, packed: list[tuple[int, str]], texts: list[Any], count: int, where: str) -> None:
        """Check integer columns one by one, and raise for the first that is not valid base64 of ``count`` values."""
        for (position, typecode), text in zip(packed, texts):
            column_path = f"{where}.{cls.COLUMNS[position].name}"
            length = _b64_length(text, column_path)
            size = _ITEMSIZES[typecode]
            if length % size:
                raise SchemaError(f"{column_path}: {length} bytes is not a whole number of {size}-byte values")
            if length != count * size:
                raise SchemaError(f"{column_path}: {length // size} rows, expected {count}")

    @classmethod
    def from_json(cls, data: Any, where: str) -> Any:
        """Rebuild a table from :meth:`to_json` output; ``where`` names it in errors."""
        # A JSON true or false is no count, although bool is a subclass of int.
        if (not isinstance(data, dict) or data.get("count").__class__ is not int
                or not isinstance(data.get("columns"), dict)):
            raise SchemaError(f"{where}: expected an object with 'count' and 'columns'")
        count: int = data["count"]
        if count < 0:
            raise SchemaError(f"{where}.count: {count} is negative")
        unknown_keys = set(data) - {"count", "columns", "extras"}
        if unknown_keys:
            raise SchemaError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown_keys)))}")
        names = cls.__dict__.get("_names")
        if names is None:
            names = cls._names = frozenset(column.name for column in cls.COLUMNS)
        if not names.issuperset(data["columns"]):
            unknown = set(data["columns"]) - names
            raise SchemaError(f"{where}: unknown column(s) {', '.join(sorted(map(str, unknown)))}")
        columns: list[Any] = []
        # Integer columns stay base64 text: their positions, type codes and texts, checked together below.
        packed: list[tuple[int, str]] = []
        texts: list[Any] = []
        for position, column in enumerate(cls.COLUMNS):
            if column.name not in data["columns"]:
                raise SchemaError(f"{where}.{column.name}: column missing")
            raw = data["columns"][column.name]
            if column.kind == "str":
                columns.append(_StrColumn.from_json(raw, count, f"{where}.{column.name}"))
                continue
            if column.kind != "ip":
                packed.append((position, _TYPECODES[column.kind]))
                texts.append(raw)
            elif isinstance(raw, dict) and len(raw) == 1 and "u32" in raw:
                packed.append((position, "I"))
                texts.append(raw["u32"])
            else:
                columns.append(_ip_from_json(raw, count, f"{where}.{column.name}"))
                continue
            columns.append(None)

        sizes = [_ITEMSIZES[typecode] for _, typecode in packed]
        if not (_packed_texts_valid if _CHECK_ON_LOAD.get() else _packed_lengths_valid)(texts, sizes, count):
            cls._check_packed(packed, texts, count, where)
        # Decoders pass "$" while the input is valid, so the snapshot loader names the table afterwards.
        place = [where]
        for (position, typecode), text, size in zip(packed, texts, sizes):
            columns[position] = _PackedColumn(text, typecode, count * size, place, cls.COLUMNS[position].name)
        extras: dict[str, dict[int, Any]] = {}
        stored_extras = data.get("extras", {})
        if not isinstance(stored_extras, dict):
            raise SchemaError(f"{where}.extras: expected an object")
        if not set(stored_extras) <= set(cls.EXTRAS):
            unknown_extras = sorted(map(str, set(stored_extras) - set(cls.EXTRAS)))
            raise SchemaError(f"{where}.extras: unknown field(s) {', '.join(unknown_extras)}")
        for name, (_, _, from_json) in cls.EXTRAS.items():
            extras[name] = cls._extras_from_json(stored_extras.get(name, []), from_json, count, f"{where}.extras.{name}")
        table = cls(columns, count, extras, place)
        table._check_values(where)
        return table

    @staticmethod
    def _extras_from_json(entries: Any, from_json: Callable[[Any], Any], count: int, where: str) -> dict[int, Any]:
        """Read one extra field's ``[row, value]`` pairs, naming the pair and the part that is invalid."""
        if not isinstance(entries, list):
            raise SchemaError(f"{where}: expected a list of [row, value] pairs")
        values: dict[int, Any] = {}
        for number, entry in enumerate(entries):
            at = f"{where}[{number}]"
            if entry.__class__ is not list or len(entry) != 2:
                raise SchemaError(f"{at}: expected a pair [row, value]")
            row, value = entry
            if row.__class__ is not int or not 0 <= row < count:
                raise SchemaError(f"{at}[0]: expected a row of the table, an integer from 0 to {count - 1}, got "
                                  f"{_value_text(row)}")
            if row in values:
                raise SchemaError(f"{at}[0]: row {row} has a value already; give each row once")
            try:
                values[row] = from_json(value)
            except (TypeError, ValueError, KeyError) as error:
                raise SchemaError(f"{at}[1]: {error}") from None
        return values

    def _check_values(self, where: str) -> None:
        """Raise :class:`SchemaError` for values that fit a column's type but no collector writes.

        Tables whose rows have such limits (prefix lengths, address families) override this.
        """
