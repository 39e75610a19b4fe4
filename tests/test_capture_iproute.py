"""Parsers of iproute2 and ifconfig output, on real captures and hand-written old formats."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdoctor.capture import ParseError, iproute
from netdoctor.capture.ifconfig import parse_ifconfig
from netdoctor.capture.iproute import (
    parse_bridge_fdb,
    parse_bridge_fdb_json,
    parse_ip_addr,
    parse_ip_addr_json,
    parse_ip_neigh,
    parse_ip_neigh_json,
    parse_ip_route,
    parse_ip_route_json,
)
from netdoctor.model.routes import (
    NTF_MASTER,
    NTF_SELF,
    NUD_STATES,
    RTNH_F_LINKDOWN,
    RTNH_F_ONLINK,
    Route,
    RouteTable,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ip"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def find_route(routes: object, destination: str, table: int = 254) -> Route:
    matches = [route for route in routes if route.destination == destination and route.table == table]  # type: ignore[attr-defined]
    assert len(matches) == 1, f"{destination} in table {table}: {matches}"
    return matches[0]


# ---------------------------------------------------------------------------
# ip addr


def test_addr_detail_text_matches_json() -> None:
    text = parse_ip_addr(fixture("node-d-addr.txt"), "node-d-addr.txt")
    from_json = parse_ip_addr_json(fixture("node-j-d-addr.json"), "node-j-d-addr.json")
    assert [interface.name for interface in text] == [interface.name for interface in from_json]
    for left, right in zip(text, from_json):
        # Text names the peer namespace (link-netns NAME), JSON gives its id.
        assert (left.link_netns is None) == (right.link_netns is None), left.name
        assert left.__class__(**{**_fields(left), "link_netns": right.link_netns}) == right


def _fields(interface: object) -> dict[str, object]:
    return {name: getattr(interface, name) for name in interface.__slots__}  # type: ignore[attr-defined]


def test_addr_detail_kinds_and_vxlan() -> None:
    interfaces = {interface.name: interface for interface in parse_ip_addr(fixture("node-d-addr.txt"), "x")}
    assert interfaces["lo"].kind == "loopback"
    assert interfaces["eth0"].kind == "veth"
    assert interfaces["docker0"].kind == "bridge"
    assert interfaces["veth1"].master == "docker0"
    assert interfaces["veth1"].link_index == interfaces["veth1p"].index
    assert interfaces["veth1"].state == "LOWERLAYERDOWN"
    assert "M-DOWN" in interfaces["veth1"].flags
    flannel = interfaces["flannel.1"]
    assert flannel.kind == "vxlan"
    assert flannel.mtu == 1450
    assert flannel.mac == "0e:00:00:00:00:01"
    assert flannel.vxlan is not None
    assert flannel.vxlan.vni == 1
    assert flannel.vxlan.local == "192.168.100.11"
    assert flannel.vxlan.dev == "eth0"
    assert flannel.vxlan.port == 8472
    assert flannel.vxlan.learning is False
    group = interfaces["vx2"].vxlan
    assert group is not None and group.remote == "239.1.1.1" and group.learning is True


def test_addr_plain_infers_kinds() -> None:
    interfaces = {interface.name: interface for interface in parse_ip_addr(fixture("node-addr.txt"), "x")}
    assert interfaces["lo"].kind == "loopback"
    # Without -d a bridge or VXLAN device is indistinguishable from a NIC.
    assert interfaces["docker0"].kind == "ethernet"
    assert interfaces["flannel.1"].vxlan is None
    assert interfaces["eth0"].link_index == 2
    assert interfaces["eth0"].link_netns == "nd-h1peer"
    eth0 = interfaces["eth0"].addresses
    assert [address.cidr for address in eth0[:3]] == ["192.168.100.11/24", "192.168.100.12/24", "2001:db8:1::1/64"]
    assert eth0[1].flags == ("secondary",)
    assert eth0[0].label == "eth0"
    assert eth0[2].flags == ("nodad",)


OLD_ADDR = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 16436 qdisc noqueue state UNKNOWN
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
    inet6 ::1/128 scope host
       valid_lft forever preferred_lft forever
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP qlen 1000
    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff
    inet 198.51.100.7/24 brd 198.51.100.255 scope global dynamic noprefixroute eth0
       valid_lft 86000sec preferred_lft 86000sec
    inet 198.51.100.8/24 brd 198.51.100.255 scope global secondary eth0:1
3: flannel0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1472 qdisc pfifo_fast state UNKNOWN qlen 500
    link/none
    inet 10.1.15.0/16 scope global flannel0
4: tunl0@NONE: <NOARP,UP,LOWER_UP> mtu 1440 qdisc noqueue state UNKNOWN
    link/ipip 0.0.0.0 brd 0.0.0.0
5: gre1@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1476 qdisc noqueue state UNKNOWN
    link/gre 203.0.113.2 peer 203.0.113.1
    inet 192.0.2.1 peer 192.0.2.2/32 scope global gre1
6: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN
    link/none
"""


