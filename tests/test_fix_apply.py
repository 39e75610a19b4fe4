"""Apply, re-apply and undo fix plans against real kernel state in network namespaces.

Two nodes share a LAN bridge and route each other's pod subnets directly. The
faults are set by hand (no lab): forwarding off, an ICMP REJECT on INPUT, a
FORWARD DROP policy, a blackhole and a missing route, and a pod bridge with a
larger MTU than the node's VXLAN device carries. Docker-like and KUBE- chains
sit beside them and must survive every fixer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nslib
import pytest

from netdoctor.collect import collect_cluster
from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import NodeBinding, build_plans, dumps_plans, load_plans
from netdoctor.fixapply import ApplyError, apply_plans, load_journal, undo_journal
from netdoctor.model import ClusterSnapshot
from netdoctor.target import Target

pytestmark = nslib.needs_root

#: Rules owned by others, in iptables-restore syntax; each one must survive.
OTHERS_RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j DOCKER-ISOLATION
-A FORWARD -o docker0 -j DOCKER
-A DOCKER -d 10.244.1.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A DOCKER-ISOLATION -j RETURN
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j ACCEPT
-A KUBE-FIREWALL -d 127.0.0.0/8 ! -s 127.0.0.0/8 -j DROP
COMMIT
"""


def _build(lan: nslib.Namespace, a: nslib.Namespace, b: nslib.Namespace) -> None:
    nslib.build_docker_pair(lan, a, b)
    # Faults on node a: forwarding off, an overlay device that carries less than docker0, filter rules.
    a.run("sysctl -qw net.ipv4.ip_forward=0")
    a.run("ip link add vxlan0 type vxlan id 42 dstport 4789 dev eth0 && ip link set vxlan0 up")
    a.run(f"iptables-restore <<'EOF'\n{OTHERS_RULES}EOF")
    # Fault on node b: a blackhole shadows node a's pods and no route reaches them.
    b.run("ip route add blackhole 10.244.1.0/24 proto static metric 20")


def _collect(a: nslib.Namespace, b: nslib.Namespace) -> ClusterSnapshot:
    return collect_cluster([Target("a", netns=a.name), Target("b", netns=b.name)], "netns")


def _touched(snapshot: ClusterSnapshot) -> dict[str, Any]:
    """Return the snapshot parts the fixers change, per node, for exact comparison."""
    parts: dict[str, Any] = {}
    for node in snapshot.nodes:
        filter_table = node.iptables.table("filter") if node.iptables else None
        parts[node.name] = {
            "ip_forward": node.sysctls.get("net.ipv4.ip_forward") if node.sysctls else None,
            "routes": sorted(route.describe() for route in node.routes.main()) if node.routes else None,
            "mtus": sorted((interface.name, interface.mtu) for interface in node.interfaces or ()),
            "rules": [rule.text for rule in filter_table.rules] if filter_table else None,
            "policies": [(chain.name, chain.policy) for chain in filter_table.chains] if filter_table else None,
        }
    return parts


def _findings(snapshot: ClusterSnapshot) -> set[tuple[str, tuple[str, ...]]]:
    report = run_checks(snapshot, load_checks())
    return {(finding.check, finding.nodes) for finding in report.findings}


@pytest.fixture
def broken(tmp_path: Path) -> Any:
    with nslib.namespaces("lan", "a", "b") as (lan, a, b):
        _build(lan, a, b)
        bindings = {"a": NodeBinding(a.name, str(tmp_path / "root-a")), "b": NodeBinding(b.name, str(tmp_path / "root-b"))}
        yield a, b, bindings


