"""The netlink collector against real namespaces: both read paths, gaps, and a large route table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

import nslib
import pytest

from netdoctor.collect import collect_node
from netdoctor.collectors import netlink
from netdoctor.model.routes import RouteTable
from netdoctor.target import Target

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
