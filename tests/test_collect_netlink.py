"""The netlink collector against real namespaces: both read paths, gaps, and a large route table."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import nslib
import pytest

from netdoctor.capture.iproute import parse_ip_route_json
from netdoctor.collect import collect_node
from netdoctor.collectors import netlink
from netdoctor.model.routes import RouteTable
from netdoctor.target import CommandResult, Target

pytestmark = [nslib.needs_root, pytest.mark.netns]


@dataclass(frozen=True)
class NoIproute2Target(Target):
    """A target on a host where neither ``ip`` nor ``bridge`` is installed."""

    def which(self, program: str) -> str | None:
        if program in ("ip", "bridge"):
            return None
        return super().which(program)


def build_small_node(node: nslib.Namespace) -> None:
    node.run("ip link add eth0 type veth peer name eth0p && ip link set eth0 up && ip link set eth0p up")
    node.run("ip addr add 192.168.100.11/24 dev eth0")
    node.run("ip link add flannel.1 type vxlan id 1 local 192.168.100.11 dev eth0 dstport 8472 nolearning")
    node.run("ip link set flannel.1 up")
    node.run("bridge fdb replace 0e:00:00:00:00:02 dev flannel.1 dst 192.168.100.12 self permanent")
    node.run("ip neigh replace 172.16.2.0 lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent")
    node.run("ip route add 172.16.2.0/24 via 172.16.2.0 dev flannel.1 onlink")
    time.sleep(1.2)  # let linkwatch apply the carrier changes before two reads are compared


def test_collect_fills_every_part() -> None:
    with nslib.namespaces("node") as (node,):
        build_small_node(node)
        part = netlink.collect(Target("n1", netns=node.name))
        assert part.gaps == []
        assert set(part.values) == set(netlink.PARTS)
        assert {item.source for item in part.provenance} == set(netlink.PARTS)
        assert any("route show table all" in item.origin for item in part.provenance)
        flannel = next(interface for interface in part.values["interfaces"] if interface.name == "flannel.1")
        assert flannel.vxlan is not None and flannel.vxlan.vni == 1
        assert any(route.onlink and route.dev == "flannel.1" for route in part.values["routes"])
        assert [entry.remote for entry in part.values["fdb"] if entry.dev == "flannel.1"] == ["192.168.100.12"]


def test_collect_without_iproute2_uses_pyroute2() -> None:
    with nslib.namespaces("node") as (node,):
        build_small_node(node)
        # The kernel applies carrier changes up to a second late, so compare
        # only reads taken while two ip reads around the pyroute2 read agree.
        for _ in range(20):
            with_ip = netlink.collect(Target("n1", netns=node.name))
            without_ip = netlink.collect(NoIproute2Target("n1", netns=node.name))
            if netlink.collect(Target("n1", netns=node.name)).values == with_ip.values:
                break
            time.sleep(0.2)
        assert without_ip.gaps == []
        assert {item.origin for item in without_ip.provenance} == {f"netlink (pyroute2) in network namespace {node.name}"}
        for name in netlink.PARTS:
            assert without_ip.values[name] == with_ip.values[name], name


@pytest.mark.parametrize("target_class", [Target, NoIproute2Target])
def test_missing_namespace_gives_gaps(target_class: type[Target]) -> None:
    missing = nslib.PREFIX + "absent"
    part = netlink.collect(target_class("n9", netns=missing))
    assert part.values == {}
    assert sorted(gap.source for gap in part.gaps) == sorted(netlink.PARTS)
    assert all("does not exist" in gap.reason for gap in part.gaps)
    # pyroute2 would create a missing namespace if asked with O_CREAT; it must not.
    assert not os.path.exists(f"/run/netns/{missing}")


def test_collect_node_builds_snapshot() -> None:
    with nslib.namespaces("node") as (node,):
        build_small_node(node)
        snapshot, gaps = collect_node(Target("n1", netns=node.name), ["netlink"])
        assert gaps == []
        assert snapshot.routes is not None and len(snapshot.routes) > 0
        assert snapshot.interface("flannel.1") is not None


def test_pyroute2_not_imported_on_ip_path() -> None:
    with nslib.namespaces("node") as (node,):
        script = (
            "import sys\n"
            "from netdoctor.collectors import netlink\n"
            "from netdoctor.target import Target\n"
            f"part = netlink.collect(Target('n1', netns={node.name!r}))\n"
            "assert not part.gaps, part.gaps\n"
            "print('pyroute2' in sys.modules)\n"
        )
        # Run outside the checkout, so the installed package is imported, not ./netdoctor.
        completed = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="/"
        )
        assert completed.stdout.strip() == "False"


def test_large_route_table_reads_alike() -> None:
    """Both paths read 10,000 routes to the same table; the durations are printed, not asserted."""
    with nslib.namespaces("big") as (big,):
        batch = "".join(f"route add blackhole 10.{i // 256}.{i % 256}.0/24 proto bird\n" for i in range(10_000))
        subprocess.run(["ip", "-n", big.name, "-batch", "-"], input=batch, text=True, check=True)

        started = time.monotonic()
        with_ip = netlink.collect(Target("big", netns=big.name))
        ip_seconds = time.monotonic() - started
        started = time.monotonic()
        with_pyroute2 = netlink.read_with_pyroute2(big.name)
        pyroute2_seconds = time.monotonic() - started

        routes: RouteTable = with_ip.values["routes"]
        assert len([route for route in routes if route.protocol == "bird"]) == 10_000
        assert routes == with_pyroute2["routes"]
        print(f"\n10,000 routes: ip -j path {ip_seconds:.2f} s (all four parts), pyroute2 {pyroute2_seconds:.2f} s (all four parts)")


def build_routed_node(node: nslib.Namespace) -> None:
    """Give a node routes of every shape the route table stores, in both families and two tables."""
    node.run("ip link add eth0 type veth peer name eth1 && ip link set eth0 up && ip link set eth1 up")
    node.run("ip addr add 192.0.2.10/24 dev eth0 && ip addr add 198.51.100.10/24 dev eth1")
    node.run("ip addr add 2001:db8::10/64 dev eth0 nodad && ip addr add 2001:db8:1::10/64 dev eth1 nodad")
    batch = """\
