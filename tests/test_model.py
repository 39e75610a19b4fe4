"""The snapshot model: JSON round trip, schema rejection and columnar table equality."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from route_strategies import routes

from netdoctor.model import (
    Address,
    BgpSession,
    ClusterSnapshot,
    DockerDaemon,
    EtcdData,
    FdbEntry,
    FdbTable,
    FlannelSubnetEnv,
    Gap,
    Interface,
    IptablesChain,
    IptablesMatch,
    IptablesOption,
    IptablesRule,
    IptablesRuleset,
    IptablesTable,
    KubeNode,
    Neighbour,
    NeighbourTable,
    NextHop,
    NodeSnapshot,
    OvsBridge,
    OvsInterface,
    OvsPort,
    Provenance,
    Route,
    RouteTable,
    SchemaError,
    Sysctls,
    TunnelInfo,
    VxlanInfo,
)
from netdoctor.model.addr import AddressError, parse_ip, parse_mac, parse_prefix, quoted_text
from netdoctor.model.serialize import (
    SNAPSHOT_SCHEMA,
    dump_snapshot,
    dumps_snapshot,
    load_snapshot,
    loads_snapshot,
)
from netdoctor.model.table import decimal_value


def full_node(name: str) -> NodeSnapshot:
    """A node with every part filled, IPv4 and IPv6, and a multipath route."""
    interfaces = (
        Interface("lo", 1, "loopback", "UNKNOWN", 65536, ("LOOPBACK", "UP"), addresses=(Address(4, "127.0.0.1", 8, "host"),)),
        Interface(
            "eth0", 2, "veth", "UP", 1500, ("BROADCAST", "UP"), mac="02:00:00:00:00:01", link_index=7,
            link_netns="lan", addresses=(Address(4, "192.0.2.1", 24, broadcast="192.0.2.255"), Address(6, "2001:db8::1", 64)),
        ),
        Interface(
            "flannel.1", 5, "vxlan", "UNKNOWN", 1450, ("UP",), mac="0e:00:00:00:00:01",
            vxlan=VxlanInfo(1, local="192.0.2.1", port=8472, dev="eth0", learning=False),
        ),
        Interface("gre1", 6, "gre", "UNKNOWN", 1476, ("UP",), tunnel=TunnelInfo("192.0.2.1", "192.0.2.3", ttl=64)),
        Interface("docker0", 3, "bridge", "DOWN", 1500, ("BROADCAST",), addresses=(Address(4, "203.0.113.1", 24),)),
    )
    routes = RouteTable.from_rows([
        Route.make("192.0.2.0/24", dev="eth0", protocol="kernel", scope=253, prefsrc="192.0.2.1"),
        Route.make("default", gateway="192.0.2.254", dev="eth0", metric=100),
        Route.make("198.51.100.0/24", type="blackhole", protocol="bird", metric=32),
        Route.make("203.0.113.0/24", nexthops=(NextHop("192.0.2.2", "eth0", 1, 0), NextHop("192.0.2.3", "eth0", 2, 4))),
        Route.make("2001:db8:1::/48", gateway="2001:db8::2", dev="eth0", protocol="bgp", nhid=22),
        Route.make("192.0.2.1", type="local", table=255, dev="eth0", protocol="kernel", scope=254, mtu=1400),
    ])
    neighbours = NeighbourTable.from_rows([
        Neighbour(4, parse_ip("192.0.2.2")[1], "eth0", parse_mac("02:00:00:00:00:02"), 0x02, 0),
        Neighbour(6, parse_ip("2001:db8::2")[1], "eth0", parse_mac("02:00:00:00:00:02"), 0x80, 1),
    ])
    fdb = FdbTable.from_rows([
        FdbEntry(parse_mac("0e:00:00:00:00:02"), "flannel.1", "", 4, parse_ip("192.0.2.2")[1], 0, 0, 0, 0x80, 0x02),
        FdbEntry(parse_mac("02:42:ac:11:00:02"), "veth0", "docker0", 0, 0, 1, 0, 0, 0x02, 0x04),
    ])
    rule = IptablesRule(
        "INPUT", 5, "-p icmp -j REJECT --reject-with icmp-host-prohibited", protocol="icmp",
        source="198.51.100.0/24", source_negated=True,
        matches=(IptablesMatch("icmp", (IptablesOption("--icmp-type", ("8",)),)),),
        target="REJECT", target_options=(IptablesOption("--reject-with", ("icmp-host-prohibited",)),),
    )
    iptables = IptablesRuleset(4, (IptablesTable("filter", (IptablesChain("INPUT", "ACCEPT", 10, 840),), (rule,),
                                                 rule_packets=(3,), rule_bytes=(252,)),))
    return NodeSnapshot(
        name=name,
        interfaces=interfaces,
        routes=routes,
        neighbours=neighbours,
        fdb=fdb,
        iptables=iptables,
        ip6tables=IptablesRuleset(6),
        sysctls=Sysctls((("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "2"))),
        flannel_env=FlannelSubnetEnv("10.244.0.0/16", "10.244.1.1/24", 1450, True, (("FLANNEL_MTU", "1450"),)),
        docker=DockerDaemon(bip="203.0.113.1/24", mtu=1450, raw='{"bip": "203.0.113.1/24"}'),
        ovs=(OvsBridge("br-int", (OvsPort("gre1", (OvsInterface("gre1", "gre", (("remote_ip", "192.0.2.3"),)),)),), "netdev"),),
        bgp=(BgpSession("bird", "n2", "Established", neighbor="192.0.2.2", since="12:00:00"),),
        provenance=(Provenance("routes", "ip -j -d route show table all"),),
        extra_files=("etc/cni/net.d/10-flannel.conflist",),
        meta=(("iproute2", "6.1.0"),),
    )


def full_snapshot() -> ClusterSnapshot:
    return ClusterSnapshot(
        nodes=(full_node("node-b"), full_node("node-a"), NodeSnapshot("node-c")),
        etcd=EtcdData((("/coreos.com/network/config", '{"Network": "10.244.0.0/16"}'),), "http://127.0.0.1:2379 v3"),
        kube_nodes=(KubeNode("node-a", ("10.244.1.0/24",), ("192.0.2.1",), (("flannel.alpha.coreos.com/public-ip", "192.0.2.1"),)),),
        gaps=(Gap("node-c", "routes", "ip is not installed"), Gap(None, "etcd", "timed out")),
        source="netns",
        collected_at="2026-01-01T00:00:00+00:00",
    )


# --- round trip ----------------------------------------------------------------------------------


def test_snapshot_round_trip() -> None:
    snapshot = full_snapshot()
    loaded = loads_snapshot(dumps_snapshot(snapshot))

    assert loaded == snapshot
    assert loaded.node_names == ("node-a", "node-b", "node-c")
    assert loaded.node("node-c").routes is None
    assert dumps_snapshot(loaded) == dumps_snapshot(snapshot)


def test_round_trip_keeps_table_rows() -> None:
    node = loads_snapshot(dumps_snapshot(full_snapshot())).node("node-a")

    assert node.routes is not None
    described = sorted(route.describe() for route in node.routes)
    assert "blackhole 198.51.100.0/24 proto bird metric 32" in described
    multipath = [route for route in node.routes if route.nexthops]
    assert multipath[0].nexthops == (NextHop("192.0.2.2", "eth0", 1, 0), NextHop("192.0.2.3", "eth0", 2, 4))
    ipv6 = [route for route in node.routes if route.family == 6]
    assert ipv6[0].destination == "2001:db8:1::/48"
    assert ipv6[0].via == "2001:db8::2"


def test_empty_parts_differ_from_absent() -> None:
    empty = NodeSnapshot("n1", interfaces=(), routes=RouteTable.empty())
    loaded = loads_snapshot(dumps_snapshot(ClusterSnapshot(nodes=(empty,)))).node("n1")

    assert loaded.interfaces == ()
    assert loaded.routes is not None
    assert len(loaded.routes) == 0
    assert loaded.neighbours is None


def test_dump_starts_with_schema() -> None:
    data = dump_snapshot(full_snapshot())

    assert next(iter(data)) == "schema"
    assert data["schema"] == SNAPSHOT_SCHEMA


# --- schema rejection ----------------------------------------------------------------------------


def dumped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dumps_snapshot(full_snapshot()))
    return data


def reject(data: Any) -> str:
    with pytest.raises(SchemaError) as raised:
        load_snapshot(data, "case.json")
    return str(raised.value)


def test_rejects_wrong_schema_version() -> None:
    data = dumped()
    data["schema"] = "netdoctor.snapshot/4"

    message = reject(data)
    assert "netdoctor.snapshot/4" in message
    assert "netdoctor collect -o FILE" in message


def test_rejects_missing_schema() -> None:
    data = dumped()
    del data["schema"]

    assert "the 'schema' key is missing" in reject(data)


def test_rejects_non_object() -> None:
    assert "expected a JSON object" in reject([1, 2])


def test_rejects_unknown_field() -> None:
    data = dumped()
    data["nodes"][0]["interfaces"][0]["colour"] = "red"

    assert "$.nodes[0].interfaces[0]: unknown field(s) colour" in reject(data)


def test_rejects_wrong_type() -> None:
    data = dumped()
    data["nodes"][0]["interfaces"][1]["mtu"] = "1500"

    assert "$.nodes[0].interfaces[1].mtu: expected an integer" in reject(data)


def test_rejects_bool_as_integer() -> None:
    data = dumped()
    data["nodes"][0]["interfaces"][1]["mtu"] = True

    assert "expected an integer" in reject(data)


def test_rejects_missing_required_field() -> None:
    data = dumped()
    del data["nodes"][0]["interfaces"][0]["mtu"]

    assert "$.nodes[0].interfaces[0]" in reject(data)


def test_rejects_bad_base64_column() -> None:
    data = dumped()
    data["nodes"][0]["routes"]["columns"]["metric"] = "not base64!"

    assert "$.nodes[0].routes.metric: invalid base64" in reject(data)


def test_rejects_column_count_mismatch() -> None:
    data = dumped()
    data["nodes"][0]["routes"]["count"] += 1

    assert "rows, expected" in reject(data)


def test_rejects_missing_column() -> None:
    data = dumped()
    del data["nodes"][0]["neighbours"]["columns"]["lladdr"]

    assert "$.nodes[0].neighbours.lladdr: column missing" in reject(data)


def test_rejects_string_index_out_of_range() -> None:
    data = dumped()
    data["nodes"][0]["routes"]["columns"]["dev"]["values"] = []

    assert "names string 0, but 'values' has 0" in reject(data)


def test_rejects_duplicate_node_names() -> None:
    data = dumped()
    data["nodes"][1]["name"] = data["nodes"][0]["name"]

    assert f"duplicate node name(s) {data['nodes'][0]['name']!r}" in reject(data)


def test_rejects_invalid_json_text() -> None:
    with pytest.raises(SchemaError) as raised:
        loads_snapshot('{"schema": ', "cut.json")

    assert "cut.json: invalid JSON at line 1" in str(raised.value)


# --- table equality ------------------------------------------------------------------------------


def sample_routes() -> list[Route]:
    return [
        Route.make("192.0.2.0/24", dev="eth0", protocol="kernel", scope=253),
        Route.make("198.51.100.0/24", gateway="192.0.2.2", dev="eth0"),
        Route.make("2001:db8::/32", dev="eth0", protocol="kernel"),
        Route.make("203.0.113.0/24", nexthops=(NextHop("192.0.2.2", "eth0"),)),
    ]


def test_table_equal_in_any_order() -> None:
    rows = sample_routes()
    forward = RouteTable.from_rows(rows)
    backward = RouteTable.from_rows(reversed(rows))

    assert forward == backward
    assert list(forward) == list(backward)
    assert dumps_snapshot(ClusterSnapshot((NodeSnapshot("n", routes=forward),))) == dumps_snapshot(
        ClusterSnapshot((NodeSnapshot("n", routes=backward),))
    )


def test_table_order_with_none_next_hops() -> None:
    base = Route.make("203.0.113.0/24")
    rows = [
        base._replace(nexthops=(NextHop(None, "eth1"),)),
        base._replace(nexthops=(NextHop("192.0.2.2", "eth1"),)),
        base._replace(nexthops=(NextHop(None, None),)),
    ]

    forward = RouteTable.from_rows(rows)
    backward = RouteTable.from_rows(reversed(rows))

    assert forward == backward
    assert [route.nexthops[0] for route in forward] == [
        NextHop(None, None), NextHop(None, "eth1"), NextHop("192.0.2.2", "eth1")
    ]


def test_table_differs_by_one_field() -> None:
    rows = sample_routes()
    changed = [*rows[:-1], rows[-1]._replace(metric=5)]

    assert RouteTable.from_rows(rows) != RouteTable.from_rows(changed)
    assert RouteTable.from_rows(rows) != RouteTable.from_rows(rows[:-1])


def test_table_differs_by_extras() -> None:
    rows = sample_routes()
    changed = [*rows[:-1], rows[-1]._replace(nexthops=(NextHop("192.0.2.3", "eth0"),))]

    assert RouteTable.from_rows(rows) != RouteTable.from_rows(changed)


def test_tables_of_different_kinds_differ() -> None:
    assert RouteTable.empty() != NeighbourTable.empty()


def test_table_column_and_indexing() -> None:
    table = RouteTable.from_rows(sample_routes())

    assert len(table) == 4
    assert table[-1] == table[3]
    assert sorted(table.column("dev")) == ["", "eth0", "eth0", "eth0"]
    with pytest.raises(IndexError):
        table[4]
    with pytest.raises(KeyError):
        table.column("colour")


@settings(max_examples=60, deadline=None)
@given(st.lists(routes(), max_size=30))
def test_route_table_round_trip_property(rows: list[Route]) -> None:
    table = RouteTable.from_rows(rows)
    snapshot = ClusterSnapshot((NodeSnapshot("n", routes=table),))
    loaded = loads_snapshot(dumps_snapshot(snapshot)).node("n").routes

    assert loaded == table
    assert Counter(loaded or ()) == Counter(rows)


def test_missing_required_field_named() -> None:
    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]: missing required field\(s\) name"):
        loads_snapshot('{"schema": "netdoctor.snapshot/1", "nodes": [{}]}', "f.json")


def _first_address(data: dict[str, Any]) -> dict[str, Any]:
    for interface in data["nodes"][0]["interfaces"]:
        if interface.get("addresses"):
            address: dict[str, Any] = interface["addresses"][0]
            return address
    raise AssertionError("the sample snapshot has no address")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("address", "10.0.0.999", "invalid IP address '10.0.0.999'"),
        ("family", 7, "7 is not 4 (IPv4) or 6 (IPv6)"),
        ("prefixlen", 99, "prefixlen: 99 is out of range"),
    ],
)
def test_rejects_bad_address(field: str, value: Any, message: str) -> None:
    data = dumped()
    _first_address(data)[field] = value

    assert message in reject(data)


# inet_aton reads these as 10.0.0.4, 8.0.0.1 (octal), 10.0.0.1, 10.0.0.1 and 10.0.0.1.
@pytest.mark.parametrize("text", ["10.4", "010.0.0.1", "167772161", "0x0a.0.0.1", "10.0.0.1 "])
def test_ipv4_address_strict_dotted_quad(text: str) -> None:
    with pytest.raises(AddressError, match=re.escape(f"invalid IP address {text!r}")):
        parse_ip(text)


@pytest.mark.parametrize("length", [" 24", "+24", "2_4", "\u0662\u0664", "24 "])
def test_prefix_length_is_ascii_digits(length: str) -> None:
    with pytest.raises(AddressError, match="invalid prefix length"):
        parse_prefix(f"10.0.0.0/{length}")


def test_snapshot_address_in_octal_rejected() -> None:
    data = dumped()
    _first_address(data)["address"] = "010.0.0.1"

    assert "invalid IP address '010.0.0.1'" in reject(data)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("peer", "10.0.0.02", "addresses[0].peer: invalid IP address '10.0.0.02'"),
    ("broadcast", "10.255", "addresses[0].broadcast: invalid IP address '10.255'"),
    ("broadcast", "ff02::1", "addresses[0].broadcast: 'ff02::1' is not an IPv4 address"),
])
def test_address_peer_broadcast_checked(field: str, value: str, message: str) -> None:
    data = dumped()
    address = _first_address(data)
    address[field] = value
    address["family"] = 4
    address["address"] = "10.0.0.1"

    assert message in reject(data)


@pytest.mark.parametrize(("change", "message"), [
    (lambda data: data["nodes"][0]["interfaces"][2]["vxlan"].update(local="192.0.2.01"),
     "nodes[0].interfaces[2].vxlan.local: invalid IP address '192.0.2.01'"),
    (lambda data: data["nodes"][0]["interfaces"][3]["tunnel"].update(remote="192.0.2"),
     "nodes[0].interfaces[3].tunnel.remote: invalid IP address '192.0.2'"),
    (lambda data: data["iptables_rules"][0].update(source="198.51.100/24"),
     "$.iptables_rules[0].source: invalid IP address '198.51.100'"),
])
def test_snapshot_endpoint_addresses_checked(change: Any, message: str) -> None:
    data = dumped()
    change(data)

    assert message in reject(data)


def test_snapshot_masked_rule_source_loads() -> None:
    data = dumped()
    data["iptables_rules"][0]["source"] = "10.0.1.0/255.0.255.0"

    loaded = load_snapshot(data, "case.json")

    assert loaded.nodes[0].iptables is not None
    assert loaded.nodes[0].iptables.tables[0].rules[0].source == "10.0.1.0/255.0.255.0"


def test_docker_bip_checked() -> None:
    data = dumped()
    data["nodes"][0]["docker"] = {"bip": "172.17/16"}

    assert "nodes[0].docker.bip: invalid IP address '172.17'" in reject(data)


def test_kube_node_cidr_checked() -> None:
    data = dumped()
    data["kube_nodes"] = [{"name": "n1", "pod_cidrs": ["10.244.0.0/24", "10.244.1.0/+24"]}]

    assert "$.kube_nodes[0].pod_cidrs[1]: invalid prefix length in '10.244.1.0/+24'" in reject(data)


def test_long_mtu_shortened_in_error() -> None:
    data = dumped()
    data["nodes"][0]["interfaces"][0]["mtu"] = int("9" * 401)

    message = reject(data)

    assert "mtu: 999999999999... (401 digits) is out of range (0 to" in message
    assert "9" * 30 not in message


@pytest.mark.parametrize(
    ("text", "limit", "quoted"),
    [
        ("a" * 40, None, repr("a" * 40)),
        ("a" * 41, None, f"{'a' * 40!r}... (41 characters)"),
        ("b" * 120, 120, repr("b" * 120)),
        ("b" * 1500, 120, f"{'b' * 120!r}... (1,500 characters)"),
    ],
    ids=["40 default", "41 default", "120 limit", "1500 limit"],
)
def test_quoted_text_cuts_at_limit(text: str, limit: int | None, quoted: str) -> None:
    result = quoted_text(text) if limit is None else quoted_text(text, limit)

    assert result == quoted


def test_rejects_negative_mtu() -> None:
    data = dumped()
    data["nodes"][0]["interfaces"][0]["mtu"] = -1

    assert "mtu: -1 is out of range" in reject(data)


@pytest.mark.parametrize("name", ["", "evil\nERROR", "bad name", "esc\x1b[31m"])
def test_rejects_unprintable_node_name(name: str) -> None:
    data = dumped()
    data["nodes"][0]["name"] = name

    assert "$.nodes[0].name: invalid node name" in reject(data)


def test_rejects_partial_column_bytes() -> None:
    data = dumped()
    data["nodes"][0]["routes"]["columns"]["metric"] = base64.b64encode(b"abc").decode()

    assert "routes.metric: 3 bytes is not a whole number of 4-byte values" in reject(data)


def test_rejects_unknown_route_column() -> None:
    data = dumped()
    data["nodes"][0]["routes"]["columns"]["bogus"] = ""

    assert "unknown column(s) bogus" in reject(data)


def test_rejects_negative_row_count() -> None:
    data = dumped()
    data["nodes"][0]["routes"]["count"] = -1

    assert "routes.count: -1 is negative" in reject(data)


def test_rejects_deep_nesting() -> None:
    with pytest.raises(SchemaError, match="case.json: invalid JSON: nested too deeply"):
        loads_snapshot('{"schema": "netdoctor.snapshot/1", "nodes": ' + "[" * 100_000, "case.json")


def test_truncated_json_message_reads_whole() -> None:
    with pytest.raises(SchemaError) as raised:
        loads_snapshot('{"schema": "netdoctor.snapshot/1", "source": "cut', "case.json")

    assert str(raised.value).endswith("Unterminated string starting")


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("4294967296", 4294967296), ("", None), ("-1", None), ("1.5", None), ("²", None), ("٣", None),
     ("9" * 5000, None)],
)
def test_decimal_value_reads_ascii_digits_only(text: str, value: int | None) -> None:
    assert decimal_value(text) == value
