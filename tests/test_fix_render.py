"""The printed fix script for every capture case, pinned as text.

Each case's script lives in ``tests/fix_scripts/<case>.sh``. After a reviewed
change to a fixer, rewrite them with ``NETDOCTOR_UPDATE_SCRIPTS=1 pytest
tests/test_fix_render.py`` and read the diff before committing it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from test_checks_support import iptables, ovs_node

from netdoctor.capture.bundle import load_bundle
from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import FixPlan, Operation, Safety, Step, build_plans, render_step
from netdoctor.model import ClusterSnapshot
from netdoctor.model.record import replace
from netdoctor.runbook import HOST_LINES, host_guard, render_runbook, render_script

REPOSITORY = Path(__file__).resolve().parent.parent
EXPECTED = Path(__file__).resolve().parent / "fix_scripts"
CASE_ROOTS = [REPOSITORY / "fixtures" / "cases", REPOSITORY.parent / "shared" / "cases"]


def _cases() -> list[Path]:
    found: list[Path] = []
    for root in CASE_ROOTS:
        if root.is_dir():
            found += sorted(path for path in root.iterdir() if (path / "expected.json").is_file())
    return found


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.name)
def test_case_script_matches_pinned(case: Path) -> None:
    report = run_checks(load_bundle(case), load_checks())
    script = render_script(build_plans(report), report.snapshot.source)
    expected = EXPECTED / f"{case.name}.sh"
    if os.environ.get("NETDOCTOR_UPDATE_SCRIPTS"):
        expected.write_text(script)
    assert expected.is_file(), f"no pinned script for {case.name}; run with NETDOCTOR_UPDATE_SCRIPTS=1 once"
    assert script == expected.read_text()


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.name)
def test_case_script_is_safe_to_paste(case: Path) -> None:
    report = run_checks(load_bundle(case), load_checks())
    plans = build_plans(report)
    script = render_script(plans, report.snapshot.source)
    commands = [line for line in script.splitlines() if line and not line.startswith("#")]
    safe_commands = [line for plan in plans for step in plan.steps if step.safety == Safety.SAFE
                     for line in render_step(plan, step)]
    guards = [line for plan in plans for part in host_guard(plan.node) for line in part] + list(HOST_LINES)
    for line in commands:
        assert line in safe_commands or line in guards, f"unguarded command from a non-safe step: {line}"
    for word in (" -F", " --flush", "-P FORWARD ACCEPT", " -X"):
        assert word not in script


def test_blackhole_case_removes_then_notes_bgp() -> None:
    case = REPOSITORY.parent / "shared" / "cases" / "calico-stale-blackhole-for-moved-block"
    if not case.is_dir():
        pytest.skip("the shared case folder is not beside the repository")
    report = run_checks(load_bundle(case), load_checks())
    (plan,) = build_plans(report)

    kinds = [step.action.kind for step in plan.steps if step.action]
    assert kinds == ["route-del"]
    assert plan.steps[0].safety == Safety.DISRUPTIVE
    assert "# ip route del blackhole 10.233.70.192/26 proto bird" in render_script([plan], "test")
    # BIRD owns the routes to peers' blocks on a Calico node, so the route itself is only shown.
    notes = [step for step in plan.steps if step.action is None and step.check == "route-missing"]
    assert [step.safety for step in notes] == [Safety.DISPLAY_ONLY]


def test_runbook_has_every_section() -> None:
    case = REPOSITORY.parent / "shared" / "cases" / "flannel-docker0-mtu-mismatch"
    if not case.is_dir():
        pytest.skip("the shared case folder is not beside the repository")
    report = run_checks(load_bundle(case), load_checks())
    text = render_runbook(build_plans(report), report.snapshot.source)

    assert text.count("## node") == 3
    for heading in ("**Why:**", "**Commands:**", "**Verify:**", "**Roll back:**"):
        assert text.count(heading) == 9, heading
    assert "ip link set dev docker0 mtu 1500" in text
    # Pod veths are never lowered from the host side: their pods are recreated after Docker has --mtu.
    assert "Lower the MTU of veth62fa8c8" not in text
    assert text.index("Lower the MTU of docker0") < text.index("Start Docker with --mtu=1450")
    assert text.index("Start Docker with --mtu=1450") < text.index("Recreate the pods behind veth")


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.name)
def test_disruptive_steps_say_why(case: Path) -> None:
    report = run_checks(load_bundle(case), load_checks())
    for plan in build_plans(report):
        for step in plan.steps:
            if step.safety == Safety.DISRUPTIVE:
                assert "confirmation" in step.why, f"{plan.node} {step.id}: the why does not say what it interrupts"


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.name)
def test_case_script_is_valid_shell(case: Path, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    report = run_checks(load_bundle(case), load_checks())
    script = render_script(build_plans(report), report.snapshot.source)
    checked = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_bundle_case_guards_each_node() -> None:
    case = REPOSITORY / "fixtures" / "cases" / "overlay-interface-missing-local-fail"
    report = run_checks(load_bundle(case), load_checks())
    plans = build_plans(report)
    script = render_script(plans, report.snapshot.source).splitlines()

    assert len(plans) > 1
    for plan in plans:
        opening, closing = host_guard(plan.node)
        start = script.index(opening[0])
        end = script.index(closing[-1], start)
        section = script[start:end]
        commands = [line for step in plan.steps if step.safety == Safety.SAFE for line in render_step(plan, step)]
        assert commands
        assert all(line in section for line in commands), plan.node


def _file_plan(node: str, root: Path, source: str) -> FixPlan:
    """Return a plan for ``node`` whose one safe step writes ``etc/NODE.conf`` under ``root``."""
    step = Step(
        id=f"file-{node}", title=f"Write {node}.conf", safety=Safety.SAFE, why="test", fixer="test", check="test",
        action=Operation("file", {"path": f"/etc/{node}.conf", "content": f"{node}\n"}),
    )
    return FixPlan(node, (step,), root=str(root), source=source)


def _run_script(script: str, tmp_path: Path, node: str | None) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "fix.sh"
    path.write_text(script)
    environment = {key: value for key, value in os.environ.items() if key != "NETDOCTOR_NODE"}
    if node is not None:
        environment["NETDOCTOR_NODE"] = node
    return subprocess.run(["sh", str(path)], capture_output=True, text=True, check=False, env=environment)


@pytest.mark.parametrize(("host", "ran", "skipped"), [
    ("node2", ["node2"], ["node1"]),
    ("node2.cluster.example", ["node2"], ["node1"]),
    ("node3", [], ["node1", "node2"]),
])
def test_script_runs_only_the_hosts_steps(tmp_path: Path, host: str, ran: list[str], skipped: list[str]) -> None:
    plans = [_file_plan(node, tmp_path, "bundle:test") for node in ("node1", "node2")]
    result = _run_script(render_script(plans, "bundle:test"), tmp_path, host)

    assert result.returncode == 0, result.stderr
    for node in ran:
        assert (tmp_path / "etc" / f"{node}.conf").read_text() == f"{node}\n"
        assert f"netdoctor: running the steps for {node}" in result.stdout
    for node in skipped:
        assert not (tmp_path / "etc" / f"{node}.conf").exists()
        assert f"netdoctor: skipped the steps for {node}: this host is {host}" in result.stderr


def test_script_matches_short_host_name(tmp_path: Path) -> None:
    plans = [_file_plan(node, tmp_path, "bundle:test") for node in ("node1.cluster.example", "node2.cluster.example")]
    result = _run_script(render_script(plans, "bundle:test"), tmp_path, "node2")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc" / "node2.cluster.example.conf").is_file()
    assert not (tmp_path / "etc" / "node1.cluster.example.conf").exists()


def test_script_compares_uname_without_override(tmp_path: Path) -> None:
    host = socket.gethostname()
    plans = [_file_plan(host, tmp_path, "snapshot:test"), _file_plan("nd-no-such-host", tmp_path, "snapshot:test")]
    result = _run_script(render_script(plans, "snapshot:test"), tmp_path, None)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc" / f"{host}.conf").is_file()
    assert not (tmp_path / "etc" / "nd-no-such-host.conf").exists()


def test_live_script_has_no_host_guard(tmp_path: Path) -> None:
    script = render_script([_file_plan("node1", tmp_path, "lab:test")], "lab:test")

    assert HOST_LINES[-1] not in script
    assert host_guard("node1")[0][0] not in script


def test_duplicate_vtep_case_waits_for_the_mac() -> None:
    # node2's flannel.1 took node1's VTEP MAC. Entries and leases that follow node2's device would point
    # at the shared MAC, so only node2 changes: its MAC goes back, and the entries its change removed return.
    case = REPOSITORY / "fixtures" / "cases" / "duplicate-mac-fail"
    report = run_checks(load_bundle(case), load_checks())

    steps = [(plan.node, step.id) for plan in build_plans(report) for step in plan.steps]

    assert steps == [("node2", "mac-flannel.1"), ("node2", "neigh-10.244.1.0"), ("node2", "neigh-10.244.3.0")]


@pytest.mark.parametrize(("target", "verb"), [("DROP", "drops"), ("REJECT --reject-with icmp-port-unreachable", "rejects")])
def test_overlay_port_step_names_verdict(target: str, verb: str) -> None:
    rules = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             f"-A INPUT -p gre -j {target}\nCOMMIT\n")
    snapshot = ClusterSnapshot(nodes=(replace(ovs_node(1), iptables=iptables(rules)), ovs_node(2)), source="test")
    (plan,) = build_plans(run_checks(snapshot, load_checks(["overlay-port-blocked"])))

    (step,) = plan.steps
    assert f"the filter {verb} it" in step.why
