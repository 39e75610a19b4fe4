"""The pod network that the filtering fixers' rules match: never wider than the nodes' pod subnets.

Two Docker nodes in namespaces have docker0 172.17.0.1/16 and 172.18.0.1/16 and
route each other's bridge. Node a's FORWARD policy is DROP with no accept rule,
so forward-policy-drop plans accept rules for the pod network. The smallest
single prefix that contains both bridges, 172.16.0.0/14, also contains 172.16.0.0/16
and 172.19.0.0/16, which no node owns, so the rules must name each bridge
subnet instead, unless a FLANNEL_NETWORK sets the pod network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nslib
import pytest

from netdoctor.collect import collect_cluster
from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import NodeBinding, build_plans
from netdoctor.fixapply import apply_plans
from netdoctor.model import ClusterSnapshot
from netdoctor.target import Target

pytestmark = nslib.needs_root

BRIDGES = {"a": "172.17.0.1/16", "b": "172.18.0.1/16"}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[nslib.Namespace, nslib.Namespace]]:
    """Nodes a and b with docker0 on two /16s, each routing the other's; a's FORWARD policy is DROP."""
    with nslib.namespaces("lan", "a", "b") as (lan, a, b):
        nslib.build_docker_pair(lan, a, b)
        a.run("ip route del 10.244.2.0/24")
        a.run("ip addr del 10.244.1.1/24 dev docker0 && ip addr add 172.17.0.1/16 dev docker0")
        b.run("ip addr del 10.244.2.1/24 dev docker0 && ip addr add 172.18.0.1/16 dev docker0")
        a.run("ip route add 172.18.0.0/16 via 192.168.100.12 dev eth0")
        b.run("ip route add 172.17.0.0/16 via 192.168.100.11 dev eth0")
        a.run("iptables -P FORWARD DROP")
        yield a, b


def _collect(a: nslib.Namespace, b: nslib.Namespace, tmp_path: Path) -> ClusterSnapshot:
    targets = [Target("a", netns=a.name, root=tmp_path / "root-a"), Target("b", netns=b.name, root=tmp_path / "root-b")]
    return collect_cluster(targets, "netns")


def _bindings(a: nslib.Namespace, b: nslib.Namespace, tmp_path: Path) -> dict[str, NodeBinding]:
    return {"a": NodeBinding(a.name, str(tmp_path / "root-a")), "b": NodeBinding(b.name, str(tmp_path / "root-b"))}


def _forward_sources(rules: list[str]) -> list[str]:
    """Return the ``-s`` prefixes of the netdoctor FORWARD accept rules among ``iptables -S`` or plan rule lines."""
    return sorted(match.group(1) for rule in rules if "netdoctor-pod-forward" in rule
                  for match in [re.search(r"-s (\S+)", rule)] if match)


def _forward_destinations(rules: list[str]) -> list[str]:
    return sorted(match.group(1) for rule in rules if "netdoctor-pod-forward" in rule
                  for match in [re.search(r"-d (\S+)", rule)] if match)


def test_forward_rules_name_each_bridge_subnet(pair: tuple[nslib.Namespace, nslib.Namespace], tmp_path: Path) -> None:
    a, b = pair
    report = run_checks(_collect(a, b, tmp_path), load_checks())
    assert any(finding.check == "forward-policy-drop" for finding in report.findings)

    plans = build_plans(report, _bindings(a, b, tmp_path), checks=("forward-policy-drop",))
    rules = [step.action.params["rule"] for plan in plans for step in plan.steps if step.action is not None]
    assert _forward_sources(rules) == ["172.17.0.0/16", "172.18.0.0/16"]
    assert _forward_destinations(rules) == ["172.17.0.0/16", "172.18.0.0/16"]

    result = apply_plans(plans, tmp_path / "journal.json")
    assert result.stopped is None
    listed = a.run("iptables -S FORWARD").stdout.splitlines()
    assert _forward_sources(listed) == ["172.17.0.0/16", "172.18.0.0/16"]
    assert _forward_destinations(listed) == ["172.17.0.0/16", "172.18.0.0/16"]
    assert not [line for line in listed if "172.16.0.0" in line]
    assert "-P FORWARD DROP" in listed


def test_forward_rules_use_configured_network(pair: tuple[nslib.Namespace, nslib.Namespace], tmp_path: Path) -> None:
    a, b = pair
    for name in ("a", "b"):
        env = tmp_path / f"root-{name}" / "run" / "flannel" / "subnet.env"
        env.parent.mkdir(parents=True)
        env.write_text(f"FLANNEL_NETWORK=172.16.0.0/12\nFLANNEL_SUBNET={BRIDGES[name]}\nFLANNEL_MTU=1500\n")
    report = run_checks(_collect(a, b, tmp_path), load_checks())

    plans = build_plans(report, _bindings(a, b, tmp_path), checks=("forward-policy-drop",))
    rules = [step.action.params["rule"] for plan in plans for step in plan.steps if step.action is not None]
    assert _forward_sources(rules) == ["172.16.0.0/12"]
    assert _forward_destinations(rules) == ["172.16.0.0/12"]