def test_addr_old_format_and_link_types() -> None:
    interfaces = {interface.name: interface for interface in parse_ip_addr(OLD_ADDR, "old")}
    assert interfaces["eth0"].addresses[0].flags == ("dynamic", "noprefixroute")
    assert interfaces["eth0"].addresses[0].broadcast == "198.51.100.255"
    assert interfaces["eth0"].addresses[1].label == "eth0:1"
    assert interfaces["flannel0"].kind == "tun"
    assert interfaces["flannel0"].mac is None
    assert interfaces["tunl0"].kind == "ipip"
    assert interfaces["tunl0"].link_index is None
    assert interfaces["gre1"].kind == "gre"
    peer = interfaces["gre1"].addresses[0]
    assert (peer.address, peer.peer, peer.prefixlen) == ("192.0.2.1", "192.0.2.2", 32)
    assert interfaces["wg0"].kind == "unknown"


DETAIL_TUNNELS = """\
7: gre1@NONE: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1476 qdisc noqueue state UNKNOWN group default qlen 1000
    link/gre 203.0.113.2 peer 203.0.113.1 promiscuity 0 minmtu 0 maxmtu 0
    gre remote 203.0.113.1 local 203.0.113.2 ttl inherit key 0.0.0.5 numtxqueues 1
8: flannel0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1472 qdisc fq_codel state UNKNOWN group default qlen 500
    link/none  promiscuity 0
    tun type tun pi off vnet_hdr off persist off
9: ovs-system: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default qlen 1000
    link/ether 5e:21:0e:33:b0:4f brd ff:ff:ff:ff:ff:ff promiscuity 1
    openvswitch numtxqueues 1 numrxqueues 1
"""


