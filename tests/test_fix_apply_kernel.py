"""Apply and undo the VTEP, rp_filter, masquerade and overlay port fixers against real kernel state.

Two nodes share a LAN bridge. Node a has a VXLAN device with a stale
neighbour and FDB entry, strict rp_filter, Docker's MASQUERADE rule and a
CentOS-style INPUT REJECT. The masquerade finding comes from the real check;
the others are findings with the details their checks write, so that each
fixer is tested on its own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import nslib
import pytest

from netdoctor.collect import collect_cluster
from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import NodeBinding, build_plans
from netdoctor.fixapply import apply_plans, undo_journal
from netdoctor.model import ClusterSnapshot, Finding, Severity, make_details
from netdoctor.target import Target

pytestmark = nslib.needs_root

PEER_MAC = "0e:00:00:00:00:02"
STALE_MAC = "0e:00:00:00:00:99"
DOCKER_MASQUERADE = "POSTROUTING -s 10.244.1.0/24 ! -o docker0 -j MASQUERADE"
REJECT = "INPUT -j REJECT --reject-with icmp-host-prohibited"


def _build(lan: nslib.Namespace, a: nslib.Namespace, b: nslib.Namespace) -> None:
    nslib.build_docker_pair(lan, a, b)
    a.run("ip link add vx1 type vxlan id 1 local 192.168.100.11 dev eth0 dstport 8472 nolearning && ip link set vx1 up")
    a.run(f"ip neigh replace 10.244.2.0 lladdr {STALE_MAC} dev vx1 nud permanent")
    a.run(f"bridge fdb append {PEER_MAC} dev vx1 dst 192.168.100.99 self permanent")
    a.run("sysctl -qw net.ipv4.conf.eth0.rp_filter=1")
    a.run("iptables -A INPUT -p tcp --dport 22 -j ACCEPT && iptables -A INPUT -j REJECT "
          "--reject-with icmp-host-prohibited")
    a.run("iptables -t nat -N KUBE-POSTROUTING && iptables -t nat -A POSTROUTING -j KUBE-POSTROUTING && "
          "iptables -t nat -A POSTROUTING -s 10.244.1.0/24 ! -o docker0 -j MASQUERADE")


def _collect(a: nslib.Namespace, b: nslib.Namespace) -> ClusterSnapshot:
    return collect_cluster([Target("a", netns=a.name), Target("b", netns=b.name)], "netns")


def _hand_findings() -> tuple[Finding, ...]:
    return (
        Finding("vtep-mismatch", Severity.ERROR, ("a",), "neighbour", details=make_details(
            entry="neighbour", dev="vx1", address="10.244.2.0", lladdr=STALE_MAC, vtep_mac=PEER_MAC, peer="b")),
        Finding("vtep-mismatch", Severity.ERROR, ("a",), "fdb", details=make_details(
            entry="fdb", dev="vx1", vtep_mac=PEER_MAC, dst="192.168.100.99", peer_underlay="192.168.100.12",
            peer="b")),
        Finding("rp-filter-strict", Severity.ERROR, ("a",), "rp_filter", details=make_details(
            interface="eth0", sysctl="net.ipv4.conf.eth0.rp_filter", value="1", expected="2")),
        Finding("overlay-port-blocked", Severity.ERROR, ("a",), "vxlan blocked", details=make_details(
            table="filter", chain="INPUT", rule=REJECT, verdict="REJECT", protocol="udp", port="8472",
            peer_underlay="192.168.100.12", destination="192.168.100.11", in_interface="eth0")),
    )


def _state(node: nslib.Namespace) -> dict[str, Any]:
    return {
        "neigh": node.run("ip neigh show dev vx1").stdout.split(),
        "fdb": sorted(node.run("bridge fdb show dev vx1").stdout.splitlines()),
        "rp_filter": node.run("cat /proc/sys/net/ipv4/conf/eth0/rp_filter").stdout.strip(),
        "filter": [line for line in node.run("iptables-save -t filter").stdout.splitlines() if line.startswith("-A")],
        "nat": [line for line in node.run("iptables-save -t nat").stdout.splitlines() if line.startswith("-A")],
    }


@pytest.fixture
def broken(tmp_path: Path) -> Any:
    with nslib.namespaces("lan", "a", "b") as (lan, a, b):
        _build(lan, a, b)
        bindings = {"a": NodeBinding(a.name, str(tmp_path / "root-a")), "b": NodeBinding(b.name, str(tmp_path / "root-b"))}
        yield a, b, bindings


def _plans(a: nslib.Namespace, b: nslib.Namespace, bindings: dict[str, NodeBinding]) -> list[Any]:
    report = run_checks(_collect(a, b), load_checks())
    masquerade = [finding for finding in report.findings if finding.check == "pod-traffic-masqueraded"]
    assert masquerade, f"pod-traffic-masqueraded not reported: {[finding.check for finding in report.findings]}"
    assert masquerade[0].detail("rule") == DOCKER_MASQUERADE
    return build_plans(replace(report, findings=_hand_findings() + tuple(masquerade)), bindings)


def test_new_fixers_apply(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken

    result = apply_plans(_plans(a, b, bindings), tmp_path / "journal.json")

    assert result.stopped is None, result.stopped
    assert result.counts.get("failed", 0) == 0
    state = _state(a)
    assert PEER_MAC in state["neigh"]
    assert STALE_MAC not in state["neigh"]
    assert any("dst 192.168.100.12" in line for line in state["fdb"])
    assert not any("dst 192.168.100.99" in line for line in state["fdb"])
    assert state["rp_filter"] == "2"
    assert (tmp_path / "root-a/etc/sysctl.d/90-netdoctor-rp-filter-eth0.conf").read_text().endswith(
        "net.ipv4.conf.eth0.rp_filter = 2\n")
    accept = ("-A INPUT -s 192.168.100.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay "
              "-j ACCEPT")
    assert state["filter"].index(accept) == state["filter"].index(f"-A {REJECT}") - 1
    # No pod network is configured here, so each pair of the nodes' pod subnets gets a RETURN, and no
    # rule names a wider prefix such as 10.244.0.0/22, which also contains 10.244.0.0/24 and 10.244.3.0/24.
    masquerade = state["nat"].index(f"-A {DOCKER_MASQUERADE}")
    for source in ("10.244.1.0/24", "10.244.2.0/24"):
        for destination in ("10.244.1.0/24", "10.244.2.0/24"):
            ret = (f"-A POSTROUTING -s {source} -d {destination} -m comment --comment netdoctor-pod-return "
                   "-j RETURN")
            assert state["nat"].index(ret) < masquerade, ret
    assert len([line for line in state["nat"] if "netdoctor-pod-return" in line]) == 4
    assert "-A POSTROUTING -j KUBE-POSTROUTING" in state["nat"]


def test_new_fixers_twice_and_undo(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    before = _state(a)
    plans = _plans(a, b, bindings)
    apply_plans(plans, tmp_path / "first.json")

    second = apply_plans(plans, tmp_path / "second.json")
    undone = undo_journal(tmp_path / "first.json")

    assert set(second.counts) == {"already-done"}, second.counts
    assert undone == sum(1 for plan in plans for step in plan.steps if step.action is not None)
    assert _state(a) == before
    assert not (tmp_path / "root-a/etc/sysctl.d/90-netdoctor-rp-filter-eth0.conf").exists()


def test_missing_neighbour_added_and_undone(tmp_path: Path) -> None:
    with nslib.namespaces("lan", "a", "b") as (lan, a, b):
        nslib.build_docker_pair(lan, a, b)
        a.run("ip link add vx1 type vxlan id 1 local 192.168.100.11 dev eth0 dstport 8472 nolearning && "
              "ip link set vx1 up")
        a.run(f"bridge fdb append {PEER_MAC} dev vx1 dst 192.168.100.12 self permanent")
        finding = Finding("vtep-mismatch", Severity.ERROR, ("a",), "neighbour missing", details=make_details(
            entry="neighbour-missing", dev="vx1", address="10.244.2.0", vtep_mac=PEER_MAC, peer="b"))
        report = run_checks(_collect(a, b), load_checks())
        bindings = {"a": NodeBinding(a.name, str(tmp_path / "root-a")), "b": NodeBinding(b.name, str(tmp_path / "root-b"))}
        plans = build_plans(replace(report, findings=(finding,)), bindings)

        result = apply_plans(plans, tmp_path / "journal.json")
        added = a.run("ip neigh show dev vx1 10.244.2.0").stdout.split()
        undone = undo_journal(tmp_path / "journal.json")
        after_undo = a.run("ip neigh show dev vx1 10.244.2.0").stdout

    assert result.counts == {"applied": 1}, result.counts
    assert added[:3] == ["10.244.2.0", "lladdr", PEER_MAC]
    assert "PERMANENT" in added
    assert undone == 1
    assert after_undo == ""


def test_masquerade_in_user_chain_fixed_in_one_round(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    # A chain that POSTROUTING jumps to masquerades first, and POSTROUTING's own MASQUERADE comes after the jump.
    a.run("iptables -t nat -N CNI-MASQ && iptables -t nat -I POSTROUTING 1 -j CNI-MASQ && "
          "iptables -t nat -A CNI-MASQ -s 10.244.1.0/24 -j MASQUERADE")
    report = run_checks(_collect(a, b), load_checks(["pod-traffic-masqueraded"]))
    assert [finding.detail("chain") for finding in report.findings] == ["CNI-MASQ"]

    result = apply_plans(build_plans(report, bindings), tmp_path / "journal.json")
    after = run_checks(_collect(a, b), load_checks(["pod-traffic-masqueraded"]))
    nat = _state(a)["nat"]

    assert result.stopped is None, result.stopped
    assert after.findings == ()
    inserted = [line for line in nat if "netdoctor-pod-return" in line]
    assert inserted
    assert all(line.startswith("-A CNI-MASQ ") and line.endswith("-j ACCEPT") for line in inserted)
