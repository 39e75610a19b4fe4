"""overlay-port-blocked and pod-traffic-masqueraded, on iptables and on firewalld data."""

from __future__ import annotations

from dataclasses import replace

from test_checks_support import calico_cluster, flannel_cluster, iptables, ovs_node, run

from netdoctor.model import ClusterSnapshot
from netdoctor.model.node import (
    FirewalldPolicy,
    FirewalldState,
    FirewalldZone,
    NodeSnapshot,
    OvsInterface,
    OvsPort,
)

CENTOS_INPUT = """
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP
COMMIT
"""


def _public_zone(**changes: object) -> FirewalldState:
    zone = FirewalldZone("public", active=True, default=True, target="default", interfaces=("eth0",),
                         services=("ssh", "dhcpv6-client"))
    return FirewalldState(zones=(replace(zone, **changes),), default_zone="public")  # type: ignore[arg-type]


def test_input_reject_blocks_vxlan() -> None:
    findings = run(flannel_cluster(2, iptables=iptables(CENTOS_INPUT)), "overlay-port-blocked")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), ("node1: udp/8472 (flannel.1 (flannel VXLAN)) from 192.0.2.12 to 192.0.2.11 in eth0 is rejected "
                     "by '-A INPUT -j REJECT --reject-with icmp-host-prohibited'")),
    ]
    assert findings[0].evidence[0].line == 11


def test_log_rule_before_reject() -> None:
    rules = CENTOS_INPUT.replace("-A INPUT -j REJECT",
                                 '-A INPUT -m limit --limit 5/min -j LOG --log-prefix "dropped: "\n-A INPUT -j REJECT')
    nodes = (replace(ovs_node(1), iptables=iptables(rules)), ovs_node(2))
    findings = run(ClusterSnapshot(nodes=nodes, source="test"), "overlay-port-blocked")

    assert [finding.summary.split(" from ")[0] for finding in findings] == ["node1: IP protocol 47 (GRE) (OVS port gre1)"]


def test_input_policy_drop_without_rules() -> None:
    rules = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "overlay-port-blocked")

    assert [finding.summary for finding in findings] == [
        ("node1: udp/8472 (flannel.1 (flannel VXLAN)) from 192.0.2.12 to 192.0.2.11 in eth0 is dropped "
         "by the INPUT policy DROP"),
    ]


def test_vxlan_accept_before_reject_is_fine() -> None:
    rules = CENTOS_INPUT.replace("-A INPUT -j REJECT", "-A INPUT -s 192.0.2.0/24 -p udp -m udp --dport 8472 -j ACCEPT\n"
                                 "-A INPUT -j REJECT")

    assert run(flannel_cluster(2, iptables=iptables(rules)), "overlay-port-blocked") == []


def test_kube_mark_drop_not_unknown() -> None:
    # KUBE-FIREWALL's -m mark decides "no match" for an unmarked packet instead of stopping the walk.
    rules = CENTOS_INPUT.replace("-A INPUT -j REJECT --reject-with icmp-host-prohibited", "-A INPUT -p udp -j DROP")
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "overlay-port-blocked")

    assert [finding.summary.rsplit(" by ", 1)[1] for finding in findings] == ["'-A INPUT -p udp -j DROP'"]


def test_ovs_gre_protocol_rejected() -> None:
    nodes = (replace(ovs_node(1), iptables=iptables(CENTOS_INPUT)), ovs_node(2))
    findings = run(ClusterSnapshot(nodes=nodes, source="test"), "overlay-port-blocked")

    assert [finding.summary for finding in findings] == [
        ("node1: IP protocol 47 (GRE) (OVS port gre1) from 192.0.2.12 to 192.0.2.11 in eth0 is rejected by "
        "'-A INPUT -j REJECT --reject-with icmp-host-prohibited'"),
    ]


def test_ovs_gre_accepted() -> None:
    rules = CENTOS_INPUT.replace("-A INPUT -j REJECT", "-A INPUT -p gre -j ACCEPT\n-A INPUT -j REJECT")
    nodes = (replace(ovs_node(1), iptables=iptables(rules)), ovs_node(2))

    assert run(ClusterSnapshot(nodes=nodes, source="test"), "overlay-port-blocked") == []


