"""flannel-backend-mismatch, vtep-mismatch and the VXLAN binding part of overlay-interface-missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_checks_support import flannel_node, iface, pod_subnet, run, underlay_ip

from netdoctor import synthetic
from netdoctor.capture.iproute import parse_bridge_fdb, parse_ip_neigh
from netdoctor.checks import flannel as flannel_checks
from netdoctor.checks import overlay
from netdoctor.checks.flannel import NodeLeases
from netdoctor.facts import NodeFacts, cluster_facts, prefix_text
from netdoctor.flannel import Lease
from netdoctor.model import ClusterSnapshot, EtcdData, Interface, KubeNode, NodeSnapshot, VxlanInfo
from netdoctor.model.addr import parse_ip, parse_mac
from netdoctor.model.routes import NeighbourTable

CONFIG_KEY = "/coreos.com/network/config"


def vtep_mac(i: int) -> str:
    return f"0e:00:00:00:00:0{i}"


def vtep_address(i: int) -> str:
    return pod_subnet(i).split("/")[0]


def vxlan_node(i: int, count: int = 3, *, vni: int = 1, port: int = 8472, local: str | None = None,
               mac: str | None = None, fdb: dict[int, tuple[str, str]] | None = None,
               neigh: dict[int, str] | None = None) -> NodeSnapshot:
    """Build a flannel VXLAN node with ``ip -d`` details, FDB and neighbour entries for every peer.

    ``fdb`` and ``neigh`` override the entry for one peer: ``{peer: (mac, dst)}`` and ``{peer: mac}``.
    """
    node = flannel_node(i, count)
    device = Interface(f"flannel.{vni}", 3, "vxlan", "UNKNOWN", 1450, ("BROADCAST", "MULTICAST", "UP", "LOWER_UP"),
                       mac=mac or vtep_mac(i),
                       addresses=next(item for item in node.interfaces or () if item.name == "flannel.1").addresses,
                       vxlan=VxlanInfo(vni, local or underlay_ip(i), None, port, "eth0", False))
    interfaces = tuple(device if item.name == "flannel.1" else item for item in node.interfaces or ())
    fdb_lines, neigh_lines = [], []
    for j in range(1, count + 1):
        if j == i:
            continue
        fdb_mac, dst = (fdb or {}).get(j, (vtep_mac(j), underlay_ip(j)))
        fdb_lines.append(f"{fdb_mac} dev flannel.{vni} dst {dst} self permanent")
        neigh_lines.append(f"{vtep_address(j)} dev flannel.{vni} lladdr {(neigh or {}).get(j, vtep_mac(j))} PERMANENT")
    return replace(node, interfaces=interfaces, fdb=parse_bridge_fdb("\n".join(fdb_lines) + "\n", "test fdb"),
                   neighbours=parse_ip_neigh("\n".join(neigh_lines) + "\n", "test neigh"))


def config(backend: str = "vxlan", **extra: int) -> EtcdData:
    return EtcdData(((CONFIG_KEY, json.dumps({"Network": "198.51.100.0/24", "Backend": {"Type": backend, **extra}})),))


def lease_key(i: int) -> str:
    return f"/coreos.com/network/subnets/{pod_subnet(i).replace('/', '-')}"


def lease(i: int, public_ip: str, backend: str = "vxlan", mac: str | None = None) -> tuple[str, str]:
    value = {"PublicIP": public_ip, "BackendType": backend, "BackendData": {"VtepMAC": mac or vtep_mac(i)}}
    return lease_key(i), json.dumps(value)


def cluster(*nodes: NodeSnapshot, etcd: EtcdData | None = None,
            kube: tuple[KubeNode, ...] | None = None) -> ClusterSnapshot:
    return ClusterSnapshot(nodes=nodes, etcd=etcd, kube_nodes=kube, source="test")


def test_backend_vni_differs_from_config() -> None:
    snapshot = cluster(vxlan_node(1), vxlan_node(2, vni=2), vxlan_node(3), etcd=config())

    findings = run(snapshot, "flannel-backend-mismatch")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node2",), "node2: flannel VNI is 2 (flannel.2 vxlan id 2 dstport 8472), but the network config says 1"),
    ]
    assert findings[0].evidence[-1].item == f"{CONFIG_KEY} Backend.Type vxlan"


def test_backend_port_differs_from_config() -> None:
    snapshot = cluster(vxlan_node(1, port=4789), vxlan_node(2, port=4789), etcd=config(Port=4789, VNI=1))
    assert run(snapshot, "flannel-backend-mismatch") == []

    snapshot = cluster(vxlan_node(1), vxlan_node(2, port=4789), etcd=config(Port=4789, VNI=1))
    findings = run(snapshot, "flannel-backend-mismatch")

    assert [finding.summary for finding in findings] == [
        "node1: flannel port is 8472 (flannel.1 vxlan id 1 dstport 8472), but the network config says 4789",
    ]


def test_backend_lease_type_differs() -> None:
    etcd = EtcdData(config().keys + (lease(1, underlay_ip(1)), lease(2, underlay_ip(2), backend="udp")))
    snapshot = cluster(vxlan_node(1, 2), vxlan_node(2, 2), etcd=etcd)

    findings = run(snapshot, "flannel-backend-mismatch")

    assert [finding.summary for finding in findings] == [
        f"node2: flannel backend type is udp ({lease_key(2)} BackendType udp), but the network config says vxlan",
    ]


def test_backend_majority_without_config() -> None:
    annotations = (("flannel.alpha.coreos.com/backend-type", "udp"),)
    kube = (KubeNode("node3", annotations=annotations),)
    snapshot = cluster(vxlan_node(1), vxlan_node(2), vxlan_node(3), kube=kube)

    findings = run(snapshot, "flannel-backend-mismatch")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node3",), ("node3: flannel backend type is vxlan (flannel.1 vxlan id 1 dstport 8472), "
                     "udp (flannel.alpha.coreos.com/backend-type=udp), but 3 of 3 nodes show vxlan")),
    ]


def test_backend_tie_reports_all_nodes() -> None:
    snapshot = cluster(vxlan_node(1, 2), vxlan_node(2, 2, vni=7))

    findings = run(snapshot, "flannel-backend-mismatch")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1", "node2"), "flannel VNI differs across nodes and no value is shared by most: node1 1; node2 7"),
    ]


def test_backend_silent_when_consistent() -> None:
    etcd = EtcdData(config().keys + (lease(1, underlay_ip(1)), lease(2, underlay_ip(2))))
    assert run(cluster(vxlan_node(1, 2), vxlan_node(2, 2), etcd=etcd), "flannel-backend-mismatch") == []
    assert run(cluster(vxlan_node(1, 2), vxlan_node(2, 2)), "flannel-backend-mismatch") == []


def test_vtep_fdb_points_at_old_address() -> None:
    stale = {2: (vtep_mac(2), "192.0.2.99")}
    snapshot = cluster(vxlan_node(1, fdb=stale), vxlan_node(2), vxlan_node(3))

    findings = run(snapshot, "vtep-mismatch")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), ("node1: flannel.1 FDB entry '0e:00:00:00:00:02 dev flannel.1 dst 192.0.2.99 self permanent' for "
                     "node2's VTEP sends to 192.0.2.99 (no captured node's address), but node2's flannel.1 local is "
                     "192.0.2.12")),
    ]


def test_vtep_fdb_points_at_other_node() -> None:
    snapshot = cluster(vxlan_node(1, fdb={2: (vtep_mac(2), underlay_ip(3))}), vxlan_node(2), vxlan_node(3))

    findings = run(snapshot, "vtep-mismatch")

    assert len(findings) == 1
    assert "sends to 192.0.2.13 (node3's address)" in findings[0].summary


def test_vtep_stale_mac_after_peer_changed() -> None:
    old = "0e:00:00:00:00:99"
    node1 = vxlan_node(1, fdb={2: (old, underlay_ip(2))}, neigh={2: old})
    snapshot = cluster(node1, vxlan_node(2), vxlan_node(3))

    findings = run(snapshot, "vtep-mismatch")

    assert [finding.summary for finding in findings] == [
        ("node1: flannel.1 neighbour entry '198.51.100.64 dev flannel.1 lladdr 0e:00:00:00:00:99 PERMANENT' for node2 "
        "points at MAC 0e:00:00:00:00:99, but node2's flannel.1 has MAC 0e:00:00:00:00:02"),
    ]


def test_vtep_missing_fdb_for_current_mac() -> None:
    node1 = vxlan_node(1, fdb={2: ("0e:00:00:00:00:99", underlay_ip(2))})
    findings = run(cluster(node1, vxlan_node(2), vxlan_node(3)), "vtep-mismatch")

    assert [finding.summary for finding in findings] == [
        ("node1: flannel.1 has no FDB entry for node2's VTEP MAC 0e:00:00:00:00:02, so the neighbour entry for node2 "
        "leads nowhere"),
    ]


def test_vtep_missing_neighbour_entry() -> None:
    # node1 keeps its FDB entries for both peers but its neighbour entry for node3 only.
    only_node3 = parse_ip_neigh(f"{vtep_address(3)} dev flannel.1 lladdr {vtep_mac(3)} PERMANENT\n", "test neigh")
    node1 = replace(vxlan_node(1), neighbours=only_node3)
    findings = run(cluster(node1, vxlan_node(2), vxlan_node(3)), "vtep-mismatch")

    assert [finding.summary for finding in findings] == [
        ("node1: flannel.1 has no neighbour entry for node2's VTEP address 198.51.100.64, so the kernel cannot "
         "resolve the next hop of node2's pod subnet"),
    ]
    assert findings[0].detail("entry") == "neighbour-missing"


def test_vtep_mac_from_lease_when_peer_device_lacks_it() -> None:
    node2 = vxlan_node(2, 2)
    interfaces = tuple(replace(item, mac=None) if item.name == "flannel.1" else item for item in node2.interfaces or ())
    etcd = EtcdData(config().keys + (lease(2, underlay_ip(2), mac="0e:00:00:00:00:42"),))
    snapshot = cluster(vxlan_node(1, 2), replace(node2, interfaces=interfaces), etcd=etcd)

    findings = run(snapshot, "vtep-mismatch")

    assert [finding.summary for finding in findings] == [
        ("node1: flannel.1 neighbour entry '198.51.100.64 dev flannel.1 lladdr 0e:00:00:00:00:02 PERMANENT' for node2 "
        f"points at MAC 0e:00:00:00:00:02, but lease {lease_key(2)} has MAC 0e:00:00:00:00:42"),
    ]


def test_vtep_silent_when_healthy() -> None:
    assert run(cluster(vxlan_node(1), vxlan_node(2), vxlan_node(3)), "vtep-mismatch") == []
    assert run(cluster(vxlan_node(1, 2), replace(vxlan_node(2, 2), fdb=None, neighbours=None)), "vtep-mismatch") == []


def test_vxlan_bound_to_other_than_public_ip() -> None:
    etcd = EtcdData(config().keys + (lease(1, underlay_ip(1)), lease(2, underlay_ip(2))))
    snapshot = cluster(vxlan_node(1, 2, local="192.0.2.99"), vxlan_node(2, 2), etcd=etcd)

    findings = run(snapshot, "overlay-interface-missing")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), (f"node1: flannel.1 is bound to local 192.0.2.99, but its lease {lease_key(1)} has PublicIP "
                     "192.0.2.11")),
    ]


def test_vxlan_bound_to_address_node_lacks() -> None:
    findings = run(cluster(vxlan_node(1, 2, local="192.0.2.99"), vxlan_node(2, 2)), "overlay-interface-missing")

    assert [finding.summary for finding in findings] == [
        "node1: flannel.1 is bound to local 192.0.2.99, an address the node does not hold",
    ]


def test_vxlan_binding_silent_when_right() -> None:
    etcd = EtcdData(config().keys + (lease(1, underlay_ip(1)), lease(2, underlay_ip(2))))

    assert run(cluster(vxlan_node(1, 2), vxlan_node(2, 2), etcd=etcd), "overlay-interface-missing") == []


def _scanned_lease(node: NodeFacts, all_leases: tuple[Lease, ...]) -> Lease | None:
    """Return a node's lease by scanning every lease: the one for its subnet, else the first with its address."""
    if node.overlay_subnet is not None:
        for lease in all_leases:
            if lease.subnet.with_prefixlen == prefix_text(node.overlay_subnet.prefix):
                return lease
    for lease in all_leases:
        if lease.public_ip is not None and parse_ip(lease.public_ip)[1] in node.addresses:
            return lease
    return None


