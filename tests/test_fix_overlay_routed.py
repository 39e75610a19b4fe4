"""An OVS bridge outside docker0 in a routed mesh gets a note, not a step that puts it into docker0."""

from __future__ import annotations

from test_checks_support import ovs_node, pod_gateway, pod_subnet, routes

from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import Safety, build_plans
from netdoctor.model import ClusterSnapshot
from netdoctor.model.record import replace


def test_routed_bridge_gets_note() -> None:
    # node2 routes node1's pod subnet onlink through br0's internal port: the routed layout.
    node2 = ovs_node(2, enslaved=False)
    lines = [route.describe() for route in node2.routes or ()]
    node2 = replace(node2, routes=routes(*lines, f"{pod_subnet(1)} via {pod_gateway(1)} dev br0 onlink"))
    snapshot = ClusterSnapshot(nodes=(ovs_node(1, enslaved=False), node2), source="test")
    report = run_checks(snapshot, load_checks(["overlay-interface-missing"]))
    assert [finding.detail("problem") for finding in report.findings] == ["not-enslaved"]

    plans = build_plans(report, checks=("overlay-interface-missing",))

    steps = [(plan.node, step.id, step.safety) for plan in plans for step in plan.steps]
    assert steps == [("node1", "routed-ovs-br0", Safety.DISPLAY_ONLY)]


def test_bridged_bridge_gets_enslaved() -> None:
    snapshot = ClusterSnapshot(nodes=(ovs_node(1, enslaved=False), ovs_node(2)), source="test")
    report = run_checks(snapshot, load_checks(["overlay-interface-missing"]))

    plans = build_plans(report, checks=("overlay-interface-missing",))

    steps = [(plan.node, step.id, step.safety) for plan in plans for step in plan.steps]
    assert steps == [("node1", "link-master-br0", Safety.SAFE)]
