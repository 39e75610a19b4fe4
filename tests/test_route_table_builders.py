"""The fast table builders and the fast ``ip -j route`` path give exactly what the row-by-row paths give."""

from __future__ import annotations

import gc
import json
import random
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from route_strategies import routes

from netdoctor.capture import ParseError
from netdoctor.capture.iproute import _json_route, _named, parse_ip_route_json
from netdoctor.model import (
    ClusterSnapshot,
    FdbEntry,
    FdbTable,
    Neighbour,
    NeighbourTable,
    NodeSnapshot,
)
from netdoctor.model.routes import NextHop, Route, RouteTable
from netdoctor.model.serialize import dumps_snapshot
from netdoctor.model.table import gc_paused


def sample_routes() -> list[Route]:
    """Routes of every shape the tables store: next hops with None fields, IPv6, several tables, duplicates."""
    base = Route.make("203.0.113.0/24", gateway="192.0.2.1", dev="eth0", protocol="bird", metric=32)
    return [
        base,
        base,
        base._replace(table=100),
        base._replace(table=4_000_000_000, metric=(1 << 32) - 1),
        Route.make("0.0.0.0/0", gateway="192.0.2.254", dev="eth0", protocol="dhcp", prefsrc="192.0.2.10"),
        Route.make("198.51.100.0/24", type="blackhole", protocol="bird"),
        Route.make("198.51.100.0/26", nexthops=(NextHop("192.0.2.2", "eth0"), NextHop("192.0.2.3", "eth1", 3, 4))),
        Route.make("198.51.100.0/26", nexthops=(NextHop(None, "eth1"),)),
        Route.make("198.51.100.0/26", nexthops=(NextHop(None, None),)),
        Route.make("198.51.100.0/26", nexthops=(NextHop("192.0.2.2", None, 1, 1),)),
        Route.make("192.0.2.0/24", dev="eth0", protocol="kernel", scope=253, prefsrc="192.0.2.10", table=255),
        Route.make("10.244.1.0/24", gateway="10.244.1.0", dev="flannel.1", flags=4, mtu=1450, nhid=22),
        Route.make("2001:db8::/64", dev="eth0", protocol="kernel", metric=256),
        Route.make("2001:db8:1::/48", gateway="fe80::1", dev="eth0", protocol="ra", metric=1024, table=100),
        Route.make("::/0", type="unreachable", dev="lo", metric=(1 << 32) - 1),
        Route.make("2001:db8:2::/64", nexthops=(NextHop("fe80::2", "eth0"), NextHop("fe80::3", "eth1"))),
    ]


def test_from_tuples_equals_from_rows() -> None:
    rows = sample_routes()
    reference = RouteTable.from_rows(rows)

    for seed in range(5):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        plain = [tuple(row) for row in shuffled]
        table = RouteTable.from_tuples(plain)
        assert table == reference
        assert list(table) == list(reference)
        assert table.to_json() == reference.to_json()


def test_from_tuples_snapshot_json_unchanged() -> None:
    rows = sample_routes()
    fast = ClusterSnapshot((NodeSnapshot("n", routes=RouteTable.from_tuples([tuple(row) for row in rows])),))
    slow = ClusterSnapshot((NodeSnapshot("n", routes=RouteTable.from_rows(rows)),))

    assert dumps_snapshot(fast) == dumps_snapshot(slow)


def test_from_tuples_ipv4_only_keeps_u32_columns() -> None:
    rows = [row for row in sample_routes() if row.family == 4]

    table = RouteTable.from_tuples([tuple(row) for row in rows])

    assert table == RouteTable.from_rows(rows)
    assert "u32" in table.to_json()["columns"]["dst"]


def test_from_tuples_empty_and_single() -> None:
    assert RouteTable.from_tuples([]) == RouteTable.empty()
    row = sample_routes()[0]
    assert RouteTable.from_tuples([tuple(row)]) == RouteTable.from_rows([row])


def test_from_tuples_other_tables() -> None:
    neighbours = [
        Neighbour(6, 1 << 100, "eth0", 0x0E0000000001, 0x80, 1),
        Neighbour(4, 0xC0000201, "eth0", 0x0E0000000002, 0x02, 0),
        Neighbour(4, 0xC0000201, "flannel.1", 0, 0x40, 0),
    ]
    fdb = [
        FdbEntry(0x0E0000000002, "flannel.1", "", 4, 0xC0000202, 0, 1, 0, 0x80, 2),
        FdbEntry(0x0E0000000001, "veth1", "cni0", 0, 0, 0, 0, 0, 0x02, 4),
    ]

    assert NeighbourTable.from_tuples(neighbours[::-1]) == NeighbourTable.from_rows(neighbours)
    assert FdbTable.from_tuples(fdb[:]) == FdbTable.from_rows(fdb)


