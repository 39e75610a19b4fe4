"""The etcd collector against the lab's real etcd, and a lab as a collection source."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nslib
import pytest

from netdoctor.collectors.etcd import EndpointError, collect_etcd, parse_endpoint
from netdoctor.lab import etcd as lab_etcd
from netdoctor.lab.lifecycle import down, up
from netdoctor.lab.state import LabError, LabState
from netdoctor.lab.targets import lab_source

pytestmark = [nslib.needs_root, pytest.mark.netns]


@pytest.fixture(scope="module")
def lab() -> Iterator[LabState]:
    """A 2-node flannel-vxlan lab with its etcd."""
    base = Path(tempfile.mkdtemp(prefix="nd-lab-test-"))
    name = f"te{nslib.PREFIX.split('-')[1][-6:]}"
    state = up(name, "flannel-vxlan", nodes=2, pods_per_node=1, state_dir=base / name)
    try:
        yield state
    finally:
        down(name, base / name)
        base.rmdir()


def test_reads_both_keyspaces(lab: LabState) -> None:
    assert lab.etcd_endpoint is not None
    data, gaps = collect_etcd([lab.etcd_endpoint])
    assert gaps == []
    assert data is not None
    config = json.loads(data.get("/coreos.com/network/config") or "null")
    assert config["Backend"] == {"Type": "vxlan", "VNI": 1, "Port": 8472}
    lease = json.loads(data.get("/coreos.com/network/subnets/10.244.2.0-24") or "null")
    assert lease["PublicIP"] == "10.0.0.12"
    keyspaces = {(keyspace, key) for keyspace, key, _ in data.keyspace_entries}
    assert ("v2", "/coreos.com/network/config") in keyspaces
    assert ("v3", "/coreos.com/network/config") in keyspaces
    assert "(v2)" in data.origin


def test_keyspaces_kept_apart(lab: LabState) -> None:
    assert lab.etcd_endpoint is not None
    key = "/coreos.com/network/subnets/10.244.9.0-24"
    lab_etcd.put_v2(lab.etcd_endpoint, key, '{"PublicIP": "10.0.0.99"}')
    try:
        data, _ = collect_etcd([lab.etcd_endpoint], api="both")
        assert data is not None
        assert [entry[0] for entry in data.keyspace_entries if entry[1] == key] == ["v2"]
        only_v3, _ = collect_etcd([lab.etcd_endpoint], api="v3")
        assert only_v3 is not None
        assert only_v3.get(key) is None
    finally:
        lab_etcd.delete_v2(lab.etcd_endpoint, key)


def test_v3_value_wins_when_they_differ(lab: LabState) -> None:
    assert lab.etcd_endpoint is not None
    key = "/coreos.com/network/config"
    original = lab_etcd.network_config(lab.plan)
    lab_etcd.put_v2(lab.etcd_endpoint, key, '{"Network": "10.99.0.0/16"}')
    try:
        data, _ = collect_etcd([lab.etcd_endpoint])
        assert data is not None
        assert data.get(key) == original
        assert ("v2", key, '{"Network": "10.99.0.0/16"}') in data.keyspace_entries
    finally:
        lab_etcd.put_v2(lab.etcd_endpoint, key, original)


def test_missing_prefix_gives_no_keys(lab: LabState) -> None:
    assert lab.etcd_endpoint is not None
    data, gaps = collect_etcd([lab.etcd_endpoint], prefix="/kube-centos/network")
    assert gaps == []
    assert data is not None
    assert data.keys == ()


def test_falls_over_to_second_endpoint(lab: LabState) -> None:
    assert lab.etcd_endpoint is not None
    closed = f"http://127.0.0.1:{lab_etcd.free_port()}"
    data, gaps = collect_etcd([closed, lab.etcd_endpoint], api="v2", timeout=1.0)
    assert data is not None
    assert gaps == []
    assert lab.etcd_endpoint in data.origin


def test_unreachable_etcd_is_a_gap() -> None:
    closed = f"http://127.0.0.1:{lab_etcd.free_port()}"
    data, gaps = collect_etcd([closed], api="v2", timeout=1.0)
    assert data is None
    assert len(gaps) == 1
    assert gaps[0].source == "etcd"
    assert closed in gaps[0].reason


def test_invalid_endpoint_is_named() -> None:
    with pytest.raises(EndpointError, match="'127.0.0.1'"):
        parse_endpoint("127.0.0.1")
    data, gaps = collect_etcd(["ftp://127.0.0.1:2379"])
    assert data is None
    assert "ftp://127.0.0.1:2379" in gaps[0].reason


def test_lab_source_targets(lab: LabState) -> None:
    source = lab_source(lab.name, lab.state_dir)
    assert [target.name for target in source.targets] == ["node1", "node2"]
    assert source.etcd_endpoint == lab.etcd_endpoint
    node1 = source.targets[0]
    assert node1.netns == f"nd-{lab.name}-node1"
    env = node1.read_file("/run/flannel/subnet.env") or ""
    assert "FLANNEL_SUBNET=10.244.1.1/24" in env
    assert "flannel.1" in node1.run(["ip", "-br", "link"]).stdout


def test_lab_source_missing_lab(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="lab up"):
        lab_source("nolab", tmp_path / "nolab")
