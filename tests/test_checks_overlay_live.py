"""The VTEP, MAC, backend and next-hop checks against kernel state in nd- namespaces.

Three nodes share a LAN bridge; each has eth0, docker0 with a veth port, and
flannel.N (VXLAN over eth0) with static neighbour and FDB entries per peer as
flanneld programs them. Every fault is made with iproute2 in the namespaces
and read back through the netns collectors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import nslib
import pytest

from netdoctor.collect import collect_cluster
from netdoctor.engine import load_checks, run_checks
from netdoctor.model import ClusterSnapshot
from netdoctor.target import Target

pytestmark = [nslib.needs_root, pytest.mark.netns]

CHECKS = ["duplicate-mac", "flannel-backend-mismatch", "overlay-interface-missing", "route-wrong-nexthop",
          "vtep-mismatch"]


def vtep_mac(i: int) -> str:
    return f"8e:2c:51:7d:0{i}:b3"


def _vxlan(namespace: nslib.Namespace, i: int, vni: int = 1, mac: str | None = None) -> None:
    namespace.ip(f"link add flannel.{vni} address {mac or vtep_mac(i)} type vxlan id {vni} local 192.168.100.1{i} "
                 "dev eth0 dstport 8472 nolearning")
    namespace.ip(f"addr add 10.244.{i}.0/32 dev flannel.{vni}")
    namespace.ip(f"link set flannel.{vni} up")


@contextmanager
def lab(tmp_path: Path, fault: Callable[[dict[int, nslib.Namespace]], None]) -> Iterator[ClusterSnapshot]:
    """Build the three-node VXLAN lab, apply ``fault``, collect it, and remove it on exit."""
    with nslib.namespaces("lan", "n1", "n2", "n3") as (lan, n1, n2, n3):
        lan.ip("link add br-lan type bridge")
        lan.ip("link set br-lan up")
        nodes = {1: n1, 2: n2, 3: n3}
        for i, namespace in nodes.items():
            nslib.sh(f"ip -n {namespace.name} link add eth0 type veth peer name lan-n{i} netns {lan.name}")
            nslib.sh(f"ip -n {lan.name} link set lan-n{i} master br-lan up")
            namespace.ip(f"addr add 192.168.100.1{i}/24 dev eth0")
            namespace.ip("link set eth0 up")
            namespace.ip("link add docker0 address 02:42:ac:11:00:01 type bridge")
            namespace.ip(f"addr add 10.244.{i}.1/24 dev docker0")
            namespace.ip("link add vethpod type veth peer name vethpod-c")
            namespace.ip("link set vethpod master docker0")
            for device in ("docker0", "vethpod", "vethpod-c"):
                namespace.ip(f"link set {device} mtu 1450 up")
            _vxlan(namespace, i)
            env = tmp_path / f"n{i}" / "run" / "flannel"
            env.mkdir(parents=True)
            (env / "subnet.env").write_text(f"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.{i}.1/24\n"
                                            "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
        for i, namespace in nodes.items():
            for j in nodes:
                if j != i:
                    namespace.ip(f"neigh replace 10.244.{j}.0 lladdr {vtep_mac(j)} dev flannel.1 nud permanent")
                    nslib.sh(f"bridge -n {namespace.name} fdb append {vtep_mac(j)} dev flannel.1 "
                             f"dst 192.168.100.1{j} self permanent")
                    namespace.ip(f"route add 10.244.{j}.0/24 via 10.244.{j}.0 dev flannel.1 onlink")
        fault(nodes)
        targets = [Target(f"node{i}", netns=namespace.name, root=tmp_path / f"n{i}") for i, namespace in nodes.items()]
        yield collect_cluster(targets, "netns")


def _summaries(snapshot: ClusterSnapshot) -> dict[str, list[str]]:
    report = run_checks(snapshot, load_checks(CHECKS))
    failed = [gap for gap in report.gaps if gap.source.startswith("check:")]
    assert not failed, failed
    found: dict[str, list[str]] = {}
    for finding in report.findings:
        found.setdefault(finding.check, []).append(finding.summary)
    return found


def test_live_healthy_lab_is_silent(tmp_path: Path) -> None:
    with lab(tmp_path, lambda nodes: None) as snapshot:
        found = _summaries(snapshot)

    assert all(node.fdb is not None and node.neighbours is not None for node in snapshot.nodes)
    assert found == {}


def test_live_stale_fdb_and_neighbour(tmp_path: Path) -> None:
    def fault(nodes: dict[int, nslib.Namespace]) -> None:
        nslib.sh(f"bridge -n {nodes[1].name} fdb del {vtep_mac(2)} dev flannel.1 dst 192.168.100.12 self")
        nslib.sh(f"bridge -n {nodes[1].name} fdb append {vtep_mac(2)} dev flannel.1 dst 192.168.100.42 self permanent")
        nodes[3].ip("neigh replace 10.244.1.0 lladdr 8e:2c:51:7d:99:b3 dev flannel.1 nud permanent")

    with lab(tmp_path, fault) as snapshot:
        found = _summaries(snapshot)

    assert found["vtep-mismatch"] == [
        (f"node1: flannel.1 FDB entry '{vtep_mac(2)} dev flannel.1 dst 192.168.100.42 self permanent' for node2's VTEP "
        "sends to 192.168.100.42 (no captured node's address), but node2's flannel.1 local is 192.168.100.12"),
        ("node3: flannel.1 neighbour entry '10.244.1.0 dev flannel.1 lladdr 8e:2c:51:7d:99:b3 PERMANENT' for node1 "
        f"points at MAC 8e:2c:51:7d:99:b3, but node1's flannel.1 has MAC {vtep_mac(1)}"),
    ]


def test_live_duplicate_vtep_mac(tmp_path: Path) -> None:
    with lab(tmp_path, lambda nodes: nodes[3].ip(f"link set flannel.1 address {vtep_mac(1)}")) as snapshot:
        found = _summaries(snapshot)

    assert found["duplicate-mac"] == [
        f"flannel.1 on node1 and flannel.1 on node3 share MAC {vtep_mac(1)} on VXLAN VNI 1 port 8472",
    ]


def test_live_vni_differs_and_wrong_nexthop(tmp_path: Path) -> None:
    def fault(nodes: dict[int, nslib.Namespace]) -> None:
        nodes[2].ip("link del flannel.1")
        _vxlan(nodes[2], 2, vni=7)
        nodes[1].ip("route replace 10.244.3.0/24 via 10.244.2.0 dev flannel.1 onlink")

    with lab(tmp_path, fault) as snapshot:
        found = _summaries(snapshot)

    assert found["flannel-backend-mismatch"] == [
        "node2: flannel VNI is 7 (flannel.7 vxlan id 7 dstport 8472), but 2 of 3 nodes show 1",
    ]
    assert found["route-wrong-nexthop"] == [
        ("node1: 10.244.3.0/24 via 10.244.2.0 dev flannel.1 onlink sends node3's FLANNEL_SUBNET 10.244.3.0/24 to "
        "node2's pod address 10.244.2.0 instead of node3"),
    ]


def test_live_vxlan_bound_to_missing_address(tmp_path: Path) -> None:
    def fault(nodes: dict[int, nslib.Namespace]) -> None:
        nodes[3].ip("link del flannel.1")
        nodes[3].ip("addr add 192.168.100.99/24 dev eth0")
        nodes[3].ip(f"link add flannel.1 address {vtep_mac(3)} type vxlan id 1 local 192.168.100.99 dev eth0 "
                    "dstport 8472 nolearning")
        nodes[3].ip("link set flannel.1 up")
        nodes[3].ip("addr del 192.168.100.99/24 dev eth0")

    with lab(tmp_path, fault) as snapshot:
        found = _summaries(snapshot)

    assert found["overlay-interface-missing"] == [
        "node3: flannel.1 is bound to local 192.168.100.99, an address the node does not hold",
    ]
