"""The fix and runbook commands, run in-process through the command line, against namespaces and case bundles."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import nslib
import pytest
from cli_runner import invoke
from test_fix_apply import _build

from netdoctor import synthetic
from netdoctor.capture.bundle import load_bundle
from netdoctor.fix import FixPlan, Operation, Safety, Step, dumps_plans
from netdoctor.model.serialize import dumps_snapshot

REPOSITORY = Path(__file__).resolve().parent.parent
#: A bundle where node2 has net.ipv4.ip_forward = 0, from the project's own cases.
CASE = REPOSITORY / "fixtures" / "cases" / "ip-forward-disabled-fail"


def test_bundle_prints_script() -> None:
    result = invoke("fix", "--bundle", str(CASE))

    assert result.exit_code == 0, result.output
    assert result.output.startswith("#!/bin/sh\n")
    assert "sysctl -w net.ipv4.ip_forward=1" in result.output


def test_bundle_cannot_be_applied() -> None:
    result = invoke("fix", "--bundle", str(CASE), "--apply", "--yes")

    assert result.exit_code == 2
    assert "describes another machine" in result.output


def test_snapshot_without_faults_cannot_be_applied(tmp_path: Path) -> None:
    snapshot = tmp_path / "clean.json"
    snapshot.write_text(dumps_snapshot(synthetic.generate("calico", 3)))
    journal = tmp_path / "journal.json"

    result = invoke("fix", "--snapshot", str(snapshot), "--apply", "--yes", "--journal", str(journal))

    assert result.exit_code == 2
    assert "describes another machine" in result.output
    assert not journal.exists()


def test_unknown_node_rejected() -> None:
    result = invoke("fix", "--bundle", str(CASE), "--node", "node9")

    assert result.exit_code == 2
    assert "node9" in result.output


def test_invalid_plan_file(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text("{not json")

    result = invoke("fix", "--apply", str(plan))

    assert result.exit_code == 2
    assert f"{plan}: invalid JSON at line 1" in result.output


#: A namespace no test creates. The plans below name it, so that no step could reach the host's own links.
MISSING_NAMESPACE = "nd-no-such-namespace"


@pytest.fixture
def plan_file(tmp_path: Path) -> Iterator[Callable[[Operation], Path]]:
    """Write a one-step plan for a node in :data:`MISSING_NAMESPACE`; remove that namespace if a run created it."""
    def write(operation: Operation) -> Path:
        step = Step(id="one-step", title="One step", safety=Safety.SAFE, why="test", fixer="test", check="test",
                    action=operation)
        plan = tmp_path / "plan.json"
        plan.write_text(dumps_plans([FixPlan("node1", (step,), netns=MISSING_NAMESPACE, source="netns")]))
        return plan

    try:
        yield write
    finally:
        # Opening a namespace by name with pyroute2 creates it.
        nslib.delete(MISSING_NAMESPACE)


@pytest.mark.parametrize(("operation", "expected"), [
    (Operation("route-teleport", {}), "step one-step: unknown operation kind 'route-teleport'"),
    (Operation("link-mtu", {"name": "eth0"}), "step one-step: operation link-mtu has an invalid or missing parameter"),
])
def test_plan_file_operation_checked_on_load(plan_file: Callable[[Operation], Path], operation: Operation,
                                             expected: str) -> None:
    result = invoke("fix", "--apply", str(plan_file(operation)))

    assert result.exit_code == 2
    assert expected in result.output


def test_plan_file_missing_namespace(plan_file: Callable[[Operation], Path]) -> None:
    result = invoke("fix", "--apply", str(plan_file(Operation("link-up", {"name": "eth0"}))))

    assert result.exit_code == 2
    assert f"node node1: network namespace {MISSING_NAMESPACE} does not exist" in result.output
    assert not Path("/run/netns", MISSING_NAMESPACE).exists()


def test_apply_with_undo_rejected(tmp_path: Path) -> None:
    result = invoke("fix", "--apply", str(tmp_path / "plan.json"), "--undo", str(tmp_path / "journal.json"))

    assert result.exit_code == 2
    assert "--undo JOURNAL cannot be combined with --apply" in result.output


@pytest.mark.parametrize(("entries", "problem"), [
    ([42], "entries[0] is not an object with the strings 'node', 'title' and 'status'"),
    ([{"node": "n1", "title": "t", "status": "applied", "undo": "route-del"}],
     "entries[0] has an 'undo' that is not an operation"),
    ({"node": "n1"}, "'plans' and 'entries' must be lists"),
    ([{"node": "n1", "title": "t", "status": "bogus"}], "entries[0] has the status 'bogus', which no apply run writes"),
    ([{"node": "n1", "title": "t", "status": "applied", "undo": {"kind": "route-del", "params": {}}}],
     "entries[0] is for node n1, which has no plan in the journal"),
])
def test_undo_of_damaged_journal(tmp_path: Path, entries: object, problem: str) -> None:
    from netdoctor.fixapply import JOURNAL_FORMAT

    journal = tmp_path / "journal.json"
    journal.write_text(json.dumps({"format": JOURNAL_FORMAT, "plans": [], "entries": entries}))

    result = invoke("fix", "--undo", str(journal))

    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith(f"Error: {journal}: {problem}")
    assert len(result.output.strip().splitlines()) == 1


def test_etcd_endpoints_both_spellings() -> None:
    for option in ("--etcd-endpoints", "--etcd-endpoint"):
        result = invoke("fix", "--bundle", str(CASE), option, "http://127.0.0.1:2379")

        assert result.exit_code == 0, f"{option}: {result.output}"
        assert "sysctl -w net.ipv4.ip_forward=1" in result.output
    help_text = invoke("fix", "--help").output
    assert "--etcd-endpoints" in help_text
    assert "--etcd-endpoint " not in help_text


def test_runbook_command_writes_markdown(tmp_path: Path) -> None:
    output = tmp_path / "runbook.md"

    result = invoke("runbook", "--bundle", str(CASE), "-o", str(output))

    assert result.exit_code == 0, result.output
    text = output.read_text()
    assert text.startswith("# netdoctor runbook\n")
    assert "## node2" in text


@nslib.needs_root
def test_save_apply_twice_and_undo(tmp_path: Path) -> None:
    with nslib.namespaces("lan", "a", "b") as (lan, a, b):
        _build(lan, a, b)
        netns = f"{a.name},{b.name}"
        plan = tmp_path / "plan.json"

        saved = invoke("fix", "--netns", netns, "--save", str(plan))
        assert saved.exit_code == 0, saved.output
        plans = json.loads(plan.read_text())["plans"]
        assert {item["node"] for item in plans} == {a.name, b.name}
        # Persisted files of namespace nodes go under /run/netdoctor/netns, never the host's /etc.
        assert all(item["root"].startswith("/run/netdoctor/netns/") for item in plans)
        for item in plans:
            item["root"] = str(tmp_path / item["node"])
        plan.write_text(json.dumps({"format": "netdoctor.fixplan/1", "plans": plans}))

        first = invoke("fix", "--apply", str(plan), "--yes", "--journal", str(tmp_path / "one.json"))
        # The pod veth's MTU needs the pod recreated (display-only), so one finding remains and the exit is 1.
        assert first.exit_code == 1, first.output
        assert "after: 1 finding(s) (checked on the plan's nodes only)" in first.output
        assert "vp1 1500 exceeds 1450" in first.output
        assert "fixed" in first.output

        second = invoke("fix", "--apply", str(plan), "--yes", "--journal", str(tmp_path / "two.json"))
        assert second.exit_code == 1, second.output
        entries = json.loads((tmp_path / "two.json").read_text())["entries"]
        assert {entry["status"] for entry in entries} <= {"already-done", "display-only"}

        undone = invoke("fix", "--undo", str(tmp_path / "one.json"))
        assert undone.exit_code == 0, undone.output
        assert "blackhole" in b.ip("route show 10.244.1.0/24")
        assert a.run("sysctl -n net.ipv4.ip_forward").stdout.strip() == "0"


def _local_snapshot_file(tmp_path: Path) -> Path:
    """Write the case as a snapshot file whose source is the local node."""
    path = tmp_path / "snapshot.json"
    path.write_text(dumps_snapshot(replace(load_bundle(CASE), source="local")))
    return path


def test_snapshot_script_is_host_guarded(tmp_path: Path) -> None:
    result = invoke("fix", "--snapshot", str(_local_snapshot_file(tmp_path)))

    assert result.exit_code == 0, result.output
    assert "built from snapshot:snapshot.json" in result.output
    assert "if [ \"$netdoctor_host\" = node2 ]" in result.output



def test_lab_plan_file_journal_in_lab_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETDOCTOR_LAB_ROOT", str(tmp_path / "labs"))
    with nslib.namespaces("journal") as (node,):
        step = Step(id="file-n1", title="Write n1.conf", safety=Safety.SAFE, why="test", fixer="test", check="test",
                    action=Operation("file", {"path": "/etc/n1.conf", "content": "n1\n"}))
        plan = FixPlan("n1", (step,), netns=node.name, root=str(tmp_path / "root"), source="lab:jtest")
        plan_file = tmp_path / "plan.json"
        plan_file.write_text(dumps_plans([plan]))

        result = invoke("fix", "--apply", str(plan_file), "--yes")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "root" / "etc" / "n1.conf").read_text() == "n1\n"
    journals = list((tmp_path / "labs" / "jtest" / "journals").glob("fix-*.json"))
    assert len(journals) == 1
    assert f"journal {journals[0]}" in result.output


def test_runbook_lists_gaps_of_requested_checks(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(CASE, bundle)
    (bundle / "nodes" / "node1" / "iptables-save.txt").write_text(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -m set --match-set blocklist src -j DROP\nCOMMIT\n"
    )

    listed = invoke("runbook", "--bundle", str(bundle))
    other_check = invoke("runbook", "--bundle", str(bundle), "--check", "ip-forward-disabled")

    assert listed.exit_code == 0, listed.output
    assert "## Not collected or not checked" in listed.output
    assert "- node1: `check:icmp-blocked`: could not tell whether ICMP echo-request" in listed.output
    assert other_check.exit_code == 0, other_check.output
    assert "check:icmp-blocked" not in other_check.output