def test_addr_detail_tunnels_tun_and_ovs() -> None:
    interfaces = {interface.name: interface for interface in parse_ip_addr(DETAIL_TUNNELS, "detail")}
    gre = interfaces["gre1"]
    assert gre.kind == "gre"
    assert gre.tunnel is not None
    assert (gre.tunnel.remote, gre.tunnel.local, gre.tunnel.ttl, gre.tunnel.key) == ("203.0.113.1", "203.0.113.2", 0, "0.0.0.5")
    assert interfaces["flannel0"].kind == "tun"
    assert interfaces["ovs-system"].kind == "openvswitch"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("    inet 192.0.2.1/24 scope global eth0\n", "before the first interface"),
        ("1: eth0: <UP> qdisc noop\n", "no 'mtu'"),
        ("1: eth0: <UP> mtu 1500\n    inet 192.0.2.300/24 scope global eth0\n", "invalid IP address"),
        ("1: eth0: <UP> mtu 1500\n    inet 192.0.2.1/24 scope global bogus eth0\n", "unknown word 'bogus'"),
        ("1: eth0: <UP> mtu 1500\n    inet 192.0.2.1/33 scope global eth0\n",
         r"prefix length 33 of '192.0.2.1/33' is out of range \(0 to 32\)"),
        ("1: eth0: <UP> mtu 1500\n    inet6 fe80::1/129 scope link\n", r"prefix length 129 .* \(0 to 128\)"),
        ("1: ppp0: <UP> mtu 1500\n    inet 192.0.2.1 peer 192.0.2.2/40 scope global ppp0\n", "prefix length 40"),
        ("1: eth0: <UP> mtu 1500\n    inet 192.0.2.1/24 brd 192.0.2.2555 scope global eth0\n",
         "invalid IP address '192.0.2.2555'"),
        (("1: flannel.1: <UP> mtu 1450\n    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n"
         "    vxlan id 1 local 192.168.100.011 dev eth0 srcport 0 0 dstport 8472\n"),
         "vxlan local: invalid IP address '192.168.100.011'"),
        ("garbage\n", "expected 'N: NAME"),
    ],
)
def test_addr_invalid_input(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as raised:
        parse_ip_addr(text, "broken.txt")
    assert raised.value.source == "broken.txt"
    assert raised.value.line is not None


def test_addr_json_invalid() -> None:
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_ip_addr_json("[{", "x.json")
    with pytest.raises(ParseError, match="ifname"):
        parse_ip_addr_json('[{"ifindex": 1}]', "x.json")


# ---------------------------------------------------------------------------
# ip route


def test_route_text_matches_json() -> None:
    text = parse_ip_route(fixture("node-route-all.txt"), "node-route-all.txt")
    from_json = parse_ip_route_json(fixture("node-j-d-route-all.json"), "node-j-d-route-all.json")
    assert len(text) > 20
    assert list(text) == list(from_json)
    text6 = parse_ip_route(fixture("node-6-route-all.txt"), "node-6-route-all.txt", family=6)
    assert list(text6) == list(parse_ip_route_json(fixture("node-6-j-d-route-all.json"), "x"))


def test_route_values_from_capture() -> None:
    routes = parse_ip_route(fixture("node-route-all.txt"), "x")
    blackhole = find_route(routes, "10.244.1.0/26")
    assert (blackhole.type_name, blackhole.protocol, blackhole.metric) == ("blackhole", "bird", 32)
    assert find_route(routes, "10.244.4.0/26").protocol == "77"
    overlay = find_route(routes, "172.16.2.0/24")
    assert overlay.flags == RTNH_F_ONLINK
    assert (overlay.via, overlay.dev) == ("172.16.2.0", "flannel.1")
    assert find_route(routes, "10.70.0.0/16").flags & RTNH_F_LINKDOWN
    assert find_route(routes, "10.70.0.0/16").scope == 253
    multipath = find_route(routes, "10.9.0.0/16")
    assert [(hop.gateway, hop.dev, hop.weight) for hop in multipath.nexthops] == [
        ("192.168.100.13", "eth0", 2), ("192.168.100.14", "eth0", 1)]
    frr = find_route(routes, "10.244.2.0/26")
    assert (frr.nhid, frr.protocol, frr.via) == (22, "bgp", "192.168.100.13")
    pinned = find_route(routes, "10.71.0.0/16")
    assert pinned.mtu == 1400
    assert pinned.prefsrc
    assert find_route(routes, "10.50.0.0/16", table=100).via == "192.168.100.13"
    assert find_route(routes, "10.62.0.0/16", table=100).type_name == "throw"
    assert find_route(routes, "127.0.0.1/32", table=255).scope == 254
    default = find_route(routes, "0.0.0.0/0")
    assert (default.protocol, default.metric) == ("boot", 0)


OLD_ROUTES = """\
default via 198.51.100.1 dev eth0  proto static  metric 100
10.1.0.0/16 dev flannel0  proto kernel  scope link  src 10.1.15.0
10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink
198.51.100.0/24 dev eth0  proto kernel  scope link  src 198.51.100.7  metric 100
10.3.0.0/16  proto zebra  metric 20
\tnexthop via 198.51.100.2  dev eth0 weight 1
\tnexthop via 198.51.100.3  dev eth0 weight 1 dead linkdown
unreachable 10.99.0.0/16  proto 42
2001:db8::/64 dev eth0  proto kernel  metric 256  expires 86000sec pref medium
"""


def test_route_old_double_spaced_format() -> None:
    routes = parse_ip_route(OLD_ROUTES, "old-routes.txt")
    default = find_route(routes, "0.0.0.0/0")
    assert (default.protocol, default.metric, default.via) == ("static", 100, "198.51.100.1")
    assert find_route(routes, "10.1.0.0/16").scope == 253
    zebra = find_route(routes, "10.3.0.0/16")
    assert zebra.protocol == "zebra"
    assert zebra.nexthops[1].flags == 1 | RTNH_F_LINKDOWN
    # A protocol number with an rt_protos name is stored by name, as netlink readers do.
    assert find_route(routes, "10.99.0.0/16").protocol == "babel"
    assert find_route(routes, "2001:db8::/64").family == 6


def test_route_ipv6_default_without_address() -> None:
    routes = parse_ip_route("default dev eth0 proto kernel metric 1024 pref medium\n", "x")
    assert next(iter(routes)).family == 6
    routes = parse_ip_route("default dev tun0 scope link\n", "x", family=6)
    assert next(iter(routes)).family == 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.0/8 via 192.0.2.1 frobnicate 3\n", "unknown route keyword 'frobnicate'"),
        ("10.0.0.0/8 dev eth0 metric\n", "lacks its value"),
        ("10.0.0.0/33 dev eth0\n", "invalid destination"),
        ("10.0.0.0/8 dev eth0 table custom\n", "unknown routing table name 'custom'"),
        ("\tnexthop via 192.0.2.1 dev eth0\n", "expected 'nexthop"),
        ("10.0.0.0/8 via inet6 2001:db8::1 dev eth0\n", "other address family"),
        ("10.0.0.0/8 encap mpls 100 via 192.0.2.1 dev eth0\n", "encap"),
        ("10.0.0.0/8 metric ten\n", "invalid metric"),
    ],
)
def test_route_invalid_input(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as raised:
        parse_ip_route(text, "routes.txt")
    assert raised.value.line == 1


MULTIPATH_HEAD = """\
default via 198.51.100.1 dev eth0
10.3.0.0/16 proto zebra metric 20
\tnexthop via 198.51.100.2 dev eth0 weight 1
"""


@pytest.mark.parametrize(
    ("nexthop", "message"),
    [
        ("nexthop via 198.51.100.300 dev eth0 weight 1", "invalid IP address '198.51.100.300'"),
        ("nexthop via 2001:db8::1 dev eth0", "'2001:db8::1' is not an IPv4 address"),
        ("nexthop via inet6 2001:db8::1 dev eth0", "other address family"),
        ("nexthop via 198.51.100.3 dev eth0 frobnicate", "unknown word 'frobnicate' in a nexthop line"),
        ("nexthop via 198.51.100.3 dev eth0 weight ten", "invalid weight 'ten': expected a number"),
        ("nexthop via 198.51.100.3 dev eth0 weight", "'weight' without a value in a nexthop"),
        ("nexthop via 198.51.100.3 dev eth0 weight 0", "invalid weight '0': expected 1 to 256"),
        ("nexthop via 198.51.100.3 dev eth0 weight 257", "invalid weight '257': expected 1 to 256"),
    ],
)
def test_route_nexthop_error_names_its_line(nexthop: str, message: str) -> None:
    text = MULTIPATH_HEAD + f"\t{nexthop}\n10.4.0.0/16 dev eth0\n"
    with pytest.raises(ParseError, match=message) as raised:
        parse_ip_route(text, "routes.txt")

    assert raised.value.source == "routes.txt"
    assert raised.value.line == 4
    assert str(raised.value).startswith("routes.txt, line 4: ")


def test_route_error_on_first_line_before_nexthop() -> None:
    # The route's metric does not fit the table and its nexthop is invalid. The route's own line comes first.
    text = "10.3.0.0/16 proto zebra metric 5000000000\n\tnexthop via 198.51.100.2 dev eth0 weight ten\n"
    with pytest.raises(ParseError, match="metric 5000000000 is out of range") as raised:
        parse_ip_route(text, "routes.txt")

    assert raised.value.line == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [("9" * 5000, "far too large"), ("x" * 5000, "expected a number")],
)
def test_route_error_cuts_a_long_value(value: str, problem: str) -> None:
    with pytest.raises(ParseError) as raised:
        parse_ip_route(f"10.0.0.0/8 dev eth0 metric {value}\n", "routes.txt")

    message = str(raised.value)
    assert f"invalid metric '{value[:40]}'... (5,000 characters): {problem}" in message
    assert len(message) < 200


