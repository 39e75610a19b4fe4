"""Snapshot builders for the check tests, and a few tests of the shared facts they rely on.

Addresses are in documentation ranges: underlay 192.0.2.0/24, pod network
198.51.100.0/24 split into one /26 per node, and 203.0.113.0/24 for hosts
or routes that collide with it.
"""

from __future__ import annotations

from dataclasses import replace

from netdoctor.capture.iproute import parse_ip_route
from netdoctor.capture.iptables import parse_iptables_save
from netdoctor.engine import load_checks
from netdoctor.facts import cluster_facts, prefix_text
from netdoctor.model import (
    Address,
    ClusterSnapshot,
    Finding,
    FlannelSubnetEnv,
    Gap,
    Interface,
    IptablesRuleset,
    NodeSnapshot,
    OvsBridge,
    OvsInterface,
    OvsPort,
    RouteTable,
    Sysctls,
)

POD_NETWORK = "198.51.100.0/24"


def iface(
    name: str, index: int, *, kind: str = "ethernet", mtu: int = 1500, cidr: str | None = None,
    master: str | None = None, up: bool = True,
) -> Interface:
    """Build an interface with at most one IPv4 address."""
    addresses = ()
    if cidr is not None:
        address, _, length = cidr.partition("/")
        addresses = (Address(4, address, int(length)),)
    flags = ("BROADCAST", "MULTICAST", "UP", "LOWER_UP") if up else ("BROADCAST", "MULTICAST")
    return Interface(name, index, kind, "UP" if up else "DOWN", mtu, flags, master=master, addresses=addresses)


def routes(*lines: str) -> RouteTable:
    """Parse ``ip route`` lines."""
    return parse_ip_route("\n".join(lines), "test routes")  # type: ignore[no-any-return]


def iptables(text: str) -> IptablesRuleset:
    """Parse ``iptables-save`` text."""
    return parse_iptables_save(text.strip() + "\n", "test iptables-save")


def pod_subnet(i: int) -> str:
    """Return node ``i``'s pod subnet (1-based): 198.51.100.0/26, .64/26, .128/26."""
    return f"198.51.100.{(i - 1) * 64}/26"


def pod_gateway(i: int) -> str:
    return f"198.51.100.{(i - 1) * 64 + 1}"


def underlay_ip(i: int) -> str:
    return f"192.0.2.{10 + i}"


def flannel_node(i: int, count: int = 2, *, bridge_mtu: int = 1450, flannel_mtu: int = 1450,
                 with_flannel: bool = True, iptables_text: str | None = None, ip_forward: str = "1") -> NodeSnapshot:
    """Build a healthy flannel VXLAN node ``node{i}`` of a ``count``-node cluster."""
    interfaces = [
        iface("lo", 1, kind="loopback", mtu=65536, cidr="127.0.0.1/8"),
        iface("eth0", 2, cidr=f"{underlay_ip(i)}/24"),
        iface("docker0", 4, kind="bridge", mtu=bridge_mtu, cidr=f"{pod_gateway(i)}/26"),
        iface(f"veth{i}a", 5, kind="veth", mtu=bridge_mtu, master="docker0"),
    ]
    if with_flannel:
        interfaces.insert(2, iface("flannel.1", 3, kind="vxlan", mtu=flannel_mtu, cidr=f"198.51.100.{(i - 1) * 64}/32"))
    lines = ["default via 192.0.2.1 dev eth0", f"192.0.2.0/24 dev eth0 proto kernel scope link src {underlay_ip(i)}",
             f"{pod_subnet(i)} dev docker0 proto kernel scope link src {pod_gateway(i)}"]
    for j in range(1, count + 1):
        if j != i and with_flannel:
            lines.append(f"{pod_subnet(j)} via 198.51.100.{(j - 1) * 64} dev flannel.1 onlink")
    return NodeSnapshot(
        name=f"node{i}",
        interfaces=tuple(interfaces),
        routes=routes(*lines),
        iptables=iptables(iptables_text) if iptables_text is not None else None,
        sysctls=Sysctls((("net.ipv4.ip_forward", ip_forward),)),
        flannel_env=FlannelSubnetEnv(network=POD_NETWORK, subnet=f"{pod_gateway(i)}/26", mtu=1450, ipmasq=True),
    )


def flannel_cluster(count: int = 2, **changes: object) -> ClusterSnapshot:
    """Build a healthy flannel VXLAN cluster; ``changes`` apply to node1 only (``NodeSnapshot`` fields)."""
    nodes = [flannel_node(i, count) for i in range(1, count + 1)]
    nodes[0] = replace(nodes[0], **changes)  # type: ignore[arg-type]
    return ClusterSnapshot(nodes=tuple(nodes), source="test")


