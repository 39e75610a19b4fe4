"""rp-filter-strict, bridge-nf-disabled and the pod-network gate of ip-forward-disabled."""

from __future__ import annotations

from dataclasses import replace

from test_checks_support import (
    calico_cluster,
    flannel_cluster,
    flannel_node,
    iface,
    iptables,
    routes,
    run,
)

from netdoctor.model import ClusterSnapshot, NodeSnapshot, Sysctls

NODE1_ROUTES = (
    "default via 192.0.2.1 dev eth0",
    "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",
    "198.51.100.0/26 dev docker0 proto kernel scope link src 198.51.100.1",
)
NODE1_TO_NODE2 = "198.51.100.64/26 via 198.51.100.64 dev flannel.1 onlink"

KUBE_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\nCOMMIT\n"


def _sysctls(**values: str) -> Sysctls:
    return Sysctls(tuple(sorted((key.replace("__", "."), value) for key, value in values.items())))


def _two_nic_node(rp_filter: str) -> NodeSnapshot:
    node = flannel_node(1, 2)
    assert node.interfaces is not None
    lines = [*NODE1_ROUTES, NODE1_TO_NODE2, "192.0.2.0/24 dev eth1 proto kernel scope link src 192.0.2.21"]
    return replace(
        node,
        interfaces=(*node.interfaces, iface("eth1", 9, cidr="192.0.2.21/24")),
        routes=routes(*lines),
        sysctls=Sysctls((("net.ipv4.conf.all.rp_filter", rp_filter), ("net.ipv4.conf.eth1.rp_filter", "0"),
                         ("net.ipv4.ip_forward", "1"))),
    )


def test_rp_filter_strict_two_nics_one_subnet() -> None:
    snapshot = ClusterSnapshot(nodes=(_two_nic_node("1"), flannel_node(2, 2)), source="test")
    findings = run(snapshot, "rp-filter-strict")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), ("node1: rp_filter = 1 on eth1 (net.ipv4.conf.all.rp_filter) but the route back to 192.0.2.0/24 "
                     "leaves by eth0 (eth0 and eth1 share 192.0.2.0/24)")),
    ]
    assert findings[0].evidence[0].item == "net.ipv4.conf.all.rp_filter = 1"


def test_rp_filter_loose_two_nics_is_fine() -> None:
    snapshot = ClusterSnapshot(nodes=(_two_nic_node("2"), flannel_node(2, 2)), source="test")

    assert run(snapshot, "rp-filter-strict") == []


def test_rp_filter_strict_symmetric_overlay_is_fine() -> None:
    strict = Sysctls((("net.ipv4.conf.all.rp_filter", "1"), ("net.ipv4.conf.flannel/1.rp_filter", "1")))
    calico = calico_cluster(3)
    calico = replace(calico, nodes=tuple(replace(node, sysctls=strict) for node in calico.nodes))

    assert run(flannel_cluster(2, sysctls=strict), "rp-filter-strict") == []
    assert run(calico, "rp-filter-strict") == []


def test_rp_filter_strict_overlay_return_elsewhere() -> None:
    # node1 lost its route to node2's pods, so replies to node2's pods that arrive on flannel.1 leave by eth0.
    node1 = replace(flannel_node(1, 2), routes=routes(*NODE1_ROUTES), sysctls=_sysctls(net__ipv4__conf__all__rp_filter="1"))
    findings = run(ClusterSnapshot(nodes=(node1, flannel_node(2, 2)), source="test"), "rp-filter-strict")

    assert [finding.summary for finding in findings] == [
        ("node1: rp_filter = 1 on flannel.1 (net.ipv4.conf.all.rp_filter) but the route back to 198.51.100.64/26 "
        "leaves by eth0 (node2's pods reach this node through flannel.1)"),
    ]


def test_bridge_nf_disabled_with_kube_proxy() -> None:
    sysctls = _sysctls(net__bridge__bridge_nf_call_iptables="0", net__ipv4__ip_forward="1")
    sysctls = Sysctls(tuple((key.replace("_", "-") if key.startswith("net.bridge") else key, value)
                            for key, value in sysctls.values))
    findings = run(flannel_cluster(2, sysctls=sysctls, iptables=iptables(KUBE_FILTER)), "bridge-nf-disabled")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), ("node1: net.bridge.bridge-nf-call-iptables = 0 while pods on docker0 depend on iptables chain "
                     "KUBE-SERVICES")),
    ]


def test_bridge_nf_absent_or_on_is_silent() -> None:
    absent = Sysctls((("net.ipv4.ip_forward", "1"),))
    enabled = Sysctls((("net.bridge.bridge-nf-call-iptables", "1"),))

    assert run(flannel_cluster(2, sysctls=absent, iptables=iptables(KUBE_FILTER)), "bridge-nf-disabled") == []
    assert run(flannel_cluster(2, sysctls=enabled, iptables=iptables(KUBE_FILTER)), "bridge-nf-disabled") == []


def test_bridge_nf_off_without_kube_chains_is_silent() -> None:
    disabled = Sysctls((("net.bridge.bridge-nf-call-iptables", "0"),))
    plain = KUBE_FILTER.replace(":KUBE-SERVICES - [0:0]\n", "")

    assert run(flannel_cluster(2, sysctls=disabled, iptables=iptables(plain)), "bridge-nf-disabled") == []


def test_ip_forward_off_on_plain_machine_is_silent() -> None:
    plain = NodeSnapshot(
        name="laptop",
        interfaces=(iface("lo", 1, kind="loopback", mtu=65536, cidr="127.0.0.1/8"), iface("eth0", 2, cidr="192.0.2.50/24")),
        routes=routes("default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.50"),
        sysctls=Sysctls((("net.ipv4.ip_forward", "0"),)),
    )

    assert run(ClusterSnapshot(nodes=(plain,), source="test"), "ip-forward-disabled") == []


def test_ip_forward_off_names_pod_network() -> None:
    findings = run(flannel_cluster(2, sysctls=Sysctls((("net.ipv4.ip_forward", "0"),))), "ip-forward-disabled")

    assert [evidence.item for evidence in findings[0].evidence] == ["net.ipv4.ip_forward = 0", "backend flannel-vxlan"]
