"""Parity: netlink (pyroute2), ``ip -j`` and text parsers read the same kernel state alike.

A namespace is built to stand for a flannel VXLAN node with every route form
the checks read. The three readers must agree field by field; where a text
form lacks a field (``ip addr`` without ``-d`` has no kind or VXLAN details,
text names the peer namespace where netlink gives its id) the test compares
what the text has and says so.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import nslib
import pytest

from netdoctor.capture.iproute import (
    parse_bridge_fdb,
    parse_ip_addr,
    parse_ip_neigh,
    parse_ip_route,
)
from netdoctor.collectors import netlink
from netdoctor.model.routes import RouteTable
from netdoctor.target import Target

pytestmark = [nslib.needs_root, pytest.mark.netns]

SETUP = """
sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip link add eth0 type veth peer name lan0
ip link set lan0 netns {peer}
ip -n {peer} link set lan0 up
ip addr add 192.168.100.11/24 dev eth0
ip addr add 192.168.100.12/24 dev eth0
ip addr add 2001:db8:1::1/64 dev eth0
ip link set eth0 up
ip link add docker0 type bridge
ip addr add 172.16.1.1/24 dev docker0
ip link set docker0 up
ip link add veth1 type veth peer name veth1p
ip link set veth1 master docker0 up
ip link set veth1p up
ip link add vethx type veth peer name vethxp
ip link set vethx up
ip link add flannel.1 type vxlan id 1 local 192.168.100.11 dev eth0 dstport 8472 nolearning
ip link set flannel.1 address 0e:00:00:00:00:01
ip addr add 172.16.1.0/32 dev flannel.1
ip link set flannel.1 up
ip neigh replace 172.16.2.0 lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent
ip neigh replace 2001:db8:1::2 lladdr 02:00:00:00:00:21 dev eth0 nud permanent router
bridge fdb replace 0e:00:00:00:00:02 dev flannel.1 dst 192.168.100.12 self permanent
ip route replace 172.16.2.0/24 via 172.16.2.0 dev flannel.1 onlink
ip route add blackhole 10.244.1.0/26 proto bird metric 32
ip route add 10.244.3.0/26 via 192.168.100.13 dev eth0 proto bird metric 32
ip route add 10.244.4.0/26 via 192.168.100.13 dev eth0 proto 77
ip route add 10.9.0.0/16 nexthop via 192.168.100.13 dev eth0 weight 2 nexthop via 192.168.100.14 dev eth0 weight 1
ip nexthop add id 22 via 192.168.100.13 dev eth0
ip route add 10.244.2.0/26 nhid 22 proto bgp metric 20
ip route add 2001:db8:2::/64 via 2001:db8:1::2 dev eth0 metric 100
ip route add 10.50.0.0/16 via 192.168.100.13 dev eth0 table 100
ip route add throw 10.62.0.0/16 table 100
ip route add unreachable 10.60.0.0/16
ip route add prohibit 10.61.0.0/16
ip route add 10.70.0.0/16 dev vethx
ip route add 10.71.0.0/16 via 192.168.100.1 dev eth0 mtu lock 1400 src 192.168.100.11
ip route add default via 192.168.100.1 dev eth0
"""


def build_node(node: nslib.Namespace, peer: nslib.Namespace) -> None:
    """Build the flannel-like node state in ``node``, with its underlay peer in ``peer``."""
    for command in SETUP.format(peer=peer.name).strip().splitlines():
        node.run(command)


def settled_read(netns: str) -> dict[str, Any]:
    """Read with pyroute2 once the state has stopped changing.

    The kernel's linkwatch applies carrier changes up to 1 s late, so the read
    waits 1.2 s and then until four reads 0.1 s apart agree.
    """
    time.sleep(1.2)
    previous = netlink.read_with_pyroute2(netns)
    unchanged = 0
    for _ in range(50):
        time.sleep(0.1)
        current = netlink.read_with_pyroute2(netns)
        unchanged = unchanged + 1 if current == previous else 0
        if unchanged == 3:
            return current
        previous = current
    raise AssertionError(f"state of {netns} did not settle in 5 s")


def text_of(node: nslib.Namespace, command: str) -> str:
    return node.run(command).stdout


def route_set(table: RouteTable) -> list[str]:
    return sorted(route.describe() + f" [{route.family} {route.table} {route.type} {route.scope} {route.flags} {route.nhid}]" for route in table)


def test_three_readers_agree() -> None:
    with nslib.namespaces("node", "peer") as (node, peer):
        build_node(node, peer)
        live = settled_read(node.name)
        part = netlink.collect(Target("node", netns=node.name))
        assert part.gaps == []
        from_json = part.values

        # ip -j against netlink: every part equal.
        assert route_set(from_json["routes"]) == route_set(live["routes"])
        for name in netlink.PARTS:
            assert from_json[name] == live[name], name

        # ip -d addr text: equal except the peer namespace, named in text and numbered in netlink.
        interfaces = parse_ip_addr(text_of(node, "ip -d addr show"), "ip -d addr")
        assert [interface.name for interface in interfaces] == [interface.name for interface in live["interfaces"]]
        for text_interface, live_interface in zip(interfaces, live["interfaces"]):
            assert (text_interface.link_netns is None) == (live_interface.link_netns is None), live_interface.name
            assert replace(text_interface, link_netns=live_interface.link_netns) == live_interface

        # ip addr text without -d: no kind for virtual devices and no VXLAN details; the rest is equal.
        plain = parse_ip_addr(text_of(node, "ip addr show"), "ip addr")
        for text_interface, live_interface in zip(plain, live["interfaces"]):
            without_details = replace(live_interface, kind=text_interface.kind, vxlan=None, tunnel=None,
                                      link_netns=text_interface.link_netns)
            assert text_interface == without_details, live_interface.name
        assert {interface.name: interface.kind for interface in plain}["lo"] == "loopback"

        # Route text, both families, every table.
        routes = RouteTable.from_rows(
            list(parse_ip_route(text_of(node, "ip -4 route show table all"), "ip -4 route", family=4))
            + list(parse_ip_route(text_of(node, "ip -6 route show table all"), "ip -6 route", family=6))
        )
        assert route_set(routes) == route_set(live["routes"])
        assert routes == live["routes"]

        neighbours = parse_ip_neigh(text_of(node, "ip neigh show nud all"), "ip neigh")
        assert neighbours == live["neighbours"]
        fdb = parse_bridge_fdb(text_of(node, "bridge fdb show"), "bridge fdb")
        assert fdb == live["fdb"]


def test_state_covers_every_route_form() -> None:
    """Guard the parity test itself: the built state holds each form it claims to compare."""
    with nslib.namespaces("node", "peer") as (node, peer):
        build_node(node, peer)
        routes = list(settled_read(node.name)["routes"])
        described = [route.describe() for route in routes]
        assert any(route.onlink for route in routes)
        assert any(route.linkdown for route in routes)
        assert any(route.type_name == "blackhole" and route.protocol == "bird" for route in routes)
        assert any(route.protocol == "77" for route in routes)
        assert any(len(route.nexthops) == 2 for route in routes)
        assert any(route.nhid == 22 for route in routes)
        assert any(route.family == 6 and route.via for route in routes)
        assert any(route.table == 100 for route in routes)
        assert any(route.mtu == 1400 for route in routes), described
