"""The firewalld and OVS fixers' apply and undo paths against the lab's real daemons.

A 2-node flannel-vxlan lab with ``--firewall firewalld`` runs one firewalld per
node on a private D-Bus; a 2-node ovs-gre lab runs ovsdb-server and ovs-vswitchd
per node. Each test breaks one fault, builds plans from a fresh snapshot with the
lab's node bindings (as ``netdoctor fix --lab`` does), applies them, reads the
daemon's state, undoes the journal and reads it again.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nslib
import pytest

from netdoctor.engine import Report, load_checks, run_checks
from netdoctor.fix import FixPlan, build_plans
from netdoctor.fix_cli import _lab_source
from netdoctor.fixapply import apply_plans, undo_journal
from netdoctor.lab import faults, firewalld, ovs
from netdoctor.lab.lifecycle import down, up
from netdoctor.lab.ping import ping
from netdoctor.lab.state import LabState, load_state
from netdoctor.sources import snapshot_from_options

pytestmark = [nslib.needs_root, pytest.mark.netns]

#: The overlay port flannel's VXLAN backend uses in the lab.
VXLAN_PORT = "8472/udp"


def _lab_name(tag: str) -> str:
    # Lab names allow 10 lowercase letters and digits; the PID part keeps parallel runs apart.
    return f"d{tag}{nslib.PREFIX.split('-')[1][-4:]}"[:10]


def _lab(tag: str, backend: str, firewall: str) -> Iterator[LabState]:
    base = Path(tempfile.mkdtemp(prefix="nd-fix-live-"))
    base.chmod(0o755)
    name = _lab_name(tag)
    try:
        yield up(name, backend, nodes=2, pods_per_node=1, firewall=firewall, state_dir=base / name)
    finally:
        down(name, base / name)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def firewalld_lab() -> Iterator[LabState]:
    """A 2-node flannel-vxlan lab whose nodes filter with firewalld."""
    if shutil.which("etcd") is None or shutil.which("firewalld") is None:
        pytest.skip("the firewalld lab needs etcd and firewalld")
    yield from _lab("fwd", "flannel-vxlan", "firewalld")


@pytest.fixture(scope="module")
def ovs_lab() -> Iterator[LabState]:
    """A 2-node ovs-gre lab."""
    if shutil.which("ovs-vswitchd") is None and not Path("/usr/sbin/ovs-vswitchd").exists():
        pytest.skip("the OVS lab needs ovs-vswitchd")
    yield from _lab("ovs", "ovs-gre", "iptables")


def _check(state: LabState) -> Report:
    return run_checks(snapshot_from_options(lab=state.name, lab_state_dir=state.state_dir), load_checks())


def _findings(report: Report, check_id: str) -> list[str]:
    return [f"{', '.join(finding.nodes)}: {finding.summary}" for finding in report.findings if finding.check == check_id]


def _plans(state: LabState, report: Report, check_id: str) -> list[FixPlan]:
    """Build plans for one check's findings with the lab's bindings, as ``fix --lab`` does."""
    source = _lab_source(report.snapshot, state.name, state.state_dir, None)
    return build_plans(report, source.bindings, etcd_endpoint=source.etcd_endpoint, checks=(check_id,))


def _actions(plans: list[FixPlan]) -> list[str]:
    return sorted(step.action.kind for plan in plans for step in plan.steps if step.action is not None)


def _heal(state: LabState) -> None:
    faults.heal(load_state(state.state_dir))


def _firewall_cmd(state: LabState, node: str, *arguments: str) -> str:
    plan = state.plan.node(node)
    completed = subprocess.run(["ip", "netns", "exec", plan.netns, "firewall-cmd", *arguments],
                               env=firewalld.bus_environment(state, plan), capture_output=True, text=True,
                               check=False, timeout=60)  # fmt: skip
    return completed.stdout.strip()


def _port_open(state: LabState, node: str, permanent: bool) -> bool:
    arguments = ["--permanent"] if permanent else []
    return _firewall_cmd(state, node, *arguments, "--zone=public", f"--query-port={VXLAN_PORT}") == "yes"


def _input_rules(state: LabState, node: str) -> list[str]:
    netns = state.plan.node(node).netns
    output = subprocess.run(["ip", "netns", "exec", netns, "iptables", "-S", "INPUT"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    return output.splitlines()


def _pod_ping(state: LabState, fault_id: str) -> str | None:
    probe = faults.probe_for(state.plan, fault_id)
    for _ in range(3):
        result = ping(probe.source, [probe.destination], timeout=2.0, size=probe.size)[probe.destination]
        if result.ok:
            return None
    return f"{probe.source} -> {probe.destination}: {result.error}"


def test_overlay_drop_accepted_with_firewalld(firewalld_lab: LabState, tmp_path: Path) -> None:
    state, node = firewalld_lab, "node1"
    faults.break_fault(load_state(state.state_dir), "overlay-port-blocked")
    try:
        broken = _check(state)
        assert _findings(broken, "overlay-port-blocked")
        plans = _plans(state, broken, "overlay-port-blocked")
        assert _actions(plans) == ["iptables-insert"]

        journal = tmp_path / "journal.json"
        result = apply_plans(plans, journal, allow_disruptive=True)
        assert result.stopped is None
        rules = _input_rules(state, node)
        accept = next(index for index, rule in enumerate(rules) if "netdoctor-overlay" in rule)
        drop = rules.index("-A INPUT -p udp -m udp --dport 8472 -j DROP")
        assert accept < drop
        assert _findings(_check(state), "overlay-port-blocked") == []
        assert _pod_ping(state, "overlay-port-blocked") is None
        assert _firewall_cmd(state, node, "--state") == "running"

        assert undo_journal(journal) == 1
        rules = _input_rules(state, node)
        assert not any("netdoctor-overlay" in rule for rule in rules)
        assert "-A INPUT -p udp -m udp --dport 8472 -j DROP" in rules
        assert _findings(_check(state), "overlay-port-blocked")
    finally:
        _heal(state)


def test_zone_port_opened_and_undone(firewalld_lab: LabState, tmp_path: Path) -> None:
    state, node = firewalld_lab, "node1"
    zone_file = state.node_path(node, "/etc/firewalld/zones/public.xml")
    host_zone = Path("/etc/firewalld/zones/public.xml")
    host_before = host_zone.read_bytes() if host_zone.exists() else None

    # The port leaves the zone by hand, runtime and permanent, as an administrator would remove it.
    _firewall_cmd(state, node, "--zone=public", f"--remove-port={VXLAN_PORT}")
    _firewall_cmd(state, node, "--permanent", "--zone=public", f"--remove-port={VXLAN_PORT}")
    try:
        assert not _port_open(state, node, permanent=False)
        broken = _check(state)
        assert _findings(broken, "overlay-port-blocked")
        plans = _plans(state, broken, "overlay-port-blocked")
        assert _actions(plans) == ["firewalld-add"]

        journal = tmp_path / "journal.json"
        result = apply_plans(plans, journal, allow_disruptive=True)
        assert result.stopped is None
        assert _port_open(state, node, permanent=False)
        assert _port_open(state, node, permanent=True)
        assert 'port="8472"' in zone_file.read_text()
        assert _findings(_check(state), "overlay-port-blocked") == []
        assert _pod_ping(state, "overlay-port-blocked") is None

        assert undo_journal(journal) == 1
        assert not _port_open(state, node, permanent=False)
        assert not _port_open(state, node, permanent=True)
        assert _findings(_check(state), "overlay-port-blocked")
    finally:
        _firewall_cmd(state, node, "--zone=public", f"--add-port={VXLAN_PORT}")
        _firewall_cmd(state, node, "--permanent", "--zone=public", f"--add-port={VXLAN_PORT}")
    host_after = host_zone.read_bytes() if host_zone.exists() else None
    assert host_after == host_before


def _tunnels(state: LabState, node: str) -> dict[str, str]:
    """Return the node's br-int tunnel ports by name, each with its remote_ip."""
    paths = ovs.Paths(state, state.plan.node(node))
    ports = ovs.vsctl(paths, "list-ports", "br-int").split()
    found = {}
    for port in ports:
        remote = ovs.vsctl(paths, "get", "interface", port, "options:remote_ip").strip().strip('"')
        if remote and not remote.startswith("ovs-vsctl"):
            found[port] = remote
    return found