def test_node_leases_match_a_scan() -> None:
    snapshot = synthetic.generate("flannel-vxlan", 6, seed=4)
    assert snapshot.etcd is not None
    # node 1's subnet.env names no leased subnet, so its leases are found by PublicIP. It holds a second, stale
    # lease that sorts first, and a lease for the address of its eth1 that sorts before both. Node 2 has no
    # subnet.env.
    stale = ("/coreos.com/network/subnets/10.127.0.0-24",
             json.dumps({"PublicIP": "10.0.0.2", "BackendType": "vxlan"}))
    second = ("/coreos.com/network/subnets/10.126.0.0-24",
              json.dumps({"PublicIP": "10.9.0.1", "BackendType": "vxlan"}))
    # Node 3 is found by PublicIP too, and its stale lease sorts before its current one.
    stale_three = ("/coreos.com/network/subnets/10.125.0.0-24",
                   json.dumps({"PublicIP": "10.0.0.4", "BackendType": "vxlan"}))
    etcd = replace(snapshot.etcd, keys=tuple(sorted(snapshot.etcd.keys + (stale, second, stale_three))))
    nodes = list(snapshot.nodes)
    assert nodes[1].flannel_env is not None
    nodes[1] = replace(nodes[1], flannel_env=replace(nodes[1].flannel_env, subnet="10.200.0.1/24"),
                       interfaces=(nodes[1].interfaces or ()) + (iface("eth1", 40, cidr="10.9.0.1/24"),))
    nodes[2] = replace(nodes[2], flannel_env=None)
    assert nodes[3].flannel_env is not None
    nodes[3] = replace(nodes[3], flannel_env=replace(nodes[3].flannel_env, subnet="10.201.0.1/24"))
    facts = cluster_facts(replace(snapshot, nodes=tuple(nodes), etcd=etcd))
    all_leases = overlay._all_leases(replace(snapshot, etcd=etcd))
    finder = NodeLeases(all_leases)

    for node in facts.nodes.values():
        assert finder.find(node) == _scanned_lease(node, all_leases), node.name
    first_lease = finder.find(facts.nodes["node00001"])
    assert first_lease is not None
    assert first_lease.key == second[0]
    stale_lease = finder.find(facts.nodes["node00003"])
    assert stale_lease is not None
    assert stale_lease.key == stale_three[0]
    assert finder.find(facts.nodes["node00002"]) is not None


