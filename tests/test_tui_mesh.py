"""The path matrix behind the mesh view, over capture cases, a lab snapshot and generated clusters."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import tui_support

from netdoctor.mesh import PathStatus, path_matrix
from netdoctor.model.serialize import loads_snapshot
from netdoctor.sources import load_bundle_path


def test_lab_snapshot_has_one_broken_pair() -> None:
    snapshot = loads_snapshot(tui_support.LAB_8_NODES.read_bytes())
    matrix = path_matrix(snapshot)

    broken = matrix.broken_pairs()

    assert [(result.source, result.target) for result in broken] == [("node3", "node6")]
    assert "no route" in broken[0].reason
    assert "10.244.6.0/24" in broken[0].reason
    assert matrix.path("node6", "node3").status is PathStatus.OK


def test_diagonal_is_self() -> None:
    matrix = path_matrix(loads_snapshot(tui_support.LAB_8_NODES.read_bytes()))

    assert {matrix.cell(index, index).status for index in range(len(matrix))} == {PathStatus.SELF}


def test_stale_blackhole_breaks_pair() -> None:
    matrix = path_matrix(loads_snapshot(tui_support.CALICO_3_NODES.read_bytes()))

    result = matrix.path("node1", "node3")

    assert result.status is PathStatus.BROKEN
    assert result.route == "blackhole 10.233.70.192/26 proto bird"
    assert matrix.path("node2", "node3").status is PathStatus.OK


@pytest.mark.parametrize("case", ["healthy-flannel-vxlan-two-node", "healthy-calico-bgp-three-node",
                                  "seed-flannel-udp-2node", "seed-ovs-gre-2node", "seed-calico-ipip-2node"])
def test_healthy_cases_have_paths(case: str) -> None:
    path = tui_support.CASES / case
    if not path.is_dir():
        pytest.skip(f"capture case {case} is not present")
    matrix = path_matrix(load_bundle_path(path))

    assert matrix.broken_pairs() == []
    for row in range(len(matrix)):
        for column in range(len(matrix)):
            if row != column:
                assert matrix.cell(row, column).status is PathStatus.OK, matrix.cell(row, column)


def test_ovs_without_tunnel_port_is_broken() -> None:
    path = tui_support.CASES / "seed-ovs-gre-2node"
    if not path.is_dir():
        pytest.skip("capture case seed-ovs-gre-2node is not present")
    snapshot = load_bundle_path(path)
    node1 = snapshot.node("node1")
    assert node1.ovs is not None
    without_gre = tuple(replace(bridge, ports=tuple(port for port in bridge.ports if port.name != "gre1"))
                        for bridge in node1.ovs)
    nodes = tuple(replace(node, ovs=without_gre) if node.name == "node1" else node for node in snapshot.nodes)

    result = path_matrix(replace(snapshot, nodes=nodes)).path("node1", "node2")

    assert result.status is PathStatus.BROKEN
    assert "OVS tunnel port" in result.reason


def test_missing_pod_subnet_is_unknown() -> None:
    path = tui_support.CASES / "flannel-etcd-network-config-missing"
    if not path.is_dir():
        pytest.skip("capture case flannel-etcd-network-config-missing is not present")
    matrix = path_matrix(load_bundle_path(path))

    assert matrix.cell(0, 1).status is PathStatus.UNKNOWN
    assert "no pod subnet" in matrix.cell(0, 1).reason


def test_generated_cluster_missing_route() -> None:
    snapshot = tui_support.direct_routing_cluster(40, missing=(5, 17))
    matrix = path_matrix(snapshot)

    broken = matrix.broken_pairs()

    assert [(result.source, result.target) for result in broken] == [("node0005", "node0017")]


def test_cells_are_computed_lazily() -> None:
    matrix = path_matrix(tui_support.direct_routing_cluster(200))

    matrix.cell(3, 4)
    matrix.cell(3, 4)

    assert matrix.evaluated() == 1


def test_mesh_and_tui_core_import_without_textual() -> None:
    code = (
        "import json, sys\n"
        "import netdoctor.mesh, netdoctor.tui, netdoctor.tui.source, netdoctor.tui.rawtext, netdoctor.tui.runbook\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    modules = json.loads(result.stdout)

    assert "textual" not in modules
    assert "netdoctor.mesh" in modules
