"""A route to a pod subnet via the wrong node is replaced, unless FRR's zebra installed it.

Three Docker nodes in namespaces share a LAN and route each other's pod subnets
directly. Node c's route to b's subnet goes via a. Written by hand, the route
is replaced. Written as zebra writes BGP routes (``proto bgp``), the remedy is
a display-only step: zebra would take a route written over its own for a
kernel route and prefer it to BGP from then on.
"""

from __future__ import annotations

from collections.abc import Iterator

import nslib
import pytest

from netdoctor.collect import collect_cluster
from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import Safety, build_plans, render_step
from netdoctor.target import Target

pytestmark = nslib.needs_root


@pytest.fixture
def cluster() -> Iterator[dict[str, nslib.Namespace]]:
    """Nodes a, b and c with docker0 10.244.N.1/24 and LAN addresses 192.168.100.1N; c has no route to b's pods yet."""
    with nslib.namespaces("lan", "a", "b", "c") as (lan, a, b, c):
        nslib.build_docker_pair(lan, a, b)
        nslib.add_docker_node(lan, c, 3)
        a.run("ip route add 10.244.3.0/24 via 192.168.100.13")
        b.run("ip route add 10.244.3.0/24 via 192.168.100.13")
        c.run("ip route add 10.244.1.0/24 via 192.168.100.11")
        yield {"a": a, "b": b, "c": c}


def _plan_steps(cluster: dict[str, nslib.Namespace]) -> list[tuple[str, Safety, list[str]]]:
    snapshot = collect_cluster([Target(name, netns=namespace.name) for name, namespace in cluster.items()], "netns")
    report = run_checks(snapshot, load_checks())
    wrong = [finding for finding in report.findings if finding.check == "route-wrong-nexthop"]
    assert [(finding.nodes, finding.detail("prefix")) for finding in wrong] == [(("c",), "10.244.2.0/24")]
    return [(step.id, step.safety, render_step(plan, step))
            for plan in build_plans(report, checks=("route-wrong-nexthop",)) for step in plan.steps]


def test_route_written_by_hand_is_replaced(cluster: dict[str, nslib.Namespace]) -> None:
    cluster["c"].run("ip route add 10.244.2.0/24 via 192.168.100.11 proto static metric 20")

    steps = _plan_steps(cluster)

    assert [(step_id, safety) for step_id, safety, _ in steps] == [("route-replace-10.244.2.0/24", Safety.DISRUPTIVE)]
    assert "via 192.168.100.12" in steps[0][2][0]


def test_route_installed_by_zebra_gets_a_note(cluster: dict[str, nslib.Namespace]) -> None:
    cluster["c"].run("ip route add 10.244.2.0/24 via 192.168.100.11 proto bgp metric 20")

    steps = _plan_steps(cluster)

    assert [(step_id, safety) for step_id, safety, _ in steps] == [("route-replace-10.244.2.0/24", Safety.DISPLAY_ONLY)]
    assert "vtysh -c 'show bgp ipv4 unicast 10.244.2.0/24'   # the next hop the peer announced, and the route-map " \
           "that set it" in steps[0][2]
    assert "vtysh -c 'clear bgp ipv4 unicast 192.168.100.12 soft in'" in steps[0][2]