def _vxlan_ports(node: NodeSnapshot, *ports: str) -> NodeSnapshot:
    """Give an OVS node's bridge one VXLAN port per ``dst_port`` option value ("" for none)."""
    (bridge,) = node.ovs or ()
    added = tuple(
        OvsPort(f"vx{number}", (OvsInterface(f"vx{number}", "vxlan", (("remote_ip", "192.0.2.12"),) + (
            (("dst_port", port),) if port else ())),))
        for number, port in enumerate(ports)
    )
    return replace(node, ovs=(replace(bridge, ports=bridge.ports + added),))


def test_ovs_vxlan_ports_rejected() -> None:
    rules = CENTOS_INPUT.replace("-A INPUT -j REJECT", "-A INPUT -p gre -j ACCEPT\n-A INPUT -j REJECT")
    odd = ("vxlan", "70000", "0", "-8472", "\u0664\u0667\u0668\u0669", "9" * 5000)
    node = _vxlan_ports(replace(ovs_node(1), iptables=iptables(rules)), "", " +8472x", *odd)
    findings = run(ClusterSnapshot(nodes=(node, ovs_node(2)), source="test"), "overlay-port-blocked")

    # OVS reads " +8472x" as 8472 and the odd values as no port, so only the default port and 8472 are tested.
    assert [finding.summary.split(" from ")[0] for finding in findings] == [
        "node1: udp/4789 (OVS port vx0)",
        "node1: udp/8472 (OVS port vx1)",
    ]


def test_calico_ipip_and_bgp_rejected() -> None:
    snapshot = calico_cluster(2)
    nodes = (replace(snapshot.nodes[0], iptables=iptables(CENTOS_INPUT)), snapshot.nodes[1])
    findings = run(ClusterSnapshot(nodes=nodes, source="test"), "overlay-port-blocked")

    assert [finding.summary.split(" from ")[0] for finding in findings] == [
        "node1: IP protocol 4 (IPENCAP) (tunl0 (Calico IPIP))",
        "node1: tcp/179 (BGP sessions)",
    ]


def test_firewalld_zone_without_vxlan_port() -> None:
    findings = run(flannel_cluster(2, firewalld=_public_zone()), "overlay-port-blocked")

    assert [finding.summary for finding in findings] == [
        ("node1: udp/8472 (flannel.1 (flannel VXLAN)) from 192.0.2.12 to 192.0.2.11 in eth0 is rejected by firewalld "
        "zone public (interface eth0): target default rejects what no service, port or rule accepts"),
    ]
    assert findings[0].evidence[0].source == "firewalld"


def test_firewalld_port_opened() -> None:
    assert run(flannel_cluster(2, firewalld=_public_zone(ports=("8472/udp",))), "overlay-port-blocked") == []


def test_firewalld_trusted_source_zone() -> None:
    trusted = FirewalldZone("trusted", active=True, target="ACCEPT", sources=("192.0.2.0/24",))
    state = replace(_public_zone(), zones=(*_public_zone().zones, trusted))

    assert run(flannel_cluster(2, firewalld=state), "overlay-port-blocked") == []


NAT_DOCKER = """
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-POSTROUTING - [0:0]
-A POSTROUTING -j KUBE-POSTROUTING
-A POSTROUTING -s 198.51.100.0/26 ! -o docker0 -j MASQUERADE
-A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
COMMIT
"""


def test_docker_masquerade_matches_pod_traffic() -> None:
    findings = run(flannel_cluster(2, iptables=iptables(NAT_DOCKER)), "pod-traffic-masqueraded")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), ("node1: TCP 198.51.100.2 -> node2's pod 198.51.100.66 (out flannel.1) is masqueraded by "
                     "'-A POSTROUTING -s 198.51.100.0/26 ! -o docker0 -j MASQUERADE'")),
    ]
    assert findings[0].evidence[0].line == 8


