"""etcd-network-config-missing and etcd-lease-mismatch over snapshots built in code."""

from __future__ import annotations

import json

from netdoctor.engine import load_checks, run_checks
from netdoctor.model import (
    Address,
    ClusterSnapshot,
    EtcdData,
    FlannelSubnetEnv,
    Interface,
    NodeSnapshot,
)

CONFIG = json.dumps({"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}})


def _lease(public_ip: str, mac: str) -> str:
    return json.dumps({"PublicIP": public_ip, "BackendType": "vxlan", "BackendData": {"VtepMAC": mac}})


def _node(name: str, underlay: str, subnet: str, mac: str) -> NodeSnapshot:
    third = subnet.split(".")[2]
    return NodeSnapshot(
        name=name,
        interfaces=(
            Interface("eth0", 2, "ethernet", "UP", 1500, ("UP",), addresses=(Address(4, underlay, 24),)),
            Interface("flannel.1", 3, "vxlan", "UNKNOWN", 1450, ("UP",), mac=mac,
                      addresses=(Address(4, f"10.244.{third}.0", 32),)),
        ),
        flannel_env=FlannelSubnetEnv(network="10.244.0.0/16", subnet=f"10.244.{third}.1/24", mtu=1450),
    )


def _snapshot(keys: dict[str, str], nodes: tuple[NodeSnapshot, ...] | None = None) -> ClusterSnapshot:
    nodes = nodes or (
        _node("node1", "10.0.4.11", "10.244.23.0/24", "8a:f4:e3:45:49:e7"),
        _node("node2", "10.0.4.12", "10.244.61.0/24", "46:a8:d5:64:33:f0"),
    )
    return ClusterSnapshot(nodes=nodes, etcd=EtcdData(tuple(sorted(keys.items()))))


HEALTHY = {
    "/coreos.com/network/config": CONFIG,
    "/coreos.com/network/subnets/10.244.23.0-24": _lease("10.0.4.11", "8a:f4:e3:45:49:e7"),
    "/coreos.com/network/subnets/10.244.61.0-24": _lease("10.0.4.12", "46:a8:d5:64:33:f0"),
}


def _findings(snapshot: ClusterSnapshot, check_id: str) -> list:
    return [finding for finding in run_checks(snapshot, load_checks([check_id])).findings]


def test_config_missing_lists_every_node() -> None:
    keys = {"/registry/ranges/serviceips": "{}"}

    findings = _findings(_snapshot(keys), "etcd-network-config-missing")

    assert len(findings) == 1
    assert findings[0].nodes == ("node1", "node2")
    assert "/coreos.com/network/config is absent" in findings[0].summary


def test_config_invalid_json_reported() -> None:
    keys = {**HEALTHY, "/coreos.com/network/config": "{Network: 10.244.0.0/16"}

    findings = _findings(_snapshot(keys), "etcd-network-config-missing")

    assert len(findings) == 1
    assert "not valid JSON" in findings[0].summary


def test_config_custom_prefix_found() -> None:
    keys = {key.replace("/coreos.com/", "/kube-centos/"): value for key, value in HEALTHY.items()}

    assert _findings(_snapshot(keys), "etcd-network-config-missing") == []
    assert _findings(_snapshot(keys), "etcd-lease-mismatch") == []


def test_config_present_silent() -> None:
    assert _findings(_snapshot(HEALTHY), "etcd-network-config-missing") == []


def test_config_not_captured_silent() -> None:
    snapshot = ClusterSnapshot(nodes=(NodeSnapshot("node1"),))

    assert _findings(snapshot, "etcd-network-config-missing") == []


def test_calico_datastore_without_flannel_silent() -> None:
    node = NodeSnapshot("node1", interfaces=())
    snapshot = ClusterSnapshot(nodes=(node,), etcd=EtcdData((("/calico/v1/config/LogSeverityFile", "none"),)))

    assert _findings(snapshot, "etcd-network-config-missing") == []


def test_healthy_leases_silent() -> None:
    assert _findings(_snapshot(HEALTHY), "etcd-lease-mismatch") == []


def test_lease_public_ip_of_no_node() -> None:
    keys = {**HEALTHY, "/coreos.com/network/subnets/10.244.61.0-24": _lease("10.0.4.99", "46:a8:d5:64:33:f0")}

    summaries = [finding.summary for finding in _findings(_snapshot(keys), "etcd-lease-mismatch")]

    assert "lease 10.244.61.0/24 has PublicIP 10.0.4.99, which is no node's address" in summaries
    assert any("node2 runs flannel but no lease names any of its addresses" in text for text in summaries)


def test_two_leases_one_public_ip() -> None:
    keys = {**HEALTHY, "/coreos.com/network/subnets/10.244.99.0-24": _lease("10.0.4.11", "8a:f4:e3:45:49:e7")}

    findings = _findings(_snapshot(keys), "etcd-lease-mismatch")

    duplicate = [finding for finding in findings if "name the same PublicIP 10.0.4.11" in finding.summary]
    assert len(duplicate) == 1
    assert duplicate[0].nodes == ("node1",)


def test_vtep_mac_differs() -> None:
    keys = {**HEALTHY, "/coreos.com/network/subnets/10.244.61.0-24": _lease("10.0.4.12", "46:a8:d5:00:00:01")}

    findings = _findings(_snapshot(keys), "etcd-lease-mismatch")

    assert len(findings) == 1
    assert findings[0].nodes == ("node2",)
    assert "VtepMAC 46:a8:d5:00:00:01" in findings[0].summary
    assert "46:a8:d5:64:33:f0" in findings[0].summary


def test_subnet_env_differs_from_lease() -> None:
    nodes = (
        _node("node1", "10.0.4.11", "10.244.23.0/24", "8a:f4:e3:45:49:e7"),
        _node("node2", "10.0.4.12", "10.244.62.0/24", "46:a8:d5:64:33:f0"),
    )

    findings = _findings(_snapshot(HEALTHY, nodes), "etcd-lease-mismatch")

    assert [finding.nodes for finding in findings] == [("node2",)]
    assert "FLANNEL_SUBNET=10.244.62.1/24 but its lease is 10.244.61.0/24" in findings[0].summary


def test_partial_capture_never_calls_leases_stale() -> None:
    keys = {
        **HEALTHY,
        "/coreos.com/network/subnets/10.244.70.0-24": _lease("10.0.4.13", "46:a8:d5:64:33:f3"),
    }

    findings = _findings(_snapshot(keys), "etcd-lease-mismatch")

    assert findings == []


def test_no_nodes_captured_silent() -> None:
    snapshot = ClusterSnapshot(nodes=(), etcd=EtcdData(tuple(sorted(HEALTHY.items()))))

    assert _findings(snapshot, "etcd-lease-mismatch") == []