_ENTRY_CHANGES = ("drop", "other value", "duplicate", "empty value", "own entry", "other device", "family 6")


def _changed_entries(table: Any, node: NodeSnapshot, change: str, row: int, other: int) -> Any:
    rows = list(table)
    entry = rows[row % len(rows)]
    value_field = "lladdr" if isinstance(table, NeighbourTable) else "dst"
    if change == "drop":
        rows.remove(entry)
    elif change == "other value":
        rows[rows.index(entry)] = entry._replace(**{value_field: other})
    elif change == "duplicate":
        rows.append(entry._replace(**{value_field: other}))
    elif change == "empty value":
        rows.append(entry._replace(**{value_field: 0}))
    elif change == "own entry":
        device = next(interface for interface in node.interfaces or () if interface.name == "flannel.1")
        own = parse_ip(device.addresses[0].address)[1] if isinstance(table, NeighbourTable) else parse_mac(device.mac or "")
        rows.append(entry._replace(**{"dst" if isinstance(table, NeighbourTable) else "mac": own}))
    elif change == "other device":
        rows[rows.index(entry)] = entry._replace(dev="eth0")
    else:
        rows[rows.index(entry)] = entry._replace(family=6)
    return type(table).from_rows(rows)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["neighbours", "fdb"]), st.sampled_from(_ENTRY_CHANGES),
                          st.integers(0, 10), st.sampled_from(["peer", "random"])), max_size=3))
