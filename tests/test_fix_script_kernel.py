"""Fix scripts run against real iptables state in a network namespace.

A script is often run long after its snapshot was taken. An ACCEPT that must
sit right before a blocking rule is inserted at that rule's position when the
script runs, and skipped when that rule is gone or the ACCEPT is already there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import nslib

from netdoctor.fix import FixPlan, Operation, Safety, Step
from netdoctor.runbook import render_script

pytestmark = nslib.needs_root

RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""

BLOCKER = "INPUT -j REJECT --reject-with icmp-host-prohibited"
ACCEPT = "-p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT"


def _script(namespace: str) -> str:
    """Return the script of one step that inserts the ACCEPT before the REJECT, rule 2 when captured."""
    step = Step(
        id="accept-vxlan", title="Accept udp/8472", safety=Safety.SAFE, why="test", fixer="test", check="test",
        action=Operation("iptables-insert", {"table": "filter", "chain": "INPUT", "rule": ACCEPT, "before": BLOCKER,
                                             "position": 2}),
    )
    return render_script([FixPlan("node1", (step,), netns=namespace, source="netns")], "netns")


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "fix.sh"
    path.write_text(script)
    return subprocess.run(["sh", str(path)], capture_output=True, text=True, check=False)


def _rules(namespace: nslib.Namespace) -> list[str]:
    return namespace.run("iptables -t filter -S INPUT").stdout.splitlines()[1:]


def test_insert_follows_moved_rule(tmp_path: Path) -> None:
    with nslib.namespaces("script") as (node,):
        node.run(f"iptables-restore <<'EOF'\n{RULES}EOF")
        # A rule added after the capture moves the REJECT from position 2 to 3.
        node.run("iptables -I INPUT 1 -p icmp -j ACCEPT")
        result = _run(_script(node.name), tmp_path)
        rules = _rules(node)

    assert result.returncode == 0, result.stderr
    assert rules == [
        "-A INPUT -p icmp -j ACCEPT",
        "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
        f"-A INPUT {ACCEPT}",
        f"-A {BLOCKER}",
    ]


def test_insert_skipped_without_rule(tmp_path: Path) -> None:
    with nslib.namespaces("script") as (node,):
        node.run(f"iptables-restore <<'EOF'\n{RULES}EOF")
        node.run(f"iptables -D {BLOCKER}")
        result = _run(_script(node.name), tmp_path)
        rules = _rules(node)

    assert result.returncode == 0, result.stderr
    assert f"skipped: the rule -A {BLOCKER} is gone" in result.stderr
    assert rules == ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]


def test_second_run_inserts_nothing(tmp_path: Path) -> None:
    with nslib.namespaces("script") as (node,):
        node.run(f"iptables-restore <<'EOF'\n{RULES}EOF")
        first = _run(_script(node.name), tmp_path)
        second = _run(_script(node.name), tmp_path)
        rules = _rules(node)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert f"already done: -A INPUT {ACCEPT}" in second.stdout
    assert rules == ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", f"-A INPUT {ACCEPT}", f"-A {BLOCKER}"]


def test_rule_after_blocker_is_not_done(tmp_path: Path) -> None:
    with nslib.namespaces("script") as (node,):
        node.run(f"iptables-restore <<'EOF'\n{RULES}EOF")
        # The REJECT stops every packet before it reaches a copy behind it.
        node.run(f"iptables -A INPUT {ACCEPT}")
        result = _run(_script(node.name), tmp_path)
        rules = _rules(node)

    assert result.returncode == 0, result.stderr
    assert rules == ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", f"-A INPUT {ACCEPT}", f"-A {BLOCKER}",
                     f"-A INPUT {ACCEPT}"]
