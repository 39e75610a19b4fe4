"""Fixers against live labs: every symptom and check-only cell of the lab's matrix is fixed by ``fix --apply --yes``.

Each case breaks one fault and runs ``netdoctor fix --lab NAME --apply --yes``
through ``cli_runner.invoke``, so plans come from the command line's code path
with the lab's node bindings. It then collects the lab again and requires that
no finding of the fault's check id remains. For symptom cells it also sends the
fault's probe and requires an echo reply. Then ``fix --undo JOURNAL`` must revert
every step it applied, which leaves the lab as the fault left it for the heal.
On flannel-vxlan the fault's finding must be back, too. The fixers see only the snapshot; the lab's record of what it broke is
used only to heal between cases.

One 3-node lab per backend serves the whole module, and every applicable
cell of every backend runs. On a 2-vCPU VM shared with other test runs, the
module took 579 s; with only a subset of the other backends' cells it took
430 s. A firewalld variant of flannel-vxlan runs the filtering faults only.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nslib
import pytest
from cli_runner import Result, invoke

from netdoctor.engine import Report, load_checks, run_checks
from netdoctor.lab import faults
from netdoctor.lab.lifecycle import down, up
from netdoctor.lab.ping import ping
from netdoctor.lab.plan import BACKENDS
from netdoctor.lab.state import LabError, LabState, load_state
from netdoctor.sources import snapshot_from_options

pytestmark = [nslib.needs_root, pytest.mark.netns]

#: Faults the firewalld variant runs: the ones whose fixers write firewalld rules.
FILTERING_FAULTS = ("icmp-blocked", "forward-policy-drop", "overlay-port-blocked", "pod-traffic-masqueraded")

#: An ICMP payload whose packet (1328 bytes) fits every MTU that a fixer lowers to in the lab.
FITTING_SIZE = 1300

_DOCKER_BIP = "the remedy restarts Docker with a new --bip, a display-only step"
_FLANNELD = "the remedy restarts flanneld to write a new lease, a display-only step, and the lab runs no flanneld"

#: Backends whose nodes keep their pods on a bridge that Docker's --bip addresses: all but calico-bgp.
_BRIDGED = tuple(backend for backend in BACKENDS if backend != "calico-bgp")
#: Backends whose nodes read flannel's config and leases from etcd.
_FLANNEL_ETCD = ("flannel-vxlan", "direct-routing")

#: (backend, fault) cells that ``fix --apply --yes`` does not fix, with the reason: each remedy is a
#: display-only step by design.
KNOWN_UNFIXED: dict[tuple[str, str], str] = {
    **{(backend, "bridge-subnet-overlap"): _DOCKER_BIP for backend in _BRIDGED},
    **{(backend, "bridge-outside-overlay-subnet"): _DOCKER_BIP for backend in _BRIDGED},
    **{(backend, "pod-network-overlaps-host"):
       "the remedy moves the pod network to another range, a display-only step"
       for backend in BACKENDS},
    **{(backend, "etcd-lease-mismatch"): _FLANNELD for backend in _FLANNEL_ETCD},
    **{(backend, "flannel-backend-mismatch"): "restoring the backend type in etcd is a display-only step"
       for backend in _FLANNEL_ETCD},
    ("frr", "route-wrong-nexthop"):
        "zebra installed the wrong route for BGP, so the remedy is a display-only note on the BGP side; a route "
        "written over zebra's would win over BGP from then on",
    ("frr", "route-missing"):
        "the fault stops the peer announcing its subnet; the snapshot does not show what a peer announces, so the "
        "remedy is a display-only note",
    **{(backend, "overlay-interface-missing"):
       "re-creating br-int with its OpenFlow rules is the OVS agent's job, a display-only step"
       for backend in ("ovs-gre", "ovs-vxlan")},
}

#: Backends whose cases collect the lab once more after ``fix --undo`` and require the fault's finding
#: back. That costs about 1.5 s a case (flannel-vxlan's 20 cases: 95 s without, 117 s with, on a 2-vCPU VM),
#: so the other backends only require every applied step with an inverse to be reverted.
UNDO_RECHECKED = ("flannel-vxlan",)



def _lab_name(tag: str) -> str:
    # Lab names allow 10 lowercase letters and digits; the PID part keeps parallel runs apart.
    return f"f{tag}{nslib.PREFIX.split('-')[1][-4:]}"[:10]


def _start(name: str, backend: str, firewall: str, base: Path) -> LabState:
    return up(name, backend, nodes=3, pods_per_node=2, firewall=firewall, state_dir=base / name)


def _lab_fixture(backend: str, firewall: str, tag: str) -> Iterator[LabState]:
    # FRR's daemons run as user frr, so every directory above the state directory must be
    # searchable. pytest's tmp_path is mode 0700, so the lab gets its own directory.
    base = Path(tempfile.mkdtemp(prefix="nd-fix-lab-"))
    base.chmod(0o755)
    name = _lab_name(tag)
    try:
        yield _start(name, backend, firewall, base)
    finally:
        down(name, base / name)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[LabState]:
    """A 3-node lab of the backend given as the indirect parameter, with iptables, removed after its tests."""
    backend = request.param
    if not nslib.lab_available(backend):
        pytest.skip(f"{backend} needs {nslib.LAB_NEEDS[backend]}")
    yield from _lab_fixture(backend, "iptables", backend.replace("-", "")[:4])


@pytest.fixture(scope="module")
def firewalld_lab() -> Iterator[LabState]:
    """A 3-node flannel-vxlan lab whose nodes filter with firewalld."""
    if not nslib.lab_available("flannel-vxlan") or shutil.which("firewalld") is None:
        pytest.skip("the firewalld lab needs etcd and firewalld")
    yield from _lab_fixture("flannel-vxlan", "firewalld", "fwd")


def _heal(state_dir: Path) -> list[str]:
    """Run every recorded undo step, newest fault first, and return the steps that failed.

    A fixer may already have removed what a fault added (a blackhole route, a
    bridge address), so an undo step that fails is reported, not raised.
    """
    state = load_state(state_dir)
    failed = []
    while state.faults:
        active = state.faults.pop()
        for step in active["undo"]:
            try:
                faults.run_step(state, step)
            except LabError as error:
                failed.append(f"{active['fault']}: {error}")
        state.save()
    return failed


def _check(state: LabState) -> Report:
    """Collect the lab as ``netdoctor check --lab`` does and run every check."""
    snapshot = snapshot_from_options(lab=state.name, lab_state_dir=state.state_dir)
    return run_checks(snapshot, load_checks())


def _findings(report: Report, fault_id: str) -> list[str]:
    return [f"{finding.check} on {', '.join(finding.nodes)}: {finding.summary}"
            for finding in report.findings if finding.check == fault_id]  # fmt: skip


def _fix(state: LabState, journal: Path) -> Result:
    """Run ``netdoctor fix --lab NAME --apply --yes`` against the lab."""
    arguments = ["fix", "--lab", state.name, "--lab-state-dir", str(state.state_dir), "--apply", "--yes",
                 "--journal", str(journal)]  # fmt: skip
    return invoke(*arguments)


def _ping_once(source: str, destination: str, size: int) -> str | None:
    """Send one echo request twice at most; return None when a reply came back, else the last failure."""
    error = None
    for _ in range(2):
        result = ping(source, [destination], timeout=2.0, size=size)[destination]
        if result.ok:
            return None
        error = result.error
    return f"{source} -> {destination} ({size} bytes): {error}"


def _symptom_gone(state: LabState, fault_id: str) -> str | None:
    """Send the fault's probe; return None when the symptom is gone, else what the probe got.

    An MTU fix lowers the overlay MTU to what the smaller underlay carries, so the
    oversized probe no longer vanishes: its sender gets a local EMSGSIZE or an ICMP
    fragmentation-needed (code 4). Then a probe that fits the lowered MTU must be answered.
    """
    probe = faults.probe_for(state.plan, fault_id)
    error = _ping_once(probe.source, probe.destination, probe.size)
    if error is None:
        return None
    if "Message too long" in error or "(code 4)" in error:
        return _ping_once(probe.source, probe.destination, FITTING_SIZE)
    return error


def _assert_fixed(state: LabState, fault_id: str, journal: Path) -> None:
    """Break one fault, apply the fix, and require a report without that id and, for symptoms, a reply."""
    kind = faults.cell(state.plan.backend, fault_id).kind
    assert _heal(state.state_dir) == []
    assert _findings(_check(state), fault_id) == [], f"{fault_id} is reported before it is broken"

    faults.break_fault(load_state(state.state_dir), fault_id)
    try:
        broken = _check(state)
        assert _findings(broken, fault_id), f"{fault_id} is not found, so there is nothing to fix"

        result = _fix(state, journal)
        assert result.exit_code in (0, 1), result.output
        assert "stopped" not in result.output, result.output
        assert journal.exists(), result.output

        fixed = _check(state)
        assert _findings(fixed, fault_id) == [], result.output
        if kind == faults.SYMPTOM:
            assert _symptom_gone(state, fault_id) is None, result.output

        undone = invoke("fix", "--undo", str(journal))
        assert undone.exit_code == 0, undone.output
        applied = [entry for entry in json.loads(journal.read_text())["entries"] if entry.get("status") == "applied"]
        assert all(entry.get("reverted") for entry in applied if entry.get("undo")), undone.output
        # A step without an inverse (a BGP route refresh or session restart) leaves nothing to revert.
        if state.plan.backend in UNDO_RECHECKED and all(entry.get("undo") for entry in applied):
            assert _findings(_check(state), fault_id), f"{fault_id} is not back after the undo:\n{undone.output}"
    finally:
        _heal(state.state_dir)


def _cases(backends: tuple[str, ...] = BACKENDS) -> list[object]:
    cases: list[object] = []
    for backend in backends:
        for fault_id in faults.FAULTS:
            if faults.cell(backend, fault_id).kind == faults.NOT_APPLICABLE:
                continue
            marks = []
            reason = KNOWN_UNFIXED.get((backend, fault_id))
            if reason is not None:
                marks.append(pytest.mark.xfail(reason=f"{fault_id} on {backend}: {reason}", strict=True))
            cases.append(pytest.param(backend, fault_id, marks=marks, id=f"{backend}-{fault_id}"))
    return cases


@pytest.mark.parametrize(("lab", "fault_id"), _cases(), indirect=["lab"])
def test_fault_fixed_by_apply(lab: LabState, fault_id: str, tmp_path: Path) -> None:
    _assert_fixed(lab, fault_id, tmp_path / "journal.json")


@pytest.mark.parametrize("lab", ["flannel-vxlan"], indirect=True)
def test_routes_go_back_through_recreated_overlay(lab: LabState, tmp_path: Path) -> None:
    # With flannel.1 gone, node1's backend is no longer detected. Routes via the peers' LAN addresses would carry
    # pings here, where all nodes share one LAN, but not between nodes on different LANs.
    assert _heal(lab.state_dir) == []
    faults.break_fault(load_state(lab.state_dir), "overlay-interface-missing", "node1")
    node1 = lab.plan.node("node1")
    try:
        result = _fix(lab, tmp_path / "journal.json")
        assert result.exit_code == 0, result.output
        routes = {peer.subnet: nslib.sh(f"ip -n {node1.netns} route show {peer.subnet}").stdout.strip()
                  for peer in lab.plan.peers(node1)}
        assert all(f"via {subnet.split('/')[0]} dev flannel.1" in route for subnet, route in routes.items()), routes
    finally:
        _heal(lab.state_dir)


@pytest.mark.parametrize("lab", ["flannel-vxlan"], indirect=True)
@pytest.mark.parametrize("fault_id", ["vtep-mismatch", "overlay-interface-missing", "icmp-blocked"])
def test_heal_after_fix_leaves_a_healthy_lab(lab: LabState, fault_id: str, tmp_path: Path) -> None:
    # The fix repairs the fault its own way; the heal that follows must still end in the lab's healthy state.
    assert _heal(lab.state_dir) == []
    faults.break_fault(load_state(lab.state_dir), fault_id, "node2")
    result = _fix(lab, tmp_path / "journal.json")
    assert result.exit_code == 0, result.output

    faults.heal(load_state(lab.state_dir))

    assert load_state(lab.state_dir).faults == []
    assert [finding.summary for finding in _check(lab).findings] == []
    probe = faults.probe_for(lab.plan, fault_id, "node2")
    assert _ping_once(probe.source, probe.destination, FITTING_SIZE) is None


@pytest.mark.parametrize("lab", ["ovs-gre"], indirect=True)
def test_no_underlay_routes_while_ovs_bridge_is_missing(lab: LabState) -> None:
    assert _heal(lab.state_dir) == []
    faults.break_fault(load_state(lab.state_dir), "overlay-interface-missing", "node2")
    try:
        result = invoke("fix", "--lab", lab.name, "--lab-state-dir", str(lab.state_dir))
        assert result.exit_code == 0, result.output
        assert "Restart the OVS agent so that it re-creates br-int" in result.output
        assert " route add " not in result.output
    finally:
        _heal(lab.state_dir)


@pytest.mark.parametrize("fault_id", FILTERING_FAULTS)
def test_filtering_fault_fixed_with_firewalld(firewalld_lab: LabState, fault_id: str, tmp_path: Path) -> None:
    _assert_fixed(firewalld_lab, fault_id, tmp_path / "journal.json")