_ROUTE_WORDS = st.lists(st.sampled_from([
    ["via", "192.0.2.1"], ["via", "192.0.2.9"], ["via", "2001:db8::1"], ["via", "300.0.0.1"], ["via", "inet6"],
    ["dev", "eth0"], ["dev", "tunl0"], ["proto", "bird"], ["proto", "12"], ["table", "local"], ["table", "7"],
    ["table", "custom"], ["scope", "link"], ["scope", "far"], ["src", "192.0.2.2"], ["src", "2001:db8::2"],
    ["metric", "100"], ["metric", "5000000000"], ["metric", "ten"], ["onlink"], ["linkdown"], ["offload"],
    ["pref", "medium"], ["mtu", "lock", "1400"], ["mtu"], ["frobnicate", "3"],
]), max_size=4).map(lambda groups: [word for group in groups for word in group])


@st.composite
def _route_lines(draw: st.DrawFn) -> str:
    """Draw route text whose lines often repeat the words after the destination, with invalid words among them."""
    tails = draw(st.lists(_ROUTE_WORDS, min_size=1, max_size=3))
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        head = draw(st.sampled_from([[], ["blackhole"], ["local"]]))
        destination = draw(st.sampled_from(["10.0.0.0/8", "10.1.0.0/26", "default", "2001:db8::/64", "10.0.0.0/33",
                                            "10.0.0.1"]))
        via = draw(st.sampled_from([[], ["via", "192.0.2.3"], ["via", "2001:db8::3"], ["via", "192.0.2.300"]]))
        lines.append(" ".join(head + [destination] + via + draw(st.sampled_from(tails))))
    return "\n".join(lines) + "\n"


@settings(max_examples=400, deadline=None)
@given(_route_lines())
def test_route_tail_cache_matches_line_parse(text: str) -> None:
    # The parser reads the words after a destination and gateway once per distinct sequence. Reading every line
    # in full gives the same routes, or the same error at the same line.
    def line_by_line() -> list[Route]:
        return [
            iproute._route_from_words("routes.txt", line, words, hops, None, None)
            for line, words, hops in iproute._logical_route_lines(text, "routes.txt")
        ]

    try:
        expected: object = list(RouteTable.from_rows(line_by_line()))
    except ParseError as error:
        expected = (error.line, str(error))
    try:
        parsed: object = list(parse_ip_route(text, "routes.txt"))
    except ParseError as error:
        parsed = (error.line, str(error))
    assert parsed == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("table ²", "unknown routing table name '²'"),
        ("scope ²", "unknown scope '²'"),
        ("table " + "7" * 5000, "invalid routing table .7777777.*far too large"),
    ],
    ids=["superscript table", "superscript scope", "5000-digit table"],
)
def test_route_non_ascii_or_huge_number_rejected(words: str, message: str) -> None:
    # str.isdigit accepts superscripts, which int() rejects, and int() rejects over 4,300 digits.
    with pytest.raises(ParseError, match=message) as raised:
        parse_ip_route(f"10.0.0.0/8 dev eth0 {words}\n", "routes.txt")
    assert raised.value.line == 1


def test_route_superscript_protocol_kept_as_name() -> None:
    route = next(iter(parse_ip_route("10.0.0.0/8 dev eth0 proto ²\n", "routes.txt")))
    assert route.protocol == "²"


def test_route_table_names_mapping() -> None:
    routes = parse_ip_route("10.0.0.0/8 dev eth0 table calico\n", "x", table_names={"calico": 200})
    assert next(iter(routes)).table == 200


# ---------------------------------------------------------------------------
# ip neigh and bridge fdb


