"""icmp-blocked and forward-policy-drop."""

from __future__ import annotations

from test_checks_support import calico_cluster, flannel_cluster, iptables, run

HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {forward} [0:0]\n:OUTPUT ACCEPT [0:0]\n"


def _filter(rules: str, forward: str = "ACCEPT") -> str:
    return HEAD.format(forward=forward) + rules.strip() + "\nCOMMIT\n"


def test_icmp_specific_reject_on_input() -> None:
    rules = _filter("-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited")
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "icmp-blocked")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), ("node1: ICMP echo-reply from 192.0.2.12 to 192.0.2.11 on INPUT is rejected by "
                      "'-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'")),
        (("node1",), ("node1: ICMP echo-request from 192.0.2.12 to 192.0.2.11 on INPUT is rejected by "
                      "'-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'")),
        (("node1",), ("node1: ICMP fragmentation-needed from 192.0.2.12 to 192.0.2.11 on INPUT is rejected by "
                      "'-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'")),
    ]
    assert findings[1].evidence[0].line == 5


def test_input_catch_all_before_icmp_accept() -> None:
    rules = _filter("-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j REJECT\n-A INPUT -p icmp -j ACCEPT")
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "icmp-blocked")

    assert len(findings) == 3
    assert all("by '-A INPUT -j REJECT'" in finding.summary for finding in findings)


def test_reject_after_icmp_accept_is_fine() -> None:
    rules = _filter("-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p icmp -j ACCEPT\n"
                    "-A INPUT -j REJECT --reject-with icmp-host-prohibited")

    assert run(flannel_cluster(2, iptables=iptables(rules)), "icmp-blocked") == []


def test_icmp_dropped_in_forward_while_tcp_passes() -> None:
    rules = _filter("-A FORWARD -p icmp -j DROP\n-A FORWARD -s 198.51.100.0/24 -j ACCEPT")
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "icmp-blocked")

    assert [finding.summary for finding in findings] == [
        ("node1: forwarded ICMP echo-reply from 198.51.100.2 to node2's pod 198.51.100.66 is dropped by "
         "'-A FORWARD -p icmp -j DROP' while TCP on that path is accepted"),
        ("node1: forwarded ICMP echo-request from 198.51.100.2 to node2's pod 198.51.100.66 is dropped by "
         "'-A FORWARD -p icmp -j DROP' while TCP on that path is accepted"),
        ("node1: forwarded ICMP fragmentation-needed from 198.51.100.2 to node2's pod 198.51.100.66 is dropped by "
         "'-A FORWARD -p icmp -j DROP' while TCP on that path is accepted"),
    ]


def test_icmp_dropped_on_every_forward_path() -> None:
    # No FORWARD rule tests an address or a device, so one packet gives the verdict of every path.
    findings = run(flannel_cluster(2, iptables=iptables(_filter("-A FORWARD -p icmp -j DROP"))), "icmp-blocked")

    assert [finding.summary for finding in findings] == [
        ("node1: forwarded ICMP echo-reply from 198.51.100.2 to node2's pod 198.51.100.66 is dropped by "
         "'-A FORWARD -p icmp -j DROP' while TCP on that path is accepted"),
        ("node1: forwarded ICMP echo-request from 198.51.100.2 to node2's pod 198.51.100.66 is dropped by "
         "'-A FORWARD -p icmp -j DROP' while TCP on that path is accepted"),
        ("node1: forwarded ICMP fragmentation-needed from 198.51.100.2 to node2's pod 198.51.100.66 is dropped by "
         "'-A FORWARD -p icmp -j DROP' while TCP on that path is accepted"),
    ]


def test_echo_reply_dropped_after_request_accepted() -> None:
    # Pings from node1's pods get no reply: the requests leave, and the replies to node1's pods are dropped.
    rules = _filter("-A FORWARD -p icmp -m icmp --icmp-type 8 -j ACCEPT\n"
                    "-A FORWARD -d 198.51.100.0/26 -p icmp -j DROP\n-A FORWARD -s 198.51.100.0/24 -j ACCEPT\n"
                    "-A FORWARD -d 198.51.100.0/24 -j ACCEPT")
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "icmp-blocked")

    assert [finding.summary for finding in findings] == [
        ("node1: forwarded ICMP echo-reply from node2's pod 198.51.100.66 to 198.51.100.2 is dropped by "
         "'-A FORWARD -d 198.51.100.0/26 -p icmp -j DROP' while TCP on that path is accepted"),
        ("node1: forwarded ICMP fragmentation-needed from node2's pod 198.51.100.66 to 198.51.100.2 is dropped by "
         "'-A FORWARD -d 198.51.100.0/26 -p icmp -j DROP' while TCP on that path is accepted"),
    ]
    assert findings[0].detail("icmp_type") == "0"


