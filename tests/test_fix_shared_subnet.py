"""A pod subnet that two nodes claim gets no route replacement: either next hop is wrong for one of them.

Three Docker nodes in namespaces share a LAN. Node a's docker0 also has node b's
gateway address 10.244.2.1/24, so a and b both claim 10.244.2.0/24, and node
c's route to it via b is reported as leading to the wrong node. Replacing it
with a route via a would only make the next re-check report the route via a.
"""

from __future__ import annotations

from collections.abc import Iterator

import nslib
import pytest

from netdoctor.collect import collect_cluster
from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import build_plans
from netdoctor.target import Target

pytestmark = nslib.needs_root


@pytest.fixture
def overlap() -> Iterator[dict[str, nslib.Namespace]]:
    """Nodes a, b and c with docker0 10.244.N.1/24; a's docker0 also has 10.244.2.1/24."""
    with nslib.namespaces("lan", "a", "b", "c") as (lan, a, b, c):
        nslib.build_docker_pair(lan, a, b)
        nslib.add_docker_node(lan, c, 3)
        a.run("ip route del 10.244.2.0/24 && ip addr add 10.244.2.1/24 dev docker0 && "
              "ip route add 10.244.3.0/24 via 192.168.100.13")
        b.run("ip route add 10.244.1.0/24 via 192.168.100.11 && ip route add 10.244.3.0/24 via 192.168.100.13")
        c.run("ip route add 10.244.1.0/24 via 192.168.100.11 && ip route add 10.244.2.0/24 via 192.168.100.12")
        yield {"a": a, "b": b, "c": c}


def test_shared_subnet_route_not_replaced(overlap: dict[str, nslib.Namespace]) -> None:
    snapshot = collect_cluster([Target(name, netns=namespace.name) for name, namespace in overlap.items()], "netns")
    report = run_checks(snapshot, load_checks())
    wrong = [finding for finding in report.findings if finding.check == "route-wrong-nexthop"]
    assert [(finding.nodes, finding.detail("prefix")) for finding in wrong] == [(("c",), "10.244.2.0/24")]

    plans = build_plans(report, checks=("route-wrong-nexthop",))

    assert [step.id for plan in plans for step in plan.steps] == []