def test_neigh_text_matches_json() -> None:
    text = parse_ip_neigh(fixture("node-neigh.txt"), "x")
    assert len(text) > 3
    assert text == parse_ip_neigh_json(fixture("node-j-neigh.json"), "y")
    entries = {row.address: row for row in text if row.dev != "docker0" or row.address == "224.0.0.22"}
    assert entries["172.16.2.0"].state == NUD_STATES["PERMANENT"]
    assert entries["172.16.2.0"].mac == "0e:00:00:00:00:02"
    assert entries["2001:db8:1::2"].router == 1


def test_neigh_old_format_states() -> None:
    table = parse_ip_neigh("198.51.100.9 dev eth0  FAILED\n198.51.100.10 dev eth0 lladdr 52:54:00:aa:bb:cc STALE\n", "x")
    rows = {row.address: row for row in table}
    assert rows["198.51.100.9"].lladdr == 0
    assert rows["198.51.100.9"].state == NUD_STATES["FAILED"]
    assert rows["198.51.100.10"].state == NUD_STATES["STALE"]
    with pytest.raises(ParseError, match="unknown word 'bogus'"):
        parse_ip_neigh("198.51.100.9 dev eth0 bogus\n", "x")


def test_fdb_text_matches_json() -> None:
    text = parse_bridge_fdb(fixture("node-fdb.txt"), "x")
    assert text == parse_bridge_fdb_json(fixture("node-j-fdb.json"), "y")
    vtep = [row for row in text if row.dev == "flannel.1"]
    assert len(vtep) == 1
    assert (vtep[0].lladdr, vtep[0].remote, vtep[0].flags) == ("0e:00:00:00:00:02", "192.168.100.12", NTF_SELF)
    assert vtep[0].state == NUD_STATES["PERMANENT"]
    port = [row for row in text if row.dev == "veth1" and row.master]
    assert port[0].master == "docker0"


def test_fdb_learned_and_flag_master() -> None:
    table = parse_bridge_fdb(
        "52:54:00:aa:bb:cc dev veth0 vlan 1 master br0\n"
        "52:54:00:aa:bb:cd dev vxlan0 dst 198.51.100.3 vni 42 port 4789 self master stale\n",
        "x",
    )
    rows = {row.lladdr: row for row in table}
    learned = rows["52:54:00:aa:bb:cc"]
    assert (learned.master, learned.vlan, learned.state) == ("br0", 1, NUD_STATES["REACHABLE"])
    remote = rows["52:54:00:aa:bb:cd"]
    assert (remote.vni, remote.port, remote.flags, remote.state) == (42, 4789, NTF_SELF | NTF_MASTER, NUD_STATES["STALE"])
    with pytest.raises(ParseError, match="invalid MAC"):
        parse_bridge_fdb("zz:00 dev eth0\n", "x")


# ---------------------------------------------------------------------------
# ifconfig

IFCONFIG_OLD = """\
eth0      Link encap:Ethernet  HWaddr 52:54:00:12:34:56
          inet addr:198.51.100.7  Bcast:198.51.100.255  Mask:255.255.255.0
          inet6 addr: fe80::5054:ff:fe12:3456/64 Scope:Link
          UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1
          RX packets:100 errors:0 dropped:0 overruns:0 frame:0

flannel0  Link encap:UNSPEC  HWaddr 00-00-00-00-00-00-00-00-00-00-00-00-00-00-00-00
          inet addr:10.1.15.0  P-t-P:10.1.15.0  Mask:255.255.0.0
          UP POINTOPOINT RUNNING NOARP MULTICAST  MTU:1472  Metric:1

lo        Link encap:Local Loopback
          inet addr:127.0.0.1  Mask:255.0.0.0
          UP LOOPBACK RUNNING  MTU:65536  Metric:1
"""

IFCONFIG_NEW = """\
docker0: flags=4099<UP,BROADCAST,MULTICAST>  mtu 1500
        inet 172.17.0.1  netmask 255.255.0.0  broadcast 172.17.255.255
        ether 02:42:ac:11:00:01  txqueuelen 0  (Ethernet)

eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 9001
        inet 198.51.100.7  netmask 255.255.255.0  broadcast 198.51.100.255
        inet6 2001:db8::7  prefixlen 64  scopeid 0x0<global>
        ether 52:54:00:12:34:56  txqueuelen 1000  (Ethernet)
"""


def test_ifconfig_old_format() -> None:
    interfaces = {interface.name: interface for interface in parse_ifconfig(IFCONFIG_OLD, "ifconfig.txt")}
    eth0 = interfaces["eth0"]
    assert (eth0.mtu, eth0.mac, eth0.state, eth0.kind) == (1500, "52:54:00:12:34:56", "UP", "ethernet")
    assert eth0.addresses[0].cidr == "198.51.100.7/24"
    assert eth0.addresses[0].broadcast == "198.51.100.255"
    assert eth0.addresses[1].scope == "link"
    assert "LOWER_UP" in eth0.flags
    assert interfaces["flannel0"].kind == "tun"
    assert interfaces["flannel0"].addresses[0].prefixlen == 16
    assert interfaces["lo"].kind == "loopback"


