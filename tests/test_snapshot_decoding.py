"""Fast snapshot decoding: compiled record decoders and table columns kept as base64 until read.

Each fast path is compared with the slow one it replaces: the generic record
decoder, and ``binascii.a2b_base64(strict_mode=True)`` followed by a full decode.
"""

from __future__ import annotations

import binascii
import copy
import json
from array import array
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_model import full_node, full_snapshot

from netdoctor.model import ClusterSnapshot, NodeSnapshot, SchemaError
from netdoctor.model.record import record, record_spec
from netdoctor.model.serialize import (
    COMPILE_DECODER_AFTER,
    _compiled_decoder,
    _generic_record_decoder,
    dump_snapshot,
    from_json,
    load_snapshot,
    loads_snapshot,
    to_json,
)
from netdoctor.model.table import (
    _b64_length,
    _indexes_below,
    _packed_lengths_valid,
    _packed_texts_valid,
    _PackedColumn,
    columns_checked_when_read,
)


def generic_decode(kind: type, data: Any) -> Any:
    spec = record_spec(kind)
    assert spec is not None
    return _generic_record_decoder(kind, spec)(data, None)


def outcome(decode: Any, data: Any) -> tuple[str, Any]:
    """Return ("value", result) or ("error", None) for one decoding."""
    try:
        return "value", decode(data)
    except SchemaError:
        return "error", None


# --- compiled record decoders ---------------------------------------------------------------------


def test_compiled_node_decoder_equals_generic() -> None:
    for node in full_snapshot().nodes:
        data = to_json(node)
        compiled = _compiled_decoder(NodeSnapshot)(data, None)

        assert compiled == node
        assert compiled == generic_decode(NodeSnapshot, data)
        assert type(compiled) is NodeSnapshot


def test_compiled_decoder_keeps_post_init() -> None:
    data = to_json(full_snapshot())
    data["nodes"].reverse()
    decoded = _compiled_decoder(ClusterSnapshot)(data, None)

    assert decoded.node_names == ("node-a", "node-b", "node-c")


def test_compiled_decoder_rejects_post_init_error() -> None:
    data = to_json(full_snapshot())
    data["nodes"][1]["name"] = data["nodes"][0]["name"]

    with pytest.raises(SchemaError, match="duplicate node names"):
        _compiled_decoder(ClusterSnapshot)(data, None)


@record
class Span:
    """A record with a check in ``__post_init__``."""

    start: int
    end: int = 0
    label: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")


@record
class Named:
    """A record with an ``__init__`` of its own, which the compiled decoder must call."""

    name: str
    tags: tuple[str, ...] = ()

    def __init__(self, name: str, tags: tuple[str, ...] = ()) -> None:
        object.__setattr__(self, "name", name.lower())
        object.__setattr__(self, "tags", tags)


def test_compiled_decoder_runs_post_init_check() -> None:
    decode = _compiled_decoder(Span)

    assert decode({"start": 1, "end": 2}, None) == Span(1, 2)
    with pytest.raises(SchemaError):
        decode({"start": 3, "end": 2}, None)
    with pytest.raises(SchemaError, match=r"\$\.spans\[0\]: end 2 is before start 3"):
        from_json(tuple[Span, ...], [{"start": 3, "end": 2}], "$.spans")


def test_compiled_decoder_calls_own_init() -> None:
    decoded = _compiled_decoder(Named)({"name": "ETH0", "tags": ["a"]}, None)

    assert decoded.name == "eth0"
    assert decoded.tags == ("a",)


def test_compiled_decoder_accepts_str_subclass() -> None:
    class Text(str):
        pass

    decoded = _compiled_decoder(Span)({"start": 0, "label": Text("x")}, None)

    assert decoded.label == "x"


def many_nodes(count: int) -> dict[str, Any]:
    """Return the JSON of a snapshot of ``count`` full nodes, enough for the compiled decoders to run."""
    nodes = tuple(full_node(f"node-{number:03d}") for number in range(count))
    data: dict[str, Any] = json.loads(json.dumps(dump_snapshot(ClusterSnapshot(nodes))))
    return data


