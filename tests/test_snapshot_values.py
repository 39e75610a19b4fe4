"""Values that fit a snapshot column's type but that no collector writes are rejected with their place."""

from __future__ import annotations

import binascii
import json
import re
from array import array
from pathlib import Path
from typing import Any

import pytest

from netdoctor import synthetic
from netdoctor.model import ClusterSnapshot, NodeSnapshot, SchemaError
from netdoctor.model.routes import NextHop, Route, RouteTable
from netdoctor.model.serialize import dumps_snapshot, loads_snapshot, read_snapshot


def _snapshot_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dumps_snapshot(synthetic.generate("calico", 3)))
    return data


def _set_column(data: dict[str, Any], name: str, typecode: str, row: int, value: int) -> None:
    columns = data["nodes"][1]["routes"]["columns"]
    values = array(typecode, binascii.a2b_base64(columns[name]))
    values[row] = value
    columns[name] = binascii.b2a_base64(values.tobytes(), newline=False).decode()


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(SchemaError) as raised:
        loads_snapshot(json.dumps(data))
    return str(raised.value)


def test_ipv4_prefix_length_over_32_rejected() -> None:
    data = _snapshot_data()
    _set_column(data, "dst_len", "B", 2, 33)

    assert "$.nodes[1].routes.dst_len: 33 in row 2 is out of range for IPv4 (0 to 32)" in _error(data)


def test_unknown_route_family_rejected() -> None:
    data = _snapshot_data()
    _set_column(data, "family", "B", 0, 7)

    assert "$.nodes[1].routes.family: 7 in row 0 is not 4 (IPv4) or 6 (IPv6)" in _error(data)


def test_unknown_table_field_rejected() -> None:
    data = _snapshot_data()
    data["nodes"][1]["routes"]["frobnicate"] = 1

    assert "$.nodes[1].routes: unknown field(s) frobnicate" in _error(data)


def test_string_index_error_names_row() -> None:
    data = _snapshot_data()
    dev = data["nodes"][1]["routes"]["columns"]["dev"]
    index = array("I", binascii.a2b_base64(dev["index"]))
    index[1] = 99
    dev["index"] = binascii.b2a_base64(index.tobytes(), newline=False).decode()

    assert f"routes.dev.index: row 1 names string 99, but 'values' has {len(dev['values'])}" in _error(data)


def test_overlong_number_rejected(tmp_path: Path) -> None:
    text = dumps_snapshot(synthetic.generate("calico", 3)).replace('"mtu":1500', '"mtu":' + "9" * 5000, 1)
    path = tmp_path / "long.json"
    path.write_text(text)

    with pytest.raises(SchemaError) as raised:
        read_snapshot(path)

    line = text[:text.index("9" * 5000)].count("\n") + 1
    column = text.index("9" * 5000) - text.rfind("\n", 0, text.index("9" * 5000))
    assert f"invalid JSON at line {line} column {column}: Exceeds the limit" in str(raised.value)
    assert "set_int_max_str_digits" not in str(raised.value)


def test_overlong_number_after_digit_string(tmp_path: Path) -> None:
    # A string of digits is not a number, so the error gives the place of the number on the second line.
    path = tmp_path / "long.json"
    path.write_text('{"schema": "' + "1" * 5000 + '",\n "nodes": [' + "9" * 5000 + "]}")

    with pytest.raises(SchemaError, match=r"invalid JSON at line 2 column 12: Exceeds the limit"):
        read_snapshot(path)


@pytest.mark.parametrize(("text", "column"), [("-" + "9" * 5000, 1), ('{"a": [1, -' + "9" * 5000 + "]}", 11)])
def test_overlong_number_place_starts_at_sign(tmp_path: Path, text: str, column: int) -> None:
    path = tmp_path / "long.json"
    path.write_text(text)

    with pytest.raises(SchemaError, match=rf"invalid JSON at line 1 column {column}: Exceeds the limit"):
        read_snapshot(path)


def _flannel_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dumps_snapshot(synthetic.generate("flannel-vxlan", 3)))
    return data


@pytest.mark.parametrize(("table", "column"), [("neighbours", "lladdr"), ("fdb", "mac")])
def test_mac_over_48_bits_rejected(table: str, column: str) -> None:
    data = _flannel_data()
    columns = data["nodes"][1][table]["columns"]
    values = array("Q", binascii.a2b_base64(columns[column]))
    values[1] = 2**64 - 1
    columns[column] = binascii.b2a_base64(values.tobytes(), newline=False).decode()

    assert (f"$.nodes[1].{table}.{column}: 18446744073709551615 in row 1 is out of range for a MAC address "
            "(0 to 281474976710655)") in _error(data)


def test_largest_mac_accepted() -> None:
    data = _flannel_data()
    columns = data["nodes"][1]["fdb"]["columns"]
    values = array("Q", binascii.a2b_base64(columns["mac"]))
    values[-1] = 2**48 - 1
    columns["mac"] = binascii.b2a_base64(values.tobytes(), newline=False).decode()

    assert loads_snapshot(json.dumps(data)).nodes[1].fdb is not None