def test_ifconfig_new_format() -> None:
    interfaces = {interface.name: interface for interface in parse_ifconfig(IFCONFIG_NEW, "ifconfig.txt")}
    docker0 = interfaces["docker0"]
    assert docker0.flags[0] == "NO-CARRIER"
    assert docker0.state == "DOWN"
    assert docker0.addresses[0].cidr == "172.17.0.1/16"
    assert interfaces["eth0"].mtu == 9001
    assert interfaces["eth0"].addresses[1].cidr == "2001:db8::7/64"


def test_json_vxlan_local_checked() -> None:
    entry = {"ifindex": 4, "ifname": "flannel.1", "flags": ["UP"], "mtu": 1450, "addr_info": [],
             "linkinfo": {"info_kind": "vxlan", "info_data": {"id": 1, "local": "192.168.100.011", "port": 8472}}}

    with pytest.raises(ParseError, match=re.escape("capture.json: interface entry 0, info_data: local: invalid IP "
                                                   "address '192.168.100.011'")):
        parse_ip_addr_json(json.dumps([entry]), "capture.json")


def test_ifconfig_invalid_input() -> None:
    with pytest.raises(ParseError, match="netmask"):
        parse_ifconfig("eth0: flags=1<UP>  mtu 1500\n        inet 192.0.2.1  netmask 255.0.255.0\n", "x")
    with pytest.raises(ParseError, match=r"prefix length 200 of 'fe80::1' on eth0 is out of range \(0 to 128\)"):
        parse_ifconfig("eth0: flags=1<UP>  mtu 1500\n        inet6 fe80::1  prefixlen 200  scopeid 0x20<link>\n", "x")
    with pytest.raises(ParseError, match="broadcast address of eth0: invalid IP address '192.0.2'"):
        parse_ifconfig("eth0: flags=1<UP>  mtu 1500\n        inet 192.0.2.1  netmask 255.255.255.0  "
                       "broadcast 192.0.2\n", "x")
    with pytest.raises(ParseError, match="invalid interface line"):
        parse_ifconfig("???\n", "x")


def test_ip_addr_hex_flags_named() -> None:
    text = (
        "6: flannel0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1472 qdisc pfifo_fast state UNKNOWN group default qlen 500\n"
        "    link/none\n"
        "    inet 172.16.70.0/16 scope global flannel0\n"
        "       valid_lft forever preferred_lft forever\n"
        "    inet6 fe80::4b31:c92f:8cc9:3a22/64 scope link flags 800\n"
        "       valid_lft forever preferred_lft forever\n"
    )

    (interface,) = parse_ip_addr(text, "ip-addr.txt")

    assert interface.addresses[1].flags == ("stable-privacy",)


def test_ip_addr_unknown_hex_flag_rejected() -> None:
    text = (
        "2: eth0: <UP> mtu 1500 state UP\n"
        "    link/ether 52:54:00:0f:0a:c4 brd ff:ff:ff:ff:ff:ff\n"
        "    inet6 2001:db8::1/64 scope global flags 8000\n"
    )

    with pytest.raises(ParseError, match="ip-addr.txt, line 3: unknown address flag bits 0x8000"):
        parse_ip_addr(text, "ip-addr.txt")


def test_ip_route_out_of_range_number_rejected() -> None:
    text = "default via 192.0.2.1 dev eth0\n192.0.2.0/24 dev eth0 scope 300\n"

    with pytest.raises(ParseError, match="ip-route.txt, line 2: scope 300 is out of range"):
        parse_ip_route(text, "ip-route.txt")


_ADDRESS_ENTRY = {"ifindex": 2, "ifname": "eth0", "mtu": 1500, "flags": ["UP"], "operstate": "UP",
                  "addr_info": [{"family": "inet", "local": "10.0.0.1", "prefixlen": 24, "scope": "global"}]}
_ROUTE_ENTRY = {"dst": "10.1.0.0/24", "gateway": "10.0.0.2", "dev": "eth0", "protocol": "bird", "flags": []}
_NEIGHBOUR_ENTRY = {"dst": "10.0.0.2", "dev": "eth0", "lladdr": "02:00:00:00:00:02", "state": ["REACHABLE"]}
_FDB_ENTRY = {"mac": "02:00:00:00:00:02", "ifname": "flannel.1", "dst": "10.0.0.2", "flags": ["self"],
              "state": "permanent"}


def _with(entry: dict[str, object], value: object, *path: str | int) -> str:
    changed = json.loads(json.dumps(entry))
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps([changed])