route add 203.0.113.0/26 via 192.0.2.1 dev eth0 proto bird metric 32
route add 203.0.113.64/26 via 192.0.2.1 dev eth0 table 100 proto static
route add blackhole 203.0.113.128/26 proto bird
route add unreachable 203.0.113.192/26
route add 10.244.2.0/24 via 10.244.2.0 dev eth0 onlink
route add 10.96.0.0/12 via 192.0.2.1 dev eth0 mtu 1400
route add 10.100.0.0/16 proto zebra metric 20 nexthop via 192.0.2.2 dev eth0 nexthop via 198.51.100.2 dev eth1 weight 3
route add 10.101.0.0/16 dev eth1 scope link src 198.51.100.10
route add 2001:db8:2::/64 via 2001:db8::1 dev eth0 proto bird metric 32
route add 2001:db8:3::/64 via 2001:db8::1 dev eth0 table 100
route add unreachable 2001:db8:4::/64
route add 2001:db8:5::/64 nexthop via 2001:db8::2 dev eth0 nexthop via 2001:db8:1::2 dev eth1
"""
    subprocess.run(["ip", "-n", node.name, "-batch", "-"], input=batch, text=True, check=True)


def test_mixed_routes_read_alike() -> None:
    with nslib.namespaces("routed") as (node,):
        build_routed_node(node)

        with_ip = netlink.collect(Target("n1", netns=node.name), ("routes",))
        with_pyroute2 = netlink.read_with_pyroute2(node.name)

        assert with_ip.gaps == []
        routes: RouteTable = with_ip.values["routes"]
        assert routes == with_pyroute2["routes"]
        assert {route.family for route in routes} == {4, 6}
        assert {route.table for route in routes} == {100, 254, 255}
        multipath = [route for route in routes if route.nexthops]
        assert len(multipath) == 2
        assert any(hop.weight == 3 for route in multipath for hop in route.nexthops)
        assert any(route.mtu == 1400 for route in routes)


def test_route_json_without_details_parses_alike() -> None:
    """The collector reads ``ip -j route`` without ``-d``: every default it leaves out is the parser's default."""
    with nslib.namespaces("routed") as (node,):
        build_routed_node(node)
        for family in ("-4", "-6"):
            plain = node.ip(f"{family} -j route show table all")
            detailed = node.ip(f"{family} -j -d route show table all")

            assert parse_ip_route_json(plain, "plain") == parse_ip_route_json(detailed, "detailed")


def test_collect_selected_parts() -> None:
    with nslib.namespaces("node") as (node,):
        build_small_node(node)

        part = netlink.collect(Target("n1", netns=node.name), ("routes", "fdb"))

        assert part.gaps == []
        assert set(part.values) == {"routes", "fdb"}
        assert [item.source for item in part.provenance] == ["routes", "fdb"]
        with pytest.raises(ValueError, match="unknown netlink part colour"):
            netlink.collect(Target("n1", netns=node.name), ("routes", "colour"))


@dataclass(frozen=True)
class BrokenRouteJsonTarget(Target):
    """A target whose ``ip -6 -j route`` prints invalid JSON."""

    def run(self, argv: list[str] | tuple[str, ...], timeout: float | None = None) -> CommandResult:
        result = super().run(argv, timeout)
        if tuple(argv[:3]) == ("ip", "-6", "-j"):
            return dataclasses.replace(result, stdout='[{"dst": "2001:db8::/64", "dev": "eth0"}, {"dst": ')
        return result


def test_invalid_route_output_gives_gap() -> None:
    with nslib.namespaces("node") as (node,):
        build_small_node(node)

        part = netlink.collect(BrokenRouteJsonTarget("n1", netns=node.name))

        assert [gap.source for gap in part.gaps] == ["routes"]
        assert "ip -6 -j route show table all" in part.gaps[0].reason
        assert "invalid JSON" in part.gaps[0].reason
        assert set(part.values) == {"interfaces", "neighbours", "fdb"}
