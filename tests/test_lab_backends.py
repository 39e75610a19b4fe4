"""Each lab backend against the real kernel: it comes up, every pod pings every pod, and every fault breaks and heals.

One lab per backend serves the whole module. For a symptom cell the fault's
probe must be answered before ``lab break``, unanswered after it and answered
again after ``lab heal``. For every cell that applies, the node state read
with ``ip``, ``bridge``, ``iptables-save``, ``sysctl``, etcd and OVS must differ
after ``lab break`` and be back to the healthy state after ``lab heal``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nslib
import pytest
from cli_runner import invoke

from netdoctor.lab import faults
from netdoctor.lab.lifecycle import down, up
from netdoctor.lab.ping import ping, ping_matrix
from netdoctor.lab.plan import BACKENDS
from netdoctor.lab.state import LabState

pytestmark = [nslib.needs_root, pytest.mark.netns]


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request: pytest.FixtureRequest) -> Iterator[LabState]:
    """A 3-node lab of one backend, removed after the module's tests of that backend."""
    backend = request.param
    if not nslib.lab_available(backend):
        pytest.skip(f"{backend} needs {nslib.LAB_NEEDS[backend]}")
    name = f"t{backend.replace('-', '')[:5]}{nslib.PREFIX.split('-')[1][-4:]}"
    # FRR's daemons run as user frr, so the state directory must be reachable by other users.
    base = Path(tempfile.mkdtemp(prefix="nd-lab-test-"))
    base.chmod(0o755)
    state_dir = base / name
    state = up(name, backend, nodes=3, pods_per_node=2, state_dir=state_dir)
    try:
        yield state
    finally:
        down(name, state_dir)
        shutil.rmtree(base, ignore_errors=True)


#: IPv6 link-local and multicast entries that the kernel adds and removes on its own.
_IPV6 = re.compile(r"fe80:|ff00::|inet6|anycast|multicast ff")


def _run(argv: list[str]) -> str:
    return nslib.sh(" ".join(argv), check=False).stdout


def _node_state(state: LabState, netns: str) -> list[str]:
    """Read what a fault can change on one node, with counters, timestamps and kernel ids removed."""
    parts = [
        _run(["ip", "-n", netns, "-d", "link", "show"]),
        _run(["ip", "-n", netns, "addr", "show"]),
        _run(["ip", "-n", netns, "route", "show", "table", "all"]),
        _run(["ip", "-n", netns, "neigh", "show", "nud", "permanent"]),
        _run(["bridge", "-n", netns, "fdb", "show", "|", "grep", "permanent"]),
        _run(["ip", "netns", "exec", netns, "iptables-save"]),
        _run(["ip", "netns", "exec", netns, "sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter",
              "net.ipv4.conf.eth0.rp_filter", "net.bridge.bridge-nf-call-iptables"]),
    ]  # fmt: skip
    ovs_socket = state.node_path(netns.rsplit("-", 1)[1], "/run/openvswitch/db.sock")
    if ovs_socket.exists():
        parts.append(_run(["ovs-vsctl", f"--db=unix:{ovs_socket}", "show"]))
        parts.append(_run(["ovs-vsctl", f"--db=unix:{ovs_socket}", "list", "bridge", "br-int", "|", "grep", "other_config"]))
        mgmt = state.node_path(netns.rsplit("-", 1)[1], "/run/openvswitch/br-int.mgmt")
        if mgmt.exists():
            parts.append(_run(["ovs-ofctl", "dump-flows", "--no-stats", f"unix:{mgmt}"]))
    lines = []
    for line in "\n".join(parts).splitlines():
        if line.startswith("#") or _IPV6.search(line):
            continue
        line = re.sub(r"\w+_timer\s+[\d.]+| state (UP|UNKNOWN|DOWN)\b", "", line)
        line = re.sub(r"nhid \d+ |^\d+: |@if\d+|@NONE|qlen \d+|link-netns \S+", "", line)
        line = re.sub(r"(valid|preferred)_lft \S+", "", line).strip()
        if line:
            lines.append(line)
    return sorted(lines)