def test_flannel_return_exempts_pod_network() -> None:
    rules = NAT_DOCKER.replace("-A POSTROUTING -s 198.51.100.0/26", "-A POSTROUTING -s 198.51.100.0/24 -d "
                               "198.51.100.0/24 -j RETURN\n-A POSTROUTING -s 198.51.100.0/26")

    assert run(flannel_cluster(2, iptables=iptables(rules)), "pod-traffic-masqueraded") == []


NAT_HEAD = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"


def test_masquerade_without_device_test() -> None:
    rules = NAT_HEAD + "-A POSTROUTING -s 198.51.100.0/24 -j MASQUERADE\nCOMMIT\n"
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "pod-traffic-masqueraded")

    assert [finding.summary for finding in findings] == [
        ("node1: TCP 198.51.100.2 -> node2's pod 198.51.100.66 (out flannel.1) is masqueraded by "
         "'-A POSTROUTING -s 198.51.100.0/24 -j MASQUERADE'"),
    ]


def test_masquerade_of_peer_outside_return_prefix() -> None:
    # The RETURN covers node1's pod subnet and not node2's, so the peer's pods decide.
    rules = NAT_HEAD + ("-A POSTROUTING -d 198.51.100.0/26 -j RETURN\n"
                        "-A POSTROUTING -s 198.51.100.0/24 -j MASQUERADE\nCOMMIT\n")
    findings = run(flannel_cluster(2, iptables=iptables(rules)), "pod-traffic-masqueraded")

    assert [finding.detail("destination") for finding in findings] == ["198.51.100.66"]


def test_return_for_every_pod_subnet() -> None:
    rules = NAT_HEAD + ("-A POSTROUTING -d 198.51.100.0/24 -j RETURN\n"
                        "-A POSTROUTING -s 198.51.100.0/24 -j MASQUERADE\nCOMMIT\n")

    assert run(flannel_cluster(2, iptables=iptables(rules)), "pod-traffic-masqueraded") == []


def test_firewalld_masquerade_on_overlay_zone() -> None:
    state = _public_zone(masquerade=True)
    findings = run(flannel_cluster(2, firewalld=state), "pod-traffic-masqueraded")

    assert [finding.summary for finding in findings] == [
        ("node1: TCP 198.51.100.2 -> node2's pod 198.51.100.66 (out flannel.1) is masqueraded by firewalld zone "
        "public (masquerade: yes), which applies to flannel.1"),
    ]


def test_firewalld_forward_rejected_then_allowed_by_policy() -> None:
    rejected = run(flannel_cluster(2, firewalld=_public_zone()), "forward-policy-drop")
    policy = FirewalldPolicy("pods", active=True, priority=-1, target="ACCEPT", ingress_zones=("public",),
                             egress_zones=("public",))
    allowed = run(flannel_cluster(2, firewalld=replace(_public_zone(), policies=(policy,))), "forward-policy-drop")

    assert [finding.summary for finding in rejected] == [
        ("node1: TCP 198.51.100.2 -> 198.51.100.66 (to node2's pods, in docker0, out flannel.1) is rejected by "
        "firewalld from zone public (default zone) to zone public (default zone): no policy or intra-zone "
        "forwarding accepts it, so firewalld rejects it"),
        ("node1: TCP 198.51.100.66 -> 198.51.100.2 (from node2's pods, in flannel.1, out docker0) is rejected by "
        "firewalld from zone public (default zone) to zone public (default zone): no policy or intra-zone "
        "forwarding accepts it, so firewalld rejects it"),
    ]
    assert allowed == []


def test_firewalld_icmp_block_on_input() -> None:
    findings = run(flannel_cluster(2, firewalld=_public_zone(icmp_blocks=("echo-request",))), "icmp-blocked")

    assert [finding.summary for finding in findings] == [
        ("node1: ICMP echo-request from 192.0.2.12 to 192.0.2.11 is rejected by firewalld zone public (interface "
        "eth0): icmp-block echo-request"),
    ]