def calico_node(i: int, count: int = 3, *, extra_routes: tuple[str, ...] = (), pods: bool = True,
                tunl0_up: bool = True) -> NodeSnapshot:
    """Build a Calico IPIP node whose block is ``pod_subnet(i)``; docker0 is Docker's unused default bridge."""
    block = pod_subnet(i)
    interfaces = [
        iface("lo", 1, kind="loopback", mtu=65536, cidr="127.0.0.1/8"),
        iface("eth0", 2, cidr=f"{underlay_ip(i)}/24"),
        iface("docker0", 3, kind="bridge", cidr="203.0.113.1/24", up=False),
        iface("tunl0", 4, kind="ipip", mtu=1440, cidr=f"198.51.100.{(i - 1) * 64}/32", up=tunl0_up),
    ]
    lines = ["default via 192.0.2.1 dev eth0", f"192.0.2.0/24 dev eth0 proto kernel scope link src {underlay_ip(i)}",
             "203.0.113.0/24 dev docker0 proto kernel scope link src 203.0.113.1 linkdown",
             f"blackhole {block} proto bird"]
    if pods:
        interfaces.append(iface(f"cali{i}000000000", 5, mtu=1440))
        lines.append(f"198.51.100.{(i - 1) * 64 + 5} dev cali{i}000000000 scope link")
    for j in range(1, count + 1):
        if j != i:
            lines.append(f"{pod_subnet(j)} via {underlay_ip(j)} dev tunl0 proto bird onlink")
    lines.extend(extra_routes)
    return NodeSnapshot(name=f"node{i}", interfaces=tuple(interfaces), routes=routes(*lines),
                        sysctls=Sysctls((("net.ipv4.ip_forward", "1"),)))


def calico_cluster(count: int = 3) -> ClusterSnapshot:
    return ClusterSnapshot(nodes=tuple(calico_node(i, count) for i in range(1, count + 1)), source="test")


def ovs_node(i: int, *, bridge_mtu: int = 1462, enslaved: bool = True) -> NodeSnapshot:
    """Build an OVS GRE node: br0 holds gre ports and is a port of docker0, which carries the pod subnet."""
    interfaces = (
        iface("lo", 1, kind="loopback", mtu=65536, cidr="127.0.0.1/8"),
        iface("eth0", 2, cidr=f"{underlay_ip(i)}/24"),
        iface("docker0", 3, kind="bridge", mtu=bridge_mtu, cidr=f"{pod_gateway(i)}/26"),
        iface("ovs-system", 4, kind="openvswitch", up=False),
        iface("br0", 5, kind="openvswitch", mtu=bridge_mtu, master="docker0" if enslaved else None),
    )
    peer = 2 if i == 1 else 1
    ovs = (OvsBridge("br0", (OvsPort("br0", (OvsInterface("br0", "internal"),)),
                             OvsPort("gre1", (OvsInterface("gre1", "gre", (("remote_ip", underlay_ip(peer)),)),)))),)
    lines = ["default via 192.0.2.1 dev eth0", f"192.0.2.0/24 dev eth0 proto kernel scope link src {underlay_ip(i)}",
             f"{POD_NETWORK} dev docker0 scope link",
             f"{pod_subnet(i)} dev docker0 proto kernel scope link src {pod_gateway(i)}"]
    return NodeSnapshot(name=f"node{i}", interfaces=interfaces, routes=routes(*lines), ovs=ovs)


def run(snapshot: ClusterSnapshot, check_id: str) -> list[Finding]:
    """Run one check and return its findings, without the gaps of nodes where it could not decide."""
    (spec,) = load_checks([check_id])
    return sorted((item for item in spec.function(snapshot) if isinstance(item, Finding)), key=Finding.sort_key)


def run_gaps(snapshot: ClusterSnapshot, check_id: str) -> list[Gap]:
    """Run one check and return the gaps it reports for nodes where it could not decide."""
    (spec,) = load_checks([check_id])
    return [item for item in spec.function(snapshot) if isinstance(item, Gap)]


def test_facts_find_pod_bridges_and_subnets() -> None:
    facts = cluster_facts(flannel_cluster())
    node1 = facts.nodes["node1"]

    assert [bridge.name for bridge in node1.pod_bridges] == ["docker0"]
    assert node1.overlay_subnet is not None
    assert node1.overlay_subnet.text == "198.51.100.0/26"
    assert [cidr for _, cidr, _ in node1.underlay_subnets] == ["192.0.2.11/24"]
    assert [network.text for network in facts.pod_networks] == [POD_NETWORK]


def test_facts_ignore_unused_docker0_on_calico() -> None:
    facts = cluster_facts(calico_cluster())

    assert facts.nodes["node1"].pod_bridges == []
    assert [block.text for block in facts.nodes["node2"].calico_blocks] == ["198.51.100.64/26"]
    assert [(network.text, network.source) for network in facts.pod_networks] == [
        ("198.51.100.0/24", "Calico pool inferred from the nodes' blocks")
    ]


def test_facts_cached_per_snapshot() -> None:
    snapshot = flannel_cluster()

    assert cluster_facts(snapshot) is cluster_facts(snapshot)
    assert cluster_facts(flannel_cluster()) is not cluster_facts(snapshot)


def test_route_index_longest_match() -> None:
    facts = cluster_facts(flannel_cluster(3))
    index = facts.nodes["node1"].routes
    assert index is not None

    best = index.best((4, 0xC6336440, 26))  # 198.51.100.64/26

    assert best is not None
    assert best.dev == "flannel.1"
    assert prefix_text((best.family, best.dst, best.dst_len)) == "198.51.100.64/26"
    assert index.best((4, 0xCB007100, 24), skip_default=True) is None  # 203.0.113.0/24
