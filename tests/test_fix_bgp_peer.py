"""A BGP session that is down because the peer disabled its side is enabled on the peer, not restarted here."""

from __future__ import annotations

from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import Safety, build_plans
from netdoctor.model import Address, BgpSession, ClusterSnapshot, Interface, NodeSnapshot


def _node(name: str, address: str, session: BgpSession) -> NodeSnapshot:
    eth0 = Interface("eth0", 2, "ethernet", "UP", 1500, ("UP", "LOWER_UP"), addresses=(Address(4, address, 24),))
    return NodeSnapshot(name, interfaces=(eth0,), bgp=(session,))


def _steps(snapshot: ClusterSnapshot) -> dict[str, list[tuple[str, Safety]]]:
    report = run_checks(snapshot, load_checks(["bgp-peer-down"]))
    steps: dict[str, list[tuple[str, Safety]]] = {}
    for plan in build_plans(report, checks=("bgp-peer-down",)):
        for step in plan.steps:
            steps.setdefault(plan.node, []).append((step.id, step.safety))
    return steps


def test_disabled_side_enabled_other_side_noted() -> None:
    snapshot = ClusterSnapshot(nodes=(
        _node("a", "192.0.2.1", BgpSession("bird", "Mesh_192_0_2_2", "down", neighbor="192.0.2.2")),
        _node("b", "192.0.2.2", BgpSession("bird", "Mesh_192_0_2_1", "start", neighbor="192.0.2.1",
                                           info="Active Socket: Connection refused")),
    ))

    steps = _steps(snapshot)

    assert steps["a"] == [("bgp-enable-Mesh_192_0_2_2", Safety.DISRUPTIVE)]
    assert steps["b"] == [("bgp-peer-disabled-Mesh_192_0_2_1", Safety.DISPLAY_ONLY)]


def test_both_sides_active_both_restarted() -> None:
    snapshot = ClusterSnapshot(nodes=(
        _node("a", "192.0.2.1", BgpSession("bird", "Mesh_192_0_2_2", "start", neighbor="192.0.2.2", info="Active")),
        _node("b", "192.0.2.2", BgpSession("bird", "Mesh_192_0_2_1", "start", neighbor="192.0.2.1", info="Active")),
    ))

    steps = _steps(snapshot)

    assert steps["a"] == [("bgp-restart-Mesh_192_0_2_2", Safety.DISRUPTIVE)]
    assert steps["b"] == [("bgp-restart-Mesh_192_0_2_1", Safety.DISRUPTIVE)]


def test_calico_session_names_give_peer() -> None:
    # birdc show protocols prints no neighbour; Calico's session names carry the peer's address.
    snapshot = ClusterSnapshot(nodes=(
        _node("a", "192.0.2.1", BgpSession("bird", "Mesh_192_0_2_2", "down")),
        _node("b", "192.0.2.2", BgpSession("bird", "Mesh_192_0_2_1", "start", info="Active Socket: Connection refused")),
    ))

    steps = _steps(snapshot)

    assert steps["a"] == [("bgp-enable-Mesh_192_0_2_2", Safety.DISRUPTIVE)]
    assert steps["b"] == [("bgp-peer-disabled-Mesh_192_0_2_1", Safety.DISPLAY_ONLY)]