def test_from_tuples_rejects_out_of_range() -> None:
    row = sample_routes()[0]

    with pytest.raises(OverflowError):
        RouteTable.from_tuples([tuple(row._replace(metric=1 << 32))])
    with pytest.raises(OverflowError):
        RouteTable.from_tuples([tuple(row._replace(dst_len=-1))])


def test_from_tuples_rejects_wrong_width() -> None:
    with pytest.raises(ValueError, match="15 fields"):
        RouteTable.from_tuples([tuple(sample_routes()[0])[:-1]])


def test_concat_in_order_joins_columns() -> None:
    rows = sample_routes()
    ipv4 = RouteTable.from_rows(row for row in rows if row.family == 4)
    ipv6 = RouteTable.from_rows(row for row in rows if row.family == 6)

    joined = RouteTable.concat([ipv4, RouteTable.empty(), ipv6])

    assert joined == RouteTable.from_rows(rows)
    assert joined.to_json() == RouteTable.from_rows(rows).to_json()
    assert list(joined) == list(RouteTable.from_rows(rows))


def test_concat_overlapping_tables() -> None:
    rows = sample_routes()
    first = RouteTable.from_rows(rows[::2])
    second = RouteTable.from_rows(rows[1::2])

    assert RouteTable.concat([first, second]) == RouteTable.from_rows(rows)
    assert RouteTable.concat([second, first]) == RouteTable.from_rows(rows)


def test_concat_none_next_hops_at_boundary() -> None:
    base = Route.make("203.0.113.0/24")
    low = RouteTable.from_rows([base._replace(nexthops=(NextHop(None, "eth1"),))])
    high = RouteTable.from_rows([base._replace(nexthops=(NextHop("192.0.2.2", "eth1"),))])

    assert RouteTable.concat([low, high]) == RouteTable.from_rows([*low, *high])
    assert RouteTable.concat([high, low]) == RouteTable.from_rows([*low, *high])


def test_concat_empty_and_single() -> None:
    table = RouteTable.from_rows(sample_routes())

    assert RouteTable.concat([]) == RouteTable.empty()
    assert RouteTable.concat([RouteTable.empty(), table]) == table


@settings(max_examples=80, deadline=None)
@given(st.lists(routes(), max_size=40), st.integers(0, 40))
def test_builders_property(rows: list[Route], split: int) -> None:
    reference = RouteTable.from_rows(rows)

    assert RouteTable.from_tuples([tuple(row) for row in rows]) == reference
    assert RouteTable.concat([RouteTable.from_rows(rows[:split]), RouteTable.from_rows(rows[split:])]) == reference


# ---------------------------------------------------------------------------
# ip -j route: the fast path against the row-by-row path


def slow_parse(items: list[dict[str, Any]]) -> RouteTable:
    """Parse one :class:`Route` per entry, naming the entry in each error as the parser does."""
    routes = []
    for n, item in enumerate(items):
        try:
            routes.append(_json_route("r.json", f"route entry {n}", item, None))
        except ParseError as error:
            raise _named(error, "r.json", f"route entry {n}") from None
    return RouteTable.from_rows(routes)


def outcome(function: Any, *arguments: Any) -> Any:
    """Return the result of a call, or the type and text of the exception it raised."""
    try:
        return function(*arguments)
    except Exception as error:  # noqa: BLE001 - both paths must fail alike, whatever the error
        return type(error), str(error)


