"""Firewall checks report a gap, not a clean result, for a node whose walk meets a rule they cannot evaluate."""

from __future__ import annotations

from dataclasses import replace
from io import StringIO

import pytest
from rich.console import Console
from test_checks_support import flannel_cluster, iptables, run, run_gaps

from netdoctor.engine import load_checks, run_checks
from netdoctor.model import Gap
from netdoctor.report import render_human

FILTER_HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {forward} [0:0]\n:OUTPUT ACCEPT [0:0]\n"
NAT_HEAD = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"


def _filter(rules: str, forward: str = "ACCEPT") -> str:
    return FILTER_HEAD.format(forward=forward) + rules.strip() + "\nCOMMIT\n"


def test_input_ipset_one_gap_per_node() -> None:
    rules = _filter("-A INPUT -m set --match-set blocklist src -j DROP\n-A INPUT -p icmp -j REJECT")
    snapshot = flannel_cluster(2, iptables=iptables(rules))

    # Three ICMP packets meet the same rule, so the node gets one gap, and the REJECT behind it gives no finding.
    assert run(snapshot, "icmp-blocked") == []
    assert run_gaps(snapshot, "icmp-blocked") == [Gap(
        "node1", "check:icmp-blocked",
        "could not tell whether ICMP echo-request from 192.0.2.12 to 192.0.2.11 passes INPUT: unknown match: -m set "
        "at '-A INPUT -m set --match-set blocklist src -j DROP' (line 5), so that traffic was not judged",
    )]


def test_long_rule_cut_in_gap() -> None:
    comment = "probes from the monitoring hosts, rate-limited per source so a burst does not fill the table"
    rule = f'-A INPUT -p icmp -m comment --comment "{comment}" -m recent --rcheck --seconds 60 --name probes -j DROP'
    snapshot = flannel_cluster(2, iptables=iptables(_filter(rule)))

    (gap,) = run_gaps(snapshot, "icmp-blocked")

    assert len(rule) == 186
    assert gap.reason == (
        "could not tell whether ICMP echo-request from 192.0.2.12 to 192.0.2.11 passes INPUT: unknown match: "
        "-m recent at '-A INPUT -p icmp -m comment --comment \"probes from the monitoring hosts, rate-limited per "
        "source so a burst does not fil'... (186 characters) (line 5), so that traffic was not judged"
    )


def test_decided_walks_give_no_gap() -> None:
    rules = _filter("-A INPUT -p icmp -j REJECT\n-A INPUT -m set --match-set blocklist src -j DROP")
    snapshot = flannel_cluster(2, iptables=iptables(rules))

    assert len(run(snapshot, "icmp-blocked")) == 3
    assert run_gaps(snapshot, "icmp-blocked") == []


def test_forward_shared_verdict_undecided() -> None:
    # No rule tests an address or device, so one walk gives the verdict of every pod path.
    rules = _filter("-A FORWARD -m set --match-set allowed src -j ACCEPT", forward="DROP")
    snapshot = flannel_cluster(2, iptables=iptables(rules))

    assert run(snapshot, "forward-policy-drop") == []
    assert [(gap.node, gap.reason) for gap in run_gaps(snapshot, "forward-policy-drop")] == [(
        "node1",
        ("could not tell whether TCP between pods on different nodes passes FORWARD: unknown match: -m set at "
         "'-A FORWARD -m set --match-set allowed src -j ACCEPT' (line 5), so that traffic was not judged"),
    )]


def test_forward_undecided_and_dropped() -> None:
    rules = _filter("-A FORWARD -i docker0 -m set --match-set allowed dst -j ACCEPT", forward="DROP")
    snapshot = flannel_cluster(2, iptables=iptables(rules))

    findings = run(snapshot, "forward-policy-drop")
    (gap,) = run_gaps(snapshot, "forward-policy-drop")

    assert [finding.summary.split(" is ")[0] for finding in findings] == [
        "node1: TCP 198.51.100.66 -> 198.51.100.2 (from node2's pods, in flannel.1, out docker0)",
    ]
    assert gap.reason.startswith("could not tell whether TCP 198.51.100.2 -> 198.51.100.66 (to node2's pods) passes "
                                 "FORWARD: unknown match: -m set")


