"""restore-overlay-interface re-creates flannel.1 only for a node whose lease records that flanneld ran VXLAN there.

The bundle is the flannel-backend-mismatch-fail capture case, copied, with node2's
lease changed to BackendType host-gw: the network config in etcd sets vxlan,
but node2's flanneld ran host-gw. The config is what changed, so flannel.1 on
node2 would only add a second path to the peers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from netdoctor.capture.bundle import load_bundle
from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import build_plans

CASE = Path(__file__).resolve().parent.parent / "fixtures" / "cases" / "flannel-backend-mismatch-fail"
LEASE = "/coreos.com/network/subnets/10.244.2.0-24"


def _plans(tmp_path: Path, backend_type: str) -> list[str]:
    bundle = tmp_path / "case"
    shutil.copytree(CASE, bundle)
    etcd_file = bundle / "cluster" / "etcd.json"
    keys = json.loads(etcd_file.read_text())
    lease = json.loads(keys[LEASE])
    lease["BackendType"] = backend_type
    keys[LEASE] = json.dumps(lease)
    etcd_file.write_text(json.dumps(keys))
    report = run_checks(load_bundle(bundle), load_checks())
    assert [finding.nodes for finding in report.findings if finding.check == "overlay-interface-missing"] == [("node2",)]
    return [step.id for plan in build_plans(report, checks=("overlay-interface-missing",)) for step in plan.steps]


def test_vxlan_recreated_for_vxlan_lease(tmp_path: Path) -> None:
    assert "vxlan-flannel.1" in _plans(tmp_path, "vxlan")


def test_vxlan_not_recreated_for_host_gw_lease(tmp_path: Path) -> None:
    assert "vxlan-flannel.1" not in _plans(tmp_path, "host-gw")