@pytest.mark.parametrize(("parser", "entry", "path", "value", "message"), [
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("ifname",), 5, "interface entry 0: 'ifname' is 5, expected a string"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("flags",), [1], "'flags' is [1], expected a list of strings"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("operstate",), {}, "'operstate' is {}, expected a string"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("addr_info", 0, "family"), 2, "address 0: 'family' is 2"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("addr_info", 0, "scope"), [0], "'scope' is [0], expected a string or an"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("addr_info", 0, "label"), 7, "'label' is 7, expected a string"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("addr_info",), 7, "'addr_info' is 7, expected a list of objects"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("linkinfo",), 7, "'linkinfo' is 7, expected an object"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("address",), 5, "'address' is 5, expected a string"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("mtu",), -1, "'mtu' is -1, expected an integer from 0 to 2147483647"),
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("ifindex",), 2**70, f"'ifindex' is {2**70}, expected an integer from 1 to"),
    (parse_ip_route_json, _ROUTE_ENTRY, ("dev",), 5, "route entry 0: 'dev' is 5, expected a string"),
    (parse_ip_route_json, _ROUTE_ENTRY, ("table",), [254], "'table' is [254], expected a string or an integer"),
    (parse_ip_route_json, _ROUTE_ENTRY, ("protocol",), -1, "'protocol' is -1, expected a string or an integer from 0"),
    (parse_ip_route_json, _ROUTE_ENTRY, ("protocol",), 1.5, "'protocol' is 1.5"),
    (parse_ip_route_json, _ROUTE_ENTRY, ("type",), 1, "'type' is 1, expected a string"),
    (parse_ip_neigh_json, _NEIGHBOUR_ENTRY, ("dst",), 5, "neighbour entry 0: 'dst' is 5, expected a string"),
    (parse_ip_neigh_json, _NEIGHBOUR_ENTRY, ("dev",), ["eth0"], "'dev' is [\"eth0\"], expected a string"),
    (parse_ip_neigh_json, _NEIGHBOUR_ENTRY, ("state",), 2, "'state' is 2, expected a list of strings"),
    (parse_bridge_fdb_json, _FDB_ENTRY, ("ifname",), 5, "FDB entry 0: 'ifname' is 5, expected a string"),
    (parse_bridge_fdb_json, _FDB_ENTRY, ("dst",), 5, "FDB entry 0: 'dst' is 5, expected a string"),
    (parse_bridge_fdb_json, _FDB_ENTRY, ("vlan",), True, "'vlan' is true, expected a string or an integer"),
])
def test_json_field_of_wrong_type_names_it(parser: Any, entry: dict[str, object], path: tuple[str | int, ...],
                                           value: object, message: str) -> None:
    # str() of a wrong value would give a plausible name ("5", "['eth0']") that no check could tell from a real one.
    with pytest.raises(ParseError, match=re.escape(message)):
        parser(_with(entry, value, *path), "capture.json")


@pytest.mark.parametrize(("parser", "entry", "path", "value"), [
    (parse_ip_addr_json, _ADDRESS_ENTRY, ("addr_info", 0, "scope"), 0),
    (parse_ip_route_json, _ROUTE_ENTRY, ("table",), 254),
    (parse_ip_route_json, _ROUTE_ENTRY, ("scope",), 0),
    (parse_ip_neigh_json, _NEIGHBOUR_ENTRY, ("state",), "STALE"),
    (parse_bridge_fdb_json, _FDB_ENTRY, ("vlan",), 10),
])
def test_json_field_in_its_other_form_is_read(parser: Any, entry: dict[str, object], path: tuple[str | int, ...],
                                              value: object) -> None:
    assert len(parser(_with(entry, value, *path), "capture.json")) == 1


@pytest.mark.parametrize(("path", "value", "message"), [
    (("flags",), [1], ": 'flags' is [1], expected a list of strings"),
    (("flags",), ["onlink", None], ": 'flags' is [\"onlink\", null], expected a list of strings"),
    (("gateway",), 1, ": 'gateway' is 1, expected a string"),
    (("metric",), "high", ": 'metric' is \"high\", expected an integer"),
    (("metric",), True, ": 'metric' is true, expected an integer"),
    (("metric",), -1, ": 'metric' is -1, expected an integer from 0 to 4294967295"),
    (("flags",), False, ": 'flags' is false, expected a list of strings"),
    (("gateway",), [], ": 'gateway' is [], expected a string"),
    (("gateway",), False, ": 'gateway' is false, expected a string"),
    (("prefsrc",), {}, ": 'prefsrc' is {}, expected a string"),
    (("metrics",), {"mtu": 1400}, ": 'metrics' is {\"mtu\": 1400}, expected a list of objects"),
    (("nexthops",), 7, ": 'nexthops' is 7, expected a list of objects"),
    (("nhid",), 1.5, ": 'nhid' is 1.5, expected an integer"),
    (("metrics",), [{"mtu": "1450"}], ", metrics: 'mtu' is \"1450\", expected an integer"),
    (("nexthops",), [{"gateway": 5, "dev": "eth0"}], ", next hop 0: 'gateway' is 5, expected a string"),
])
def test_route_json_field_of_wrong_type_names_it(path: tuple[str, ...], value: object, message: str) -> None:
    # The parser's fast path hands such entries to the checked one, whose error names the field.
    text = json.dumps([_ROUTE_ENTRY, _ROUTE_ENTRY, *json.loads(_with(_ROUTE_ENTRY, value, *path))])
    with pytest.raises(ParseError, match=re.escape(f"route entry 2{message}")):
        parse_ip_route_json(text, "capture.json")


def test_route_json_flag_given_as_one_word() -> None:
    table = parse_ip_route_json(_with(_ROUTE_ENTRY, "onlink", "flags"), "capture.json")

    assert next(iter(table)).flags == RTNH_F_ONLINK