def test_apply_fixes_every_finding(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    before = _collect(a, b)
    found = _findings(before)
    for expected in ("ip-forward-disabled", "icmp-blocked", "forward-policy-drop", "mtu-mismatch",
                     "blackhole-route", "route-missing"):
        assert any(check == expected for check, _ in found), f"{expected} not reported before the fix: {found}"

    plans = build_plans(run_checks(before, load_checks()), bindings)
    result = apply_plans(plans, tmp_path / "journal.json", allow_disruptive=True)

    assert result.stopped is None
    assert result.counts.get("failed", 0) == 0
    after = _collect(a, b)
    # The pod veth vp1 keeps MTU 1500: only recreating the pod changes both of its ends,
    # so that part of mtu-mismatch stays, with a display-only step in the plan.
    assert _findings(after) == {("mtu-mismatch", ("a",))}
    assert any(step.id == "pod-veth-mtu" for plan in plans for step in plan.steps)
    assert a.run("cat /sys/class/net/docker0/mtu").stdout.strip() == "1450"
    assert a.run("cat /sys/class/net/vp1/mtu").stdout.strip() == "1500"
    assert (tmp_path / "root-a/etc/sysctl.d/90-netdoctor-ip-forward.conf").is_file()
    assert b.run("ip route get 10.244.1.1").stdout.split()[2] == "192.168.100.11"


def test_others_rules_survive(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    before = _collect(a, b)
    rules_before = [rule.text for rule in before.node("a").iptables.table("filter").rules]

    apply_plans(build_plans(run_checks(before, load_checks()), bindings), tmp_path / "journal.json",
                allow_disruptive=True)

    after = _collect(a, b)
    filter_after = after.node("a").iptables.table("filter")
    rules_after = [rule.text for rule in filter_after.rules]
    for text in rules_before:
        assert text in rules_after, f"rule '-A {text}' did not survive"
    assert [rule for rule in rules_after if rule not in rules_before]
    assert all("netdoctor" in rule for rule in rules_after if rule not in rules_before)
    assert filter_after.chain("FORWARD").policy == "DROP"
    blocking = rules_after.index("INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited")
    inserted = rules_after.index("INPUT -i eth0 -p icmp -m icmp --icmp-type 8 -m comment --comment "
                                 "netdoctor-accept-icmp -j ACCEPT")
    assert inserted == blocking - 1 or inserted < blocking


def test_apply_twice_skips_everything(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    plans = build_plans(run_checks(_collect(a, b), load_checks()), bindings)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(dumps_plans(plans))

    first = apply_plans(load_plans(plan_file), tmp_path / "first.json", allow_disruptive=True)
    second = apply_plans(load_plans(plan_file), tmp_path / "second.json", allow_disruptive=True)

    assert first.counts.get("applied", 0) > 0
    assert second.counts.get("applied", 0) == 0
    assert second.counts.get("already-done", 0) == first.counts["applied"] + first.counts.get("already-done", 0)
    assert second.stopped is None


def test_undo_restores_touched_state(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    before = _collect(a, b)
    journal = tmp_path / "journal.json"
    apply_plans(build_plans(run_checks(before, load_checks()), bindings), journal, allow_disruptive=True)
    assert _touched(_collect(a, b)) != _touched(before)

    reverted = undo_journal(journal)

    assert reverted > 0
    assert _touched(_collect(a, b)) == _touched(before)
    assert not (tmp_path / "root-a/etc/sysctl.d/90-netdoctor-ip-forward.conf").exists()
    # The apply created etc/sysctl.d under the node's root; undo removes both, as they are empty again.
    assert not (tmp_path / "root-a/etc").exists()
    assert undo_journal(journal) == 0


def test_disruptive_needs_confirmation(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    plans = build_plans(run_checks(_collect(a, b), load_checks()), bindings)

    result = apply_plans(plans, tmp_path / "journal.json", allow_disruptive=False, confirm=lambda plan, step: False)

    statuses = {(entry["step"], entry["status"]) for entry in load_journal(tmp_path / "journal.json").entries}
    assert ("mtu-docker0", "not-confirmed") in statuses
    assert ("sysctl-ip-forward", "applied") in statuses
    assert result.counts.get("not-confirmed", 0) >= 2
    assert "blackhole" in b.ip("route show 10.244.1.0/24")


def test_broken_precondition_stops(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    plans = build_plans(run_checks(_collect(a, b), load_checks()), bindings)
    a.run("iptables -D INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited")

    result = apply_plans(plans, tmp_path / "journal.json", allow_disruptive=True)

    assert result.stopped is not None
    assert "precondition no longer holds" in result.stopped
    assert "icmp-host-prohibited" in result.stopped
    entries = load_journal(tmp_path / "journal.json").entries
    assert entries[-1]["status"] == "stopped"


def test_accept_rule_behind_block_not_done(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    accept = "INPUT -i eth0 -p icmp -m icmp --icmp-type 8 -m comment --comment netdoctor-accept-icmp -j ACCEPT"
    blocking = "INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited"
    # The ACCEPT rule exists but sits behind the REJECT, so no echo request reaches it.
    a.run(f"iptables -A {accept}")
    before = _collect(a, b)
    assert ("icmp-blocked", ("a",)) in _findings(before)

    plans = build_plans(run_checks(before, load_checks()), bindings)
    apply_plans(plans, tmp_path / "journal.json", allow_disruptive=True)

    after = _collect(a, b)
    rules = [rule.text for rule in after.node("a").iptables.table("filter").rules]
    assert ("icmp-blocked", ("a",)) not in _findings(after)
    assert rules.index(accept) < rules.index(blocking)


def test_undo_passes_over_rule_deleted_by_hand(broken: Any, tmp_path: Path) -> None:
    a, b, bindings = broken
    before = _collect(a, b)
    journal = tmp_path / "journal.json"
    apply_plans(build_plans(run_checks(before, load_checks()), bindings), journal, allow_disruptive=True)
    inserted = [line for line in a.run("iptables -S").stdout.splitlines() if "netdoctor-" in line]
    assert len(inserted) >= 2
    # An engineer removes the first inserted rule by hand; undo must still remove the others.
    a.run("iptables " + inserted[0].replace("-A ", "-D ", 1))
    lines: list[str] = []

    undo_journal(journal, lines.append)

    assert [line for line in a.run("iptables -S").stdout.splitlines() if "netdoctor-" in line] == []
    assert sum("was already reverted" in line for line in lines) == 1
    assert _touched(_collect(a, b)) == _touched(before)
    assert undo_journal(journal) == 0


@pytest.mark.parametrize("damage", [{}, {"table": "nd-bogus"}, {"rule": "--nd-no-such-option x"}, {"chain": None},
                                    {"rule": 7}],
                         ids=["no-params", "bogus-table", "bogus-rule", "null-chain", "number-rule"])
def test_damaged_oldest_entry_stops_undo_before_any_change(broken: Any, tmp_path: Path,
                                                           damage: dict[str, Any]) -> None:
    a, b, bindings = broken
    journal = tmp_path / "journal.json"
    apply_plans(build_plans(run_checks(_collect(a, b), load_checks()), bindings), journal, allow_disruptive=True)
    applied = _touched(_collect(a, b))
    document = json.loads(journal.read_text())
    oldest = next(number for number, entry in enumerate(document["entries"])
                  if entry["status"] == "applied" and (entry.get("undo") or {}).get("kind") == "iptables-delete")
    intact = document["entries"][oldest]["undo"]
    params = {**intact["params"], **damage} if damage else {}
    document["entries"][oldest]["undo"] = {"kind": intact["kind"], "params": params}
    journal.write_text(json.dumps(document))

    with pytest.raises(ApplyError, match=rf"entries\[{oldest}\] has an inverse '{intact['kind']}' that cannot run"):
        undo_journal(journal)

    assert _touched(_collect(a, b)) == applied
    document["entries"][oldest]["undo"] = intact
    journal.write_text(json.dumps(document))
    assert undo_journal(journal) > 0