def test_forward_catch_all_is_not_icmp_blocked() -> None:
    rules = _filter("-A INPUT -p icmp -j ACCEPT\n-A FORWARD -j REJECT")

    assert run(flannel_cluster(2, iptables=iptables(rules)), "icmp-blocked") == []


def test_forward_policy_drop() -> None:
    findings = run(flannel_cluster(2, iptables=iptables(_filter("", forward="DROP"))), "forward-policy-drop")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), ("node1: TCP 198.51.100.2 -> 198.51.100.66 (to node2's pods, in docker0, out flannel.1) is dropped "
                      "by the FORWARD policy DROP")),
        (("node1",), ("node1: TCP 198.51.100.66 -> 198.51.100.2 (from node2's pods, in flannel.1, out docker0) is dropped "
                      "by the FORWARD policy DROP")),
    ]
    assert findings[0].evidence[0].item == ":FORWARD DROP"


def test_forward_drop_of_new_connections() -> None:
    rules = _filter("-A FORWARD -m conntrack --ctstate INVALID -j ACCEPT\n-A FORWARD -m conntrack --ctstate NEW -j DROP")
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "forward-policy-drop")

    assert [finding.detail("direction") for finding in findings] == ["to", "from"]
    assert all(finding.detail("rule") == "FORWARD -m conntrack --ctstate NEW -j DROP" for finding in findings)


def test_forward_catch_all_reject_one_direction() -> None:
    rules = _filter("-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n-A FORWARD -j REJECT --reject-with icmp-host-prohibited")
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "forward-policy-drop")

    assert [finding.summary for finding in findings] == [
        ("node1: TCP 198.51.100.66 -> 198.51.100.2 (from node2's pods, in flannel.1, out docker0) is rejected by "
         "'-A FORWARD -j REJECT --reject-with icmp-host-prohibited'"),
    ]


def test_flannel_accept_rules_cover_policy_drop() -> None:
    rules = _filter("-A FORWARD -s 198.51.100.0/24 -j ACCEPT\n-A FORWARD -d 198.51.100.0/24 -j ACCEPT", forward="DROP")

    assert run(flannel_cluster(2, iptables=iptables(rules)), "forward-policy-drop") == []


def test_filtering_silent_without_iptables() -> None:
    assert run(flannel_cluster(2), "forward-policy-drop") == []
    assert run(calico_cluster(), "icmp-blocked") == []


def test_pod_paths_first_peer_past_scan_limit() -> None:
    from dataclasses import replace

    from netdoctor import synthetic
    from netdoctor.checks.filtering import pod_paths
    from netdoctor.facts import cluster_facts
    from netdoctor.model.routes import Route, RouteTable

    snapshot = synthetic.generate("direct-routing", 90)
    node = snapshot.nodes[0]
    assert node.routes is not None
    # Without routes to the first 70 peers' subnets, those take the default route and are skipped.
    dropped = set()
    for peer in range(1, 71):
        peer_node = snapshot.nodes[peer]
        assert peer_node.routes is not None
        dropped |= {(route.dst, route.dst_len) for route in peer_node.routes
                    if route.table == 254 and route.dev == "docker0" and route.dst_len == 24}
    rows = [route for route in node.routes if (route.dst, route.dst_len) not in dropped or route.dev == "docker0"]
    trimmed = replace(node, routes=RouteTable.from_rows(Route(*row) for row in rows))
    snapshot = replace(snapshot, nodes=(trimmed, *snapshot.nodes[1:]))
    facts = cluster_facts(snapshot)

    paths = pod_paths(facts, facts.nodes[node.name])

    assert [path.peer for path in paths] == [synthetic.node_name(71)]
    assert [path.peer_device for path in paths] == ["eth0"]