def _etcd_state(state: LabState) -> list[str]:
    if state.etcd_endpoint is None:
        return []
    with urllib.request.urlopen(f"{state.etcd_endpoint}/v2/keys/coreos.com/network?recursive=true") as response:
        v2 = json.loads(response.read())
    values = []
    stack = [v2.get("node", {})]
    while stack:
        node = stack.pop()
        stack.extend(node.get("nodes", []))
        if "value" in node:
            values.append(f"v2 {node['key']} {node['value']}")
    v3 = _run(["ETCDCTL_API=3", "etcdctl", f"--endpoints={state.etcd_endpoint}", "get", "--prefix", "/coreos.com"])
    return sorted(values) + ["v3 " + line for line in v3.splitlines()]


def _lab_state(state: LabState) -> dict[str, list[str]]:
    found = {node.name: _node_state(state, node.netns) for node in state.plan.nodes}
    found["etcd"] = _etcd_state(state)
    return found


def _replied_within(probe: faults.Probe, seconds: int) -> bool:
    """Send the probe until it gets a reply, at most ``seconds`` times; each try waits a second for the reply.

    NOTE: in full-suite runs the ovs-gre cells that follow duplicate-mac have
    found this probe unanswered at first. The cause (a MAC address learned on a
    tunnel port, or a stale neighbour entry) is not confirmed.
    """
    for _ in range(seconds):
        if ping(probe.source, [probe.destination], size=probe.size)[probe.destination].ok:
            return True
    return False


def test_every_pod_pings_every_pod(lab: LabState) -> None:
    matrix = ping_matrix(lab.plan)
    failed = {pair: result.error for pair, result in matrix.items() if not result.ok}
    assert len(matrix) == 6 * 5
    assert failed == {}


def test_status_reports_full_matrix(lab: LabState) -> None:
    result = invoke("lab", "status", "--name", lab.name, "--state-dir", str(lab.state_dir), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ping_ok"] == report["ping_total"] == 30
    assert all(daemon["running"] for daemon in report["daemons"].values())


@pytest.mark.parametrize("fault_id", list(faults.FAULTS))
def test_fault_breaks_and_heals(lab: LabState, fault_id: str) -> None:
    cell = faults.cell(lab.plan.backend, fault_id)
    arguments = ["--name", lab.name, "--state-dir", str(lab.state_dir)]
    if cell.kind == faults.NOT_APPLICABLE:
        result = invoke("lab", "break", fault_id, *arguments)
        assert result.exit_code == 2, result.output
        assert cell.reason in result.output
        return

    probe = faults.probe_for(lab.plan, fault_id)
    healthy = _lab_state(lab)
    assert _replied_within(probe, 30), f"{probe} got no reply before {fault_id} was set"

    result = invoke("lab", "break", fault_id, *arguments)
    assert result.exit_code == 0, result.output
    try:
        broken = _lab_state(lab)
        assert broken != healthy, f"{fault_id} changed nothing that the node state shows"
        answer = ping(probe.source, [probe.destination], timeout=0.5, size=probe.size)[probe.destination]
        if cell.kind == faults.SYMPTOM:
            assert not answer.ok, f"{probe} was answered while {fault_id} is active"
        elif cell.steady:
            assert answer.ok, f"{probe} failed although {fault_id} is check-only: {answer.error}"
    finally:
        result = invoke("lab", "heal", *arguments)
        assert result.exit_code == 0, result.output

    healed = _lab_state(lab)
    for part, lines in healthy.items():
        lost = sorted(set(lines) - set(healed[part]))
        extra = sorted(set(healed[part]) - set(lines))
        assert (lost, extra) == ([], []), f"{part} after heal: lost {lost}, extra {extra}"
    assert ping(probe.source, [probe.destination], size=probe.size)[probe.destination].ok