def test_vtep_set_comparison_matches_per_peer(changes: list[tuple[int, str, str, int, str]]) -> None:
    # Nodes whose entries all match their peers are settled by set comparison, and the rest entry by entry.
    snapshot = synthetic.generate("flannel-vxlan", 5)
    nodes = list(snapshot.nodes)
    for index, part, change, row, source in changes:
        table = getattr(nodes[index], part)
        peer = snapshot.nodes[(index + 1 + row) % 5]
        if source == "random":
            other = 0x0A0B0C0D0E0F if part == "neighbours" else parse_ip("192.0.2.250")[1]
        elif part == "neighbours":
            other = parse_mac(next(i for i in peer.interfaces or () if i.name == "flannel.1").mac or "")
        else:
            other = parse_ip(next(i for i in peer.interfaces or () if i.name == "eth0").addresses[0].address)[1]
        nodes[index] = replace(nodes[index], **{part: _changed_entries(table, nodes[index], change, row, other)})
    changed = replace(snapshot, nodes=tuple(nodes))

    compared_as_sets = run(changed, "vtep-mismatch")
    with _entries_compared_per_peer():
        compared_per_peer = run(changed, "vtep-mismatch")

    assert compared_as_sets == compared_per_peer


@contextmanager
def _entries_compared_per_peer() -> Iterator[None]:
    original = flannel_checks._ExpectedEntries.of
    flannel_checks._ExpectedEntries.of = classmethod(lambda cls, vteps: None)
    try:
        yield
    finally:
        flannel_checks._ExpectedEntries.of = original
