"""The check catalogue against live labs: a healthy lab is clean, and every lab fault is found by its check.

One 3-node lab per backend serves the whole module, healed between faults. The
snapshot comes from ``netdoctor check --lab``'s code path
(:func:`netdoctor.sources.snapshot_from_options`, which also reads the lab's
etcd), and the checks run through :func:`netdoctor.engine.run_checks`. A
firewalld variant of flannel-vxlan runs the filtering faults only, and one
8-node lab runs once.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nslib
import pytest

from netdoctor.engine import Report, load_checks, run_checks
from netdoctor.lab import faults
from netdoctor.lab.lifecycle import down, up
from netdoctor.lab.plan import BACKENDS
from netdoctor.lab.state import LabState, load_state
from netdoctor.model import Severity
from netdoctor.sources import snapshot_from_options

pytestmark = [nslib.needs_root, pytest.mark.netns]

#: Faults the firewalld variant runs: the ones whose checks read firewalld's zones.
FILTERING_FAULTS = ("icmp-blocked", "forward-policy-drop", "overlay-port-blocked", "pod-traffic-masqueraded")

#: (backend, fault) cells whose check does not see the fault yet, with the reason.
KNOWN_MISSES: dict[tuple[str, str], str] = {}


def _lab_name(tag: str) -> str:
    # Lab names allow 10 lowercase letters and digits; the PID part keeps parallel runs apart.
    return f"c{tag}{nslib.PREFIX.split('-')[1][-4:]}"[:10]


def _start(name: str, backend: str, nodes: int, firewall: str) -> tuple[LabState, Path]:
    # FRR's daemons run as user frr, so the state directory must be reachable by other users.
    base = Path(tempfile.mkdtemp(prefix="nd-lab-checks-"))
    base.chmod(0o755)
    state = up(name, backend, nodes=nodes, pods_per_node=2, firewall=firewall, state_dir=base / name)
    return state, base


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[LabState]:
    """A 3-node lab of the backend given as the indirect parameter, with iptables, removed after its tests."""
    backend = request.param
    if not nslib.lab_available(backend):
        pytest.skip(f"{backend} needs {nslib.LAB_NEEDS[backend]}")
    name = _lab_name(backend.replace("-", "")[:4])
    state, base = _start(name, backend, 3, "iptables")
    try:
        yield state
    finally:
        down(name, state.state_dir)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def firewalld_lab() -> Iterator[LabState]:
    """A 3-node flannel-vxlan lab whose nodes filter with firewalld."""
    if not nslib.lab_available("flannel-vxlan") or shutil.which("firewalld") is None:
        pytest.skip("the firewalld lab needs etcd and firewalld")
    name = _lab_name("fwd")
    state, base = _start(name, "flannel-vxlan", 3, "firewalld")
    try:
        yield state
    finally:
        down(name, state.state_dir)
        shutil.rmtree(base, ignore_errors=True)


def _check(state: LabState) -> Report:
    """Collect the lab as ``netdoctor check --lab`` does and run every check."""
    snapshot = snapshot_from_options(lab=state.name, lab_state_dir=state.state_dir)
    return run_checks(snapshot, load_checks())


def _serious(report: Report) -> list[str]:
    """Describe every finding at warning level or worse."""
    return [
        f"{finding.check} on {', '.join(finding.nodes)}: {finding.summary}"
        for finding in report.findings
        if finding.severity >= Severity.WARNING
    ]


def _failed_checks(report: Report) -> list[str]:
    return [f"{gap.source}: {gap.reason}" for gap in report.gaps if gap.source.startswith("check:")]


def _expected_nodes(state: LabState, fault_id: str) -> set[str]:
    """Return the nodes that the fault's check must name: where the broken state is."""
    target, peer = faults.pick_nodes(state.plan, None)
    if fault_id == "tunnel-mesh-incomplete":
        # The peer lost its tunnel port towards the broken node.
        return {peer.name}
    if fault_id == "vtep-mismatch":
        # The peers' FDB and neighbour entries still name the node's old VTEP MAC.
        return {node.name for node in state.plan.peers(target)}
    if fault_id == "duplicate-mac":
        return {target.name, peer.name}
    if fault_id == "etcd-network-config-missing":
        return {node.name for node in state.plan.nodes}
    return {target.name}


def _assert_found_and_healed(state: LabState, fault_id: str) -> None:
    """Break one fault, require its check to name the expected nodes, heal, require a clean report."""
    faults.break_fault(load_state(state.state_dir), fault_id)
    try:
        broken = _check(state)
    finally:
        faults.heal(load_state(state.state_dir))
    found = [finding for finding in broken.findings if finding.check == fault_id]
    reported = {node for finding in found for node in finding.nodes}
    expected = _expected_nodes(state, fault_id)
    assert found, f"{fault_id} found nothing; the report had: {_serious(broken)}"
    assert expected <= reported, f"{fault_id} named {sorted(reported)}, expected {sorted(expected)} among them"
    assert _failed_checks(broken) == []

    healed = _check(state)
    assert _serious(healed) == [], f"after healing {fault_id}"
    assert _failed_checks(healed) == []


@pytest.mark.parametrize("lab", BACKENDS, indirect=True)
def test_healthy_lab_is_clean(lab: LabState) -> None:
    report = _check(lab)
    assert _serious(report) == []
    assert _failed_checks(report) == []


# One parameter list for "lab" keeps one lab per backend: pytest groups the tests by its value.
@pytest.mark.parametrize("fault_id", list(faults.FAULTS))
@pytest.mark.parametrize("lab", BACKENDS, indirect=True)
def test_fault_found_by_check(lab: LabState, fault_id: str, request: pytest.FixtureRequest) -> None:
    backend = lab.plan.backend
    cell = faults.cell(backend, fault_id)
    if cell.kind == faults.NOT_APPLICABLE:
        pytest.skip(f"{fault_id} does not apply to {backend}: {cell.reason}")
    reason = KNOWN_MISSES.get((backend, fault_id))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=f"{fault_id} on {backend}: {reason}", strict=True))
    _assert_found_and_healed(lab, fault_id)


def test_healthy_firewalld_lab_is_clean(firewalld_lab: LabState) -> None:
    report = _check(firewalld_lab)
    assert _serious(report) == []
    assert _failed_checks(report) == []


@pytest.mark.parametrize("fault_id", FILTERING_FAULTS)
def test_filtering_fault_found_with_firewalld(firewalld_lab: LabState, fault_id: str) -> None:
    _assert_found_and_healed(firewalld_lab, fault_id)


def test_eight_node_lab_found_and_clean() -> None:
    if not nslib.lab_available("flannel-vxlan"):
        pytest.skip("flannel-vxlan needs etcd")
    name = _lab_name("big")
    state, base = _start(name, "flannel-vxlan", 8, "iptables")
    try:
        report = _check(state)
        assert _serious(report) == []
        assert len(report.snapshot.nodes) == 8
        _assert_found_and_healed(state, "route-missing")
    finally:
        down(name, state.state_dir)
        shutil.rmtree(base, ignore_errors=True)
