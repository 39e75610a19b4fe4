"""bgp-peer-down over snapshots built in code."""

from __future__ import annotations

from netdoctor.engine import load_checks, run_checks
from netdoctor.model import BgpSession, ClusterSnapshot, NodeSnapshot


def _run(*nodes: NodeSnapshot) -> list:
    return list(run_checks(ClusterSnapshot(nodes=nodes), load_checks(["bgp-peer-down"])).findings)


def test_established_sessions_silent() -> None:
    node = NodeSnapshot("node1", bgp=(
        BgpSession("bird", "Mesh_10_0_0_52", "up", neighbor="10.0.0.52", info="Established"),
        BgpSession("frr", "10.0.0.53", "Established", neighbor="10.0.0.53"),
    ))

    assert _run(node) == []


def test_bird_session_active_reported() -> None:
    down = BgpSession("bird", "Mesh_10_0_0_51", "start", neighbor="10.0.0.51",
                      info="Active Socket: Connection refused")
    node = NodeSnapshot("node2", bgp=(down,))

    findings = _run(node)

    assert len(findings) == 1
    assert findings[0].nodes == ("node2",)
    assert "Mesh_10_0_0_51 (neighbor 10.0.0.51) is start: Active Socket: Connection refused" in findings[0].summary


def test_frr_session_idle_reported() -> None:
    node = NodeSnapshot("node1", bgp=(BgpSession("frr", "192.0.2.2", "Idle", neighbor="192.0.2.2"),))

    findings = _run(node)

    assert [finding.summary for finding in findings] == ["node1: frr BGP session 192.0.2.2 is Idle"]


def test_bgp_not_captured_silent() -> None:
    assert _run(NodeSnapshot("node1")) == []