#: Entries as ``ip -j route`` prints them, with every key the parser reads.
ROUTE_ITEMS: list[dict[str, Any]] = [
    {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0", "protocol": "dhcp", "prefsrc": "192.0.2.10", "metric": 100, "flags": []},
    {"dst": "192.0.2.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "prefsrc": "192.0.2.10", "flags": []},
    {"dst": "10.244.2.0/24", "gateway": "10.244.2.0", "dev": "flannel.1", "flags": ["onlink"]},
    {"dst": "10.244.3.0/24", "gateway": "10.244.3.0", "dev": "flannel.1", "flags": ["onlink", "linkdown", "offload"]},
    {"type": "blackhole", "dst": "10.244.1.0/26", "protocol": "bird", "metric": 32, "flags": []},
    {"dst": "10.244.4.0/26", "nhid": 22, "gateway": "192.0.2.12", "dev": "eth0", "protocol": "bgp", "metric": 20, "flags": []},
    {"dst": "10.96.0.0/12", "gateway": "192.0.2.1", "dev": "eth0", "table": "100", "protocol": "static", "flags": []},
    {"dst": "198.51.100.7", "dev": "eth0", "table": "local", "type": "local", "protocol": "kernel", "scope": "host", "flags": []},
    {"dst": "203.0.113.0/24", "gateway": "192.0.2.1", "dev": "eth0", "metrics": [{"mtu": 1400}], "flags": []},
    {"dst": "203.0.113.128/25", "protocol": "zebra", "metric": 20, "flags": [],
     "nexthops": [{"gateway": "192.0.2.2", "dev": "eth0", "weight": 1, "flags": []},
                  {"gateway": "192.0.2.3", "dev": "eth1", "weight": 2, "flags": ["onlink"]}]},
    {"dst": "2001:db8::/64", "dev": "eth0", "protocol": "kernel", "metric": 256, "flags": [], "pref": "medium"},
    {"dst": "default", "gateway": "fe80::1", "dev": "eth0", "protocol": "ra", "metric": 1024, "flags": [], "pref": "medium"},
    {"type": "unreachable", "dst": "default", "dev": "lo", "metric": 4294967295, "flags": [], "pref": "medium"},
    {"dst": "2001:db8:5::/64", "table": "200", "protocol": "12", "scope": "global", "dev": "eth0", "flags": [], "pref": "medium"},
]


def test_route_json_fast_path_matches_slow() -> None:
    text = json.dumps(ROUTE_ITEMS)

    table = parse_ip_route_json(text, "r.json")

    assert table == slow_parse(ROUTE_ITEMS)
    assert len(table) == len(ROUTE_ITEMS)
    assert table.to_json() == slow_parse(ROUTE_ITEMS).to_json()


#: Marks a key that a case removes from the entry.
DELETE = "<delete>"


@pytest.mark.parametrize(
    ("position", "change"),
    [
        (0, {"dst": DELETE}),
        (1, {"dst": "192.0.2.0/33"}),
        (1, {"dst": "192.0.2.300/24"}),
        (1, {"dst": "192.0.2.0/x"}),
        (1, {"dst": "192.0.2.7"}),
        (2, {"gateway": "2001:db8::1"}),
        (2, {"gateway": DELETE, "via": {"family": "inet6", "host": "fe80::1"}}),
        (3, {"type": "teleport"}),
        (3, {"table": "red"}),
        (3, {"table": "4294967296"}),
        (4, {"scope": "300"}),
        (4, {"scope": "far"}),
        (4, {"metric": -1}),
        (4, {"metric": "32"}),
        (4, {"metric": True}),
        (5, {"nhid": 1 << 33}),
        (6, {"dev": 7}),
        (6, {"protocol": 186}),
        (6, {"scope": 253}),
        (6, {"flags": "onlink"}),
        (7, {"prefsrc": "2001:db8::1"}),
        (7, {"prefsrc": "not an address"}),
        (8, {"dst": 5}),
        (8, {"metrics": [{"mtu": "1400"}, "lock", {"advmss": 1360}]}),
        (8, {"metrics": 5}),
        (8, {"metrics": [{"mtu": 1 << 32}]}),
        (9, {"nexthops": None}),
        (9, {"nexthops": []}),
        (9, {"nexthops": [{"dev": "eth0"}]}),
        (9, {"nexthops": [{"gateway": "192.0.2.2", "weight": "2", "flags": ["dead", "onlink", "offload"]}]}),
        (9, {"nexthops": ["192.0.2.2"]}),
        (10, {"pref": DELETE, "dst": "default"}),
    ],
)
def test_route_json_odd_entry_matches_slow(position: int, change: dict[str, Any]) -> None:
    items = [dict(item) for item in ROUTE_ITEMS]
    for key, value in change.items():
        if value == DELETE:
            del items[position][key]
        else:
            items[position][key] = value

    fast = outcome(parse_ip_route_json, json.dumps(items), "r.json")
    slow = outcome(slow_parse, items)

    assert fast == slow


def test_route_json_first_error_in_entry_order() -> None:
    items = [dict(item) for item in ROUTE_ITEMS]
    items[2]["metric"] = 1 << 32
    items[9]["dst"] = "bad"

    with pytest.raises(ParseError, match="route entry 2: 'metric' is 4294967296, expected an integer from 0 to"):
        parse_ip_route_json(json.dumps(items), "r.json")


def test_gc_paused_restores_collector() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_gc_paused_across_threads() -> None:
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    inside.wait(10)
    with gc_paused():
        pass
    assert not gc.isenabled()
    release.set()
    worker.join(10)

    assert gc.isenabled()


def test_gc_paused_keeps_collector_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