@pytest.mark.parametrize(
    ("rules", "check_id", "reason"),
    [
        (_filter("-A FORWARD -p tcp -j ACCEPT\n-A FORWARD -p icmp -m recent --rcheck --name probes -j DROP"),
         "icmp-blocked",
         ("could not tell whether forwarded ICMP echo-request from 198.51.100.2 to node2's pod 198.51.100.66 passes "
          "FORWARD: unknown match: -m recent at '-A FORWARD -p icmp")),
        # icmp-blocked reports ICMP blocked where TCP passes, so an undecided TCP walk leaves ICMP unjudged.
        (_filter("-A FORWARD -p tcp -m set --match-set allowed src -j ACCEPT\n-A FORWARD -p icmp -j DROP"),
         "icmp-blocked",
         ("could not tell whether TCP between pods on different nodes passes FORWARD, the traffic that forwarded ICMP "
          "is compared with: unknown match: -m set")),
        (_filter("-A INPUT -m set --match-set peers src -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited"),
         "overlay-port-blocked",
         ("could not tell whether udp/8472 (flannel.1 (flannel VXLAN)) from 192.0.2.12 to 192.0.2.11 passes INPUT: "
          "unknown match: -m set")),
        (NAT_HEAD + "-A POSTROUTING -m set --match-set outside dst -j MASQUERADE\nCOMMIT\n",
         "pod-traffic-masqueraded",
         "could not tell whether nat POSTROUTING translates TCP between pods on different nodes: unknown match: -m set"),
    ],
    ids=["forwarded icmp", "tcp undecided", "overlay port", "nat"],
)
def test_undecided_walk_gives_gap(rules: str, check_id: str, reason: str) -> None:
    snapshot = flannel_cluster(2, iptables=iptables(rules))

    gaps = run_gaps(snapshot, check_id)

    assert run(snapshot, check_id) == []
    assert [gap.node for gap in gaps] == ["node1"]
    assert gaps[0].reason.startswith(reason)


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        # Gotos do not nest, so the walk counts jumps and gives up at the one past the limit.
        ("-A INPUT -g A\n-A A -g B\n-A B -g A",
         "the walk took more than 100000 jumps: the chains loop at '-A B -g A' (line 9)"),
        # Jumps nest, so the walk gives up at the jump that would nest one chain too deep.
        ("-A INPUT -j A\n-A A -j B\n-A B -j A",
         "chain jumps nest deeper than 64: the chains may loop at '-A A -j B' (line 8)"),
    ],
    ids=["goto loop", "jump loop"],
)
def test_loop_gap_names_rule(rules: str, reason: str) -> None:
    chains = ":A - [0:0]\n:B - [0:0]\n"
    snapshot = flannel_cluster(2, iptables=iptables(_filter(chains + rules)))

    gaps = run_gaps(snapshot, "icmp-blocked")

    assert run(snapshot, "icmp-blocked") == []
    assert [(gap.node, gap.source) for gap in gaps] == [("node1", "check:icmp-blocked")]
    assert gaps[0].reason == (
        f"could not tell whether ICMP echo-request from 192.0.2.12 to 192.0.2.11 passes INPUT: {reason}, "
        "so that traffic was not judged"
    )


def test_report_check_gaps_after_snapshot() -> None:
    rules = _filter("-A INPUT -m set --match-set blocklist src -j DROP", forward="DROP")
    snapshot = flannel_cluster(2, iptables=iptables(rules))
    snapshot = replace(snapshot, gaps=(Gap("node2", "sysctls", "permission denied"),))

    report = run_checks(snapshot, load_checks(["forward-policy-drop", "icmp-blocked", "overlay-port-blocked"]))

    assert [(gap.node, gap.source) for gap in report.gaps] == [
        ("node2", "sysctls"), ("node1", "check:icmp-blocked"), ("node1", "check:overlay-port-blocked"),
    ]
    assert [gap.check_id for gap in report.gaps] == [None, "icmp-blocked", "overlay-port-blocked"]
    # The FORWARD policy drops pod traffic before any undecided rule, so that check reports a finding, not a gap.
    assert [finding.check for finding in report.findings] == ["forward-policy-drop", "forward-policy-drop"]


def test_icmp_undecided_when_path_tcp_undecided() -> None:
    # The rule tests a device, so each pod path is walked on its own.
    rules = _filter("-A FORWARD -i docker0 -p tcp -m set --match-set allowed dst -j ACCEPT\n"
                    "-A FORWARD -p tcp -j ACCEPT\n-A FORWARD -p icmp -j DROP")
    snapshot = flannel_cluster(2, iptables=iptables(rules))

    findings = run(snapshot, "icmp-blocked")
    (gap,) = run_gaps(snapshot, "icmp-blocked")

    # TCP from node2's pods is accepted, so ICMP that way is reported; the other direction is not judged.
    assert {finding.summary.split(" is ")[0] for finding in findings} == {
        f"node1: forwarded ICMP {label} from node2's pod 198.51.100.66 to 198.51.100.2"
        for label in ("echo-request", "echo-reply", "fragmentation-needed")
    }
    assert gap.reason.startswith("could not tell whether TCP 198.51.100.2 -> 198.51.100.66 passes FORWARD")


def test_human_report_separates_check_gaps() -> None:
    rules = _filter("-A INPUT -m set --match-set blocklist src -j DROP")
    snapshot = replace(flannel_cluster(2, iptables=iptables(rules)), gaps=(Gap("node2", "sysctls", "permission denied"),))
    report = run_checks(snapshot, load_checks(["icmp-blocked"]))
    console = Console(file=StringIO(), width=400, color_system=None)

    render_human(report, console)

    text = console.file.getvalue()
    assert "NOT COLLECTED (1)\n  node2: sysctls: permission denied\n" in text
    assert "NOT CHECKED (1)\n  node1: check:icmp-blocked: could not tell whether ICMP echo-request" in text
