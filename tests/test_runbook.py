"""Runbook rendering details that the pinned scripts do not cover."""

from __future__ import annotations

from netdoctor.fix import Condition, FixPlan, Operation, Safety, Step
from netdoctor.runbook import render_runbook


def _plan(netns: str | None, root: str) -> FixPlan:
    step = Step(
        id="ip-forward",
        title="Turn on IPv4 forwarding",
        safety=Safety.SAFE,
        why="Pods reach other nodes only through a forwarding node.",
        fixer="enable-ip-forward",
        check="ip-forward-disabled",
        done=Condition("sysctl-is", {"key": "net.ipv4.ip_forward", "value": "1"}),
        verify="cat /etc/sysctl.d/90-netdoctor-ip-forward.conf",
    )
    return FixPlan("node1", (step,), netns=netns, root=root, source="lab:lab")


def test_verify_runs_inside_node_namespace() -> None:
    text = render_runbook([_plan("nd-lab-node1", "/run/netdoctor/lab/lab/nodes/node1")], "lab:lab")

    assert (
        "`ip netns exec nd-lab-node1 cat /run/netdoctor/lab/lab/nodes/node1/etc/sysctl.d/90-netdoctor-ip-forward.conf`"
        in text
    )


def test_verify_on_host_unchanged() -> None:
    text = render_runbook([_plan(None, "/")], "local")

    assert "`cat /etc/sysctl.d/90-netdoctor-ip-forward.conf`" in text


def _flush_plan(netns: str | None, root: str) -> FixPlan:
    step = Step(
        id="ovs-fdb-flush-br-int",
        title="Flush the MACs that br-int learned",
        safety=Safety.SAFE,
        why="The bridge still sends frames for a moved MAC to the old port.",
        fixer="set-unique-mac",
        check="duplicate-mac",
        action=Operation("ovs-fdb-flush", {"bridge": "br-int"}),
        verify="ovs-appctl fdb/show br-int",
    )
    return FixPlan("node1", (step,), netns=netns, root=root, source="lab:lab")


def test_ovs_verify_names_node_socket() -> None:
    text = render_runbook([_flush_plan("nd-lab-node1", "/run/netdoctor/lab/lab/nodes/node1")], "lab:lab")

    assert (
        "`ip netns exec nd-lab-node1 ovs-appctl -t "
        "/run/netdoctor/lab/lab/nodes/node1/run/openvswitch/ovs-vswitchd.ctl fdb/show br-int`"
        in text
    )


def test_ovs_verify_on_host_unchanged() -> None:
    text = render_runbook([_flush_plan(None, "/")], "local")

    assert "`ovs-appctl fdb/show br-int`" in text


def test_fdb_flush_rollback_names_relearning() -> None:
    text = render_runbook([_flush_plan(None, "/")], "local")

    assert "the bridge learns the flushed MACs again" in text
    assert "restarts" not in text
