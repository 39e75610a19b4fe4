"""The checks against real kernel state: a three-node flannel VXLAN lab in nd- namespaces.

Each node namespace has eth0 (a veth into a shared LAN bridge), docker0 with a
veth port, flannel.1 (VXLAN VNI 1 over eth0) and, under a per-node root
directory, ``/run/flannel/subnet.env``. The healthy lab must give no finding of
these checks; the faulty lab breaks one thing per check and every check must
report it with the values that were set. All addresses exist only inside the
namespaces the test creates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nslib
import pytest

from netdoctor.collect import collect_cluster
from netdoctor.engine import load_checks, run_checks
from netdoctor.model import ClusterSnapshot, Finding
from netdoctor.target import Target

pytestmark = [nslib.needs_root, pytest.mark.netns]

CHECKS = [
    "blackhole-route", "bridge-outside-overlay-subnet", "bridge-subnet-overlap", "forward-policy-drop",
    "icmp-blocked", "ip-forward-disabled", "mtu-mismatch", "overlay-interface-missing",
    "pod-network-overlaps-host", "route-missing",
]


def _node(namespace: nslib.Namespace, lan: nslib.Namespace, i: int, root: Path, docker_mtu: int) -> None:
    """Give node ``i`` its underlay, docker0 with one port, flannel.1 and subnet.env."""
    ns = namespace.name
    nslib.sh(f"ip -n {ns} link add eth0 type veth peer name lan-n{i} netns {lan.name}")
    nslib.sh(f"ip -n {lan.name} link set lan-n{i} master br-lan up")
    namespace.ip(f"addr add 192.168.100.1{i}/24 dev eth0")
    namespace.ip("link set eth0 up")
    namespace.ip("link add docker0 type bridge")
    namespace.ip(f"addr add 10.244.{i}.1/24 dev docker0")
    namespace.ip("link add vethpod type veth peer name vethpod-c")
    namespace.ip("link set vethpod master docker0")
    for device in ("docker0", "vethpod", "vethpod-c"):
        namespace.ip(f"link set {device} mtu {docker_mtu} up")
    namespace.ip(f"link add flannel.1 type vxlan id 1 local 192.168.100.1{i} dev eth0 dstport 8472 nolearning")
    namespace.ip(f"addr add 10.244.{i}.0/32 dev flannel.1")
    namespace.ip("link set flannel.1 up")
    namespace.run("sysctl -qw net.ipv4.ip_forward=1")
    env = root / "run" / "flannel"
    env.mkdir(parents=True)
    (env / "subnet.env").write_text(
        f"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.{i}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
    )


@contextmanager
def lab(tmp_path: Path, *, faulty: bool) -> Iterator[ClusterSnapshot]:
    """Build the three-node lab, collect it, and remove it on exit."""
    with nslib.namespaces("lan", "n1", "n2", "n3") as (lan, n1, n2, n3):
        lan.ip("link add br-lan type bridge")
        lan.ip("link set br-lan up")
        nodes = {1: n1, 2: n2, 3: n3}
        roots = {i: tmp_path / f"n{i}" for i in nodes}
        for i, namespace in nodes.items():
            _node(namespace, lan, i, roots[i], 1500 if faulty and i == 1 else 1450)
        for i, namespace in nodes.items():
            for j in nodes:
                if j != i and not (faulty and (i, j) == (1, 2)):
                    namespace.ip(f"route add 10.244.{j}.0/24 via 10.244.{j}.0 dev flannel.1 onlink")
        if faulty:
            # node1: no route to node2's pods but a blackhole, ICMP rejected, forwarding off.
            n1.ip("route add blackhole 10.244.2.0/24")
            n1.run("iptables -A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited")
            n1.run("sysctl -qw net.ipv4.ip_forward=0")
            # node2: FORWARD policy DROP, a bridge outside its subnet overlapping node1's,
            # and a VPN-style tun device inside the pod network.
            n2.run("iptables -P FORWARD DROP")
            n2.ip("link add cni0 type bridge")
            n2.ip("addr add 10.244.1.129/25 dev cni0")
            n2.ip("link add vethcni type veth peer name vethcni-c")
            n2.ip("link set vethcni master cni0")
            for device in ("cni0", "vethcni", "vethcni-c"):
                n2.ip(f"link set {device} mtu 1450 up")
            n2.ip("tuntap add dev tun0 mode tun")
            n2.ip("addr add 10.244.200.1/24 dev tun0")
            n2.ip("link set tun0 up")
            # node3: flannel.1 down.
            n3.ip("link set flannel.1 down")
        targets = [Target(f"node{i}", netns=namespace.name, root=roots[i]) for i, namespace in nodes.items()]
        yield collect_cluster(targets, "netns")


def _findings(snapshot: ClusterSnapshot) -> dict[str, list[Finding]]:
    report = run_checks(snapshot, load_checks(CHECKS))
    result: dict[str, list[Finding]] = {}
    for finding in report.findings:
        result.setdefault(finding.check, []).append(finding)
    return result


def _summaries(found: dict[str, list[Finding]], check_id: str) -> list[str]:
    return [finding.summary for finding in found.get(check_id, [])]


def test_healthy_lab_gives_no_findings(tmp_path: Path) -> None:
    with lab(tmp_path, faulty=False) as snapshot:
        found = _findings(snapshot)

    parts = {node.name: sorted(node.parts()) for node in snapshot.nodes}
    assert all({"interfaces", "routes", "iptables", "sysctls", "flannel_env"} <= set(names) for names in parts.values())
    assert {check_id: _summaries(found, check_id) for check_id in found} == {}


def test_faulty_lab_reports_every_fault(tmp_path: Path) -> None:
    with lab(tmp_path, faulty=True) as snapshot:
        found = _findings(snapshot)

    assert ("node1: docker0 1500, vethpod 1500 exceed 1450, what flannel.1 (VXLAN, 50 bytes) carries over eth0 MTU 1500"
            in _summaries(found, "mtu-mismatch"))
    assert "node1: no route to node2's FLANNEL_SUBNET 10.244.2.0/24" in _summaries(found, "route-missing")
    assert ("node1: blackhole 10.244.2.0/24 discards traffic to node2's FLANNEL_SUBNET 10.244.2.0/24"
            in _summaries(found, "blackhole-route"))
    assert ("node1: ICMP echo-request from 192.168.100.12 to 192.168.100.11 on INPUT is rejected by "
            "'-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'") in _summaries(found, "icmp-blocked")
    assert _summaries(found, "ip-forward-disabled") == [
        "node1: net.ipv4.ip_forward = 0, so the node does not route pod traffic"
    ]
    assert any(
        summary.startswith("node2: TCP 10.244.2.2 -> 10.244.1.2 (to node1's pods, in docker0, out ")
        and summary.endswith("is dropped by the FORWARD policy DROP")
        for summary in _summaries(found, "forward-policy-drop")
    ), _summaries(found, "forward-policy-drop")
    assert ("pod bridge subnets overlap across nodes: docker0 10.244.1.1/24 on node1 overlaps cni0 10.244.1.129/25 on node2"
            in _summaries(found, "bridge-subnet-overlap"))
    assert ("node2: cni0 10.244.1.129/25 is not inside FLANNEL_SUBNET 10.244.2.0/24"
            in _summaries(found, "bridge-outside-overlay-subnet"))
    assert any("overlaps route 10.244.200.0/24 dev tun0" in summary and summary.endswith("on node2")
               for summary in _summaries(found, "pod-network-overlaps-host")), _summaries(found, "pod-network-overlaps-host")
    assert _summaries(found, "overlay-interface-missing") == [
        "node3: flannel.1 is down although FLANNEL_SUBNET is 10.244.3.1/24"
    ]
