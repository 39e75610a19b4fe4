"""The lab's addressing plan and fault matrix, without building anything."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_runner import invoke

from netdoctor.lab import faults
from netdoctor.lab.plan import BACKENDS, PlanError, calico_veth, make_plan

#: Every check id is a fault.
CHECK_IDS = {
    "bridge-subnet-overlap", "pod-network-overlaps-host", "bridge-outside-overlay-subnet",
    "etcd-network-config-missing", "etcd-lease-mismatch", "flannel-backend-mismatch",
    "overlay-interface-missing", "vtep-mismatch", "tunnel-mesh-incomplete", "duplicate-mac", "route-missing",
    "route-wrong-nexthop", "blackhole-route", "bgp-peer-down", "mtu-mismatch", "icmp-blocked",
    "forward-policy-drop", "overlay-port-blocked", "pod-traffic-masqueraded", "ip-forward-disabled",
    "rp-filter-strict", "bridge-nf-disabled",
}  # fmt: skip


def test_plan_addresses() -> None:
    plan = make_plan("demo", "flannel-vxlan", 3, pods_per_node=2)
    node = plan.node("node2")
    assert node.netns == "nd-demo-node2"
    assert node.lan_ip == "10.0.0.12"
    assert node.subnet == "10.244.2.0/24"
    assert node.subnet_key == "10.244.2.0-24"
    assert [pod.address for pod in node.pods] == ["10.244.2.2", "10.244.2.3"]
    assert node.pods[0].netns == "nd-demo-node2-pod1"
    assert plan.lan_netns == "nd-demo-lan"


def test_calico_plan_uses_blocks() -> None:
    plan = make_plan("demo", "calico-bgp", 3)
    assert [node.subnet for node in plan.nodes] == ["192.168.0.0/26", "192.168.0.64/26", "192.168.0.128/26"]
    veth = plan.nodes[0].pods[0].host_veth
    assert veth == calico_veth("nd-demo-node1-pod1")
    assert veth.startswith("cali")
    assert len(veth) == 15


def test_plan_round_trips_through_json() -> None:
    plan = make_plan("demo", "ovs-gre", 4)
    assert type(plan).from_json(plan.to_json()) == plan


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("Bad", "flannel-vxlan", 3), "invalid lab name 'Bad'"),
        (("demo", "weave", 3), "unknown backend 'weave'"),
        (("demo", "flannel-vxlan", 1), "invalid node count 1"),
        (("demo", "flannel-vxlan", 65), "invalid node count 65"),
    ],
)
def test_plan_rejects_bad_input(arguments: tuple[str, str, int], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        make_plan(*arguments)


def test_matrix_covers_every_check_and_backend() -> None:
    assert set(faults.FAULTS) == CHECK_IDS
    for fault in faults.FAULTS.values():
        assert set(fault.cells) == set(BACKENDS), fault.id
        for backend, cell in fault.cells.items():
            assert cell.kind in (faults.SYMPTOM, faults.CHECK_ONLY, faults.NOT_APPLICABLE)
            if cell.kind != faults.SYMPTOM:
                assert cell.reason, f"{fault.id} on {backend} needs a reason"


def test_break_list_prints_matrix() -> None:
    result = invoke("lab", "break", "--list")
    assert result.exit_code == 0
    assert result.output.splitlines()[0].split() == ["fault", *BACKENDS]
    assert "the userspace OVS datapath takes tunnel packets" in result.output
    for fault_id in CHECK_IDS:
        assert fault_id in result.output


def test_lab_not_imported_by_core() -> None:
    code = "import sys, netdoctor.cli; print(any(name.startswith('netdoctor.lab') for name in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