def test_boolean_row_count_rejected() -> None:
    data = _snapshot_data()
    routes = data["nodes"][1]["routes"]
    routes["count"] = True

    assert "$.nodes[1].routes: expected an object with 'count' and 'columns'" in _error(data)


@pytest.mark.parametrize(("column", "extra", "message"), [
    ("dst", {"extra": 1}, "$.nodes[1].routes.dst: expected an object with one field, 'u32' or 'u128'"),
    ("gateway", {"u128": "AAAA"}, "$.nodes[1].routes.gateway: expected an object with one field, 'u32' or 'u128'"),
    ("dev", {"extra": 1}, "$.nodes[1].routes.dev: unknown field(s) extra"),
])
def test_unknown_column_field_rejected(column: str, extra: dict[str, Any], message: str) -> None:
    data = _snapshot_data()
    data["nodes"][1]["routes"]["columns"][column].update(extra)

    assert message in _error(data)


def _multipath_data() -> dict[str, Any]:
    routes = RouteTable.from_rows([
        Route.make("203.0.113.0/24", nexthops=(NextHop("192.0.2.2", "eth0", 1, 0), NextHop("192.0.2.3", "eth0", 2, 4))),
    ])
    data: dict[str, Any] = json.loads(dumps_snapshot(ClusterSnapshot((NodeSnapshot("node1", routes=routes),))))
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda hops: hops[0][1][0].pop("gateway"), r"\[0\]\[1\]: next hop 0: missing field\(s\) gateway in a next hop$"),
    (lambda hops: hops[0][1].__setitem__(0, 5), (r"\[0\]\[1\]: next hop 0: expected a next hop object with gateway, dev, weight, "
                                                r"flags, got 5$")),
    (lambda hops: hops[0][1][0].update(weight=1.5), r"\[0\]\[1\]: next hop 0: weight: expected an integer from 1 to 256, got 1\.5$"),
    (lambda hops: hops[0][1][0].update(weight="abc"), r"\[0\]\[1\]: next hop 0: weight: expected an integer .*, got 'abc'$"),
    (lambda hops: hops[0][1][0].update(weight=0), r"\[0\]\[1\]: next hop 0: weight: expected an integer .*, got 0$"),
    (lambda hops: hops[0][1][0].update(foo=1), r"\[0\]\[1\]: next hop 0: unknown field\(s\) foo in a next hop"),
    (lambda hops: hops[0][1][0].update(dev=4), r"\[0\]\[1\]: next hop 0: dev: expected a string or null, got 4$"),
    (lambda hops: hops[0].__setitem__(0, "0"), (r"\[0\]\[0\]: expected a row of the table, an integer from 0 to 0, "
                                              r"got '0'$")),
    (lambda hops: hops.append([0, []]), r"\[1\]\[0\]: row 0 has a value already; give each row once$"),
    (lambda hops: hops.append([0]), r"\[1\]: expected a pair \[row, value\]$"),
    (lambda hops: hops[0][1][1].update(weight=0), r"\[0\]\[1\]: next hop 1: weight: expected an integer .*, got 0$"),
    (lambda hops: hops[0][1][1].update(gateway="not-an-ip"), (r"\[0\]\[1\]: next hop 1: gateway: expected an IPv4 "
                                                            r"or IPv6 address, got 'not-an-ip'$")),
    (lambda hops: hops[0].__setitem__(1, 5), r"\[0\]\[1\]: expected a list of next hop objects, got 5$"),
    (lambda hops: hops[0].__setitem__(1, hops[0][1][0]), (r"\[0\]\[1\]: expected a list of next hop objects, got an "
                                                         r"object$")),
])
def test_bad_nexthop_names_its_place(change: Any, message: str) -> None:
    data = _multipath_data()
    change(data["nodes"][0]["routes"]["extras"]["nexthops"])

    assert re.search(r"\$\.nodes\[0\]\.routes\.extras\.nexthops" + message, _error(data))


def test_nexthops_not_a_list() -> None:
    data = _multipath_data()
    data["nodes"][0]["routes"]["extras"]["nexthops"] = {}

    assert _error(data).endswith("$.nodes[0].routes.extras.nexthops: expected a list of [row, value] pairs")


def test_multipath_round_trip() -> None:
    data = _multipath_data()

    assert json.loads(dumps_snapshot(loads_snapshot(json.dumps(data)))) == data


def test_nexthop_of_other_family_rejected() -> None:
    data = _multipath_data()
    data["nodes"][0]["routes"]["extras"]["nexthops"][0][1][1]["gateway"] = "2001:db8::1"

    assert _error(data).endswith("$.nodes[0].routes.extras.nexthops: next hop 1 of row 0: gateway '2001:db8::1' is "
                                 "not an IPv4 address like the route's")