@pytest.mark.parametrize(("value", "message"), [
    ("x", "interface entry 0: 'ifindex' is \"x\", expected an integer"),
    (None, "interface entry 0: no 'ifindex'"),
])
def test_interface_index_of_wrong_type_names_it(value: object, message: str) -> None:
    text = _with(_ADDRESS_ENTRY, value, "ifindex") if value is not None else json.dumps(
        [{key: item for key, item in _ADDRESS_ENTRY.items() if key != "ifindex"}])
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_ip_addr_json(text, "capture.json")


@pytest.mark.parametrize(("parser", "entry", "path", "value", "message"), [
    (parse_ip_route_json, _ROUTE_ENTRY, ("prefsrc",), "bogus", "route entry 0: invalid IP address 'bogus'"),
    (parse_ip_route_json, _ROUTE_ENTRY, ("nexthops",), [{"gateway": "bogus", "dev": "eth0"}],
     "route entry 0, next hop 0: invalid IP address 'bogus'"),
    (parse_ip_neigh_json, _NEIGHBOUR_ENTRY, ("dst",), "bogus", "neighbour entry 0: invalid IP address 'bogus'"),
    (parse_bridge_fdb_json, _FDB_ENTRY, ("dst",), "bogus", "FDB entry 0: invalid IP address 'bogus'"),
])
def test_json_value_error_names_the_entry(parser: Any, entry: dict[str, object], path: tuple[str | int, ...],
                                          value: object, message: str) -> None:
    # In a file of 100,000 routes, an error without the entry's position cannot be found.
    with pytest.raises(ParseError, match=re.escape(f"capture.json: {message}")):
        parser(_with(entry, value, *path), "capture.json")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"10.0.0.0/8 dev eth0 table {'9' * 5000}", "invalid routing table '9999"),
        (f"10.0.0.0/8 dev eth0 scope {'9' * 5000}", "invalid scope '9999"),
        (f"10.0.0.0/8 via {'x' * 5000} dev eth0", "invalid IP address 'xxxx"),
        (f"{'x' * 5000} dev eth0", "invalid destination: invalid IP address 'xxxx"),
        (f"10.0.0.0/8 dev eth0 {'w' * 5000} 1", "unknown route keyword 'wwww"),
        (f"10.0.0.0/8 dev eth0 metric 0x{'f' * 5000}", "metric a number of 20,000 bits is out of range"),
    ],
)
def test_route_errors_stay_short(line: str, message: str) -> None:
    with pytest.raises(ParseError) as raised:
        parse_ip_route(line + "\n", "routes.txt")

    assert message in str(raised.value)
    assert len(str(raised.value)) < 200
    assert raised.value.line == 1


@pytest.mark.parametrize(("text", "line", "message"), [
    ("10.0.0.0/8 via 10.0.0.1 dev eth0 bogus 1\n\tgarbage\n", 1, "unknown route keyword 'bogus'"),
    ("10.0.0.0/8 via 10.0.0.1 dev eth0 metric 99999999999\n\tgarbage\n", 1, "metric 99999999999 is out of range"),
    ("10.0.0.0/8 via 10.0.0.1 dev eth0\n\tgarbage\n", 2, "unexpected indented line 'garbage'"),
    ("\tgarbage\n", 1, "unexpected indented line 'garbage'"),
])
def test_route_line_error_before_stray_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)) as raised:
        parse_ip_route(text, "routes.txt")

    assert raised.value.line == line


@pytest.mark.parametrize(("destination", "message"), [
    ("10.1/24", "invalid IP address '10.1'"),
    ("010.1.0.0/24", "invalid IP address '010.1.0.0'"),
    ("10.1.0.0/+24", "invalid prefix length in '10.1.0.0/+24'"),
    ("10.1.0.0/2_4", "invalid prefix length in '10.1.0.0/2_4'"),
])
def test_route_destination_parsed_strictly(destination: str, message: str) -> None:
    # Parsed leniently, each of these would be a route to another network than the one written.
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_ip_route(f"{destination} via 10.0.0.2 dev eth0\n", "routes.txt")
    with pytest.raises(ParseError, match=re.escape(f"capture.json: route entry 0: invalid destination: {message}")):
        parse_ip_route_json(_with(_ROUTE_ENTRY, destination, "dst"), "capture.json")


@pytest.mark.parametrize("value", ["1_000", "+5", "-1", "\u0661\u0662", "0x", "0x1_0", "0xfg"])
def test_route_number_only_ascii_digits(value: str) -> None:
    with pytest.raises(ParseError, match=re.escape(f"invalid metric {value!r}: expected a number")):
        parse_ip_route(f"10.0.0.0/8 dev eth0 metric {value}\n", "routes.txt")


def test_route_hex_number_read() -> None:
    (route,) = parse_ip_route("10.0.0.0/8 dev eth0 metric 0x1F\n", "routes.txt")

    assert route.metric == 31


def test_route_json_with_too_many_digits() -> None:
    text = f'[{{"dst": "10.0.0.0/8", "dev": "eth0", "metric": {"9" * 5000}}}]'

    with pytest.raises(ParseError, match="a number has more than 4,300 digits"):
        parse_ip_route_json(text, "routes.json")