def _last_interface(data: dict[str, Any]) -> dict[str, Any]:
    interface: dict[str, Any] = data["nodes"][-1]["interfaces"][1]
    return interface


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda interface: interface.update(colour="red"), "interfaces[1]: unknown field(s) colour"),
        (lambda interface: interface.update(mtu="1500"), "interfaces[1].mtu: expected an integer"),
        (lambda interface: interface.update(mtu=True), "interfaces[1].mtu: expected an integer"),
        (lambda interface: interface.pop("mtu"), "interfaces[1]: missing required field(s) mtu"),
        (lambda interface: interface.update(flags=["UP", 1]), "interfaces[1].flags[1]: expected a string"),
        (lambda interface: interface.update(flags="UP"), "interfaces[1].flags: expected a list"),
        (lambda interface: interface.update(addresses=None), "interfaces[1].addresses: expected a list"),
        (lambda interface: interface.update(mac=5), "interfaces[1].mac: expected a string"),
        (lambda interface: interface["addresses"][0].update(prefixlen="24"),
         "interfaces[1].addresses[0].prefixlen: expected an integer"),
        (lambda interface: interface.update(vxlan=[]), "interfaces[1].vxlan: expected an object"),
    ],
)
def test_large_snapshot_names_bad_field(change: Any, message: str) -> None:
    count = COMPILE_DECODER_AFTER + 10
    data = many_nodes(count)
    change(_last_interface(data))

    with pytest.raises(SchemaError) as raised:
        load_snapshot(data, "case.json")

    assert f"$.nodes[{count - 1}].{message}" in str(raised.value)


def test_large_snapshot_loads_equal() -> None:
    data = many_nodes(COMPILE_DECODER_AFTER + 10)
    expected = load_snapshot(copy.deepcopy(data), "case.json")

    assert loads_snapshot(json.dumps(data)) == expected
    assert len(expected.nodes) == COMPILE_DECODER_AFTER + 10


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-3, 70000) | st.sampled_from(["", "UP", "eth0", "10.0.0.1"])
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["name", "x"]), children,
                                                                         max_size=2),
        max_leaves=6,
    )