def test_tunnel_port_added_and_undone(ovs_lab: LabState, tmp_path: Path) -> None:
    state = ovs_lab
    target, peer = faults.pick_nodes(state.plan, None)
    healthy = _tunnels(state, peer.name)
    target_tunnels = _tunnels(state, target.name)
    assert target.lan_ip in healthy.values()

    faults.break_fault(load_state(state.state_dir), "tunnel-mesh-incomplete")
    try:
        assert target.lan_ip not in _tunnels(state, peer.name).values()
        broken = _check(state)
        assert _findings(broken, "tunnel-mesh-incomplete")
        plans = _plans(state, broken, "tunnel-mesh-incomplete")
        assert _actions(plans) == ["ovs-add-port"]
        assert [plan.node for plan in plans] == [peer.name]

        journal = tmp_path / "journal.json"
        result = apply_plans(plans, journal, allow_disruptive=True)
        assert result.stopped is None
        assert target.lan_ip in _tunnels(state, peer.name).values()
        assert _tunnels(state, target.name) == target_tunnels
        assert _findings(_check(state), "tunnel-mesh-incomplete") == []

        assert undo_journal(journal) == 1
        assert target.lan_ip not in _tunnels(state, peer.name).values()
        assert _findings(_check(state), "tunnel-mesh-incomplete")
    finally:
        _heal(state)
    assert _tunnels(state, peer.name) == healthy