def _slots(value: Any, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Collect (container, key) for every value inside ``value``, except inside route, neighbour and FDB tables."""
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((value, key))
            if key not in ("routes", "neighbours", "fdb"):
                _slots(item, found)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found.append((value, position))
            _slots(item, found)
    return found


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_compiled_decoder_agrees_on_mutations(data: st.DataObject) -> None:
    node = to_json(full_node("node-a"))
    container, key = data.draw(st.sampled_from(_slots(node, [])))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        container[key] = data.draw(_json_values())
    elif action == "delete":
        del container[key]
    elif isinstance(container, dict):
        container[data.draw(st.sampled_from(["name", "colour", "mtu", "flags"]))] = data.draw(_json_values())
    else:
        container.append(data.draw(_json_values()))

    compiled = outcome(lambda value: _compiled_decoder(NodeSnapshot)(value, None), node)
    generic = outcome(lambda value: generic_decode(NodeSnapshot, value), node)

    assert compiled == generic


# --- table columns kept as base64 -----------------------------------------------------------------


def test_rows_read_before_columns_decoded() -> None:
    original = full_snapshot().node("node-a")
    loaded = loads_snapshot(json.dumps(dump_snapshot(ClusterSnapshot((original,))))).node("node-a")

    for name in ("routes", "neighbours", "fdb"):
        table = getattr(original, name)
        loaded_table = getattr(loaded, name)
        assert [loaded_table[row] for row in range(len(table))] == list(table), name
        assert loaded_table[-1] == table[-1], name
        for column in type(table).COLUMNS:
            assert list(loaded_table.cells(column.name)) == list(table.cells(column.name)), column.name
        assert loaded_table == table, name


@settings(max_examples=200, deadline=None)
@given(st.sampled_from("BHIQ").flatmap(
    lambda typecode: st.tuples(st.just(typecode), st.lists(st.integers(0, 256 ** array(typecode).itemsize - 1),
                                                           max_size=20))))
def test_packed_column_reads_each_row(case: tuple[str, list[int]]) -> None:
    typecode, values = case
    raw = b"".join(value.to_bytes(array(typecode).itemsize, "little") for value in values)
    column = _PackedColumn(binascii.b2a_base64(raw, newline=False).decode(), typecode, len(raw), ["$.t"], "c")

    assert [column[row] for row in range(len(values))] == values
    assert column.decode() == array(typecode, values)


_BASE64_CHARACTERS = "ABab09+/=-_ \né\x00"


def _strict_length(text: str) -> int | None:
    """Return the decoded length of canonically padded base64 text, or None for any other text."""
    # Python 3.11's strict decoder also accepts "=" after a complete group ("AAAA="); the table reader does not.
    if len(text) % 4 or text.endswith("==="):
        return None
    try:
        return len(binascii.a2b_base64(text.encode("ascii"), strict_mode=True))
    except ValueError:
        return None


@settings(max_examples=500, deadline=None)
@given(st.text(_BASE64_CHARACTERS, max_size=12) | st.binary(max_size=9).map(
    lambda raw: binascii.b2a_base64(raw, newline=False).decode()))
def test_base64_check_matches_binascii(text: str) -> None:
    expected = _strict_length(text)
    try:
        length: int | None = _b64_length(text, "column")
    except SchemaError:
        length = None

    assert length == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([1, 2, 4, 8]) | st.just(4), min_size=1, max_size=4).flatmap(
        lambda sizes: st.tuples(
            st.just(sizes),
            st.lists(st.text(_BASE64_CHARACTERS, max_size=12) | st.binary(max_size=9).map(
                lambda raw: binascii.b2a_base64(raw, newline=False).decode()), min_size=len(sizes), max_size=len(sizes)),
        )
    ),
    st.integers(0, 4),
)
def test_packed_texts_check_matches_each(case: tuple[list[int], list[str]], count: int) -> None:
    sizes, texts = case
    expected = all(_strict_length(text) == count * size for text, size in zip(texts, sizes))

    assert _packed_texts_valid(texts, sizes, count) == expected


def test_packed_texts_check_accepts_columns() -> None:
    sizes = [1, 2, 4, 8]
    texts = [binascii.b2a_base64(bytes(range(5 * size)), newline=False).decode() for size in sizes]

    assert _packed_texts_valid(texts, sizes, 5)
    assert not _packed_texts_valid(texts, sizes, 4)
    assert not _packed_texts_valid([*texts[:3], texts[3] + "="], sizes, 5)


def _read(column: _PackedColumn, row: int | None) -> Any:
    try:
        return column.decode() if row is None else column[row]
    except SchemaError as error:
        return str(error)


@settings(max_examples=500, deadline=None)
@given(st.text(_BASE64_CHARACTERS, max_size=12) | st.binary(max_size=9).map(
    lambda raw: binascii.b2a_base64(raw, newline=False).decode()), st.integers(0, 9))
def test_deferred_check_matches_load_check(text: str, count: int) -> None:
    valid = _strict_length(text) == count
    if not _packed_lengths_valid([text], [1], count):
        assert not valid
        return
    column = _PackedColumn(text, "B", count, ["$.nodes[0].routes"], "type")
    rows = [_read(column, row) for row in range(count)]

    if valid:
        expected = binascii.a2b_base64(text, strict_mode=True)
        assert _read(column, None) == array("B", expected)
        assert rows == list(expected)
    else:
        # Each corrupt group fails the rows it holds; a row in an intact group still reads its value.
        assert _read(column, None) == "$.nodes[0].routes.type: invalid base64"
        assert "$.nodes[0].routes.type: invalid base64" in rows


def test_deferred_column_fails_when_read() -> None:
    data = dump_snapshot(ClusterSnapshot((full_node("node-a"),)))
    columns = data["nodes"][0]["routes"]["columns"]
    columns["metric"] = "!" + columns["metric"][1:]

    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.routes\.metric: invalid base64"):
        loads_snapshot(json.dumps(data))
    with columns_checked_when_read():
        routes = loads_snapshot(json.dumps(data)).node("node-a").routes
    assert routes is not None
    assert list(routes.cells("dst_len")) == list(full_node("node-a").routes.cells("dst_len"))  # type: ignore[union-attr]
    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.routes\.metric: invalid base64"):
        routes.cells("metric")
    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.routes\.metric: invalid base64"):
        routes[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 300), max_size=20), st.integers(0, 300))
def test_string_index_check_matches_max(values: list[int], limit: int) -> None:
    index = array("I", values)
    raw = b"".join(value.to_bytes(4, "little") for value in values)

    assert _indexes_below(index, raw, limit) == (not values or max(values) < limit)
