"""The synthetic cluster generator: deterministic output, clean baselines, and each fault found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netdoctor import synthetic
from netdoctor.engine import catalogue, load_checks, run_checks
from netdoctor.model import ClusterSnapshot, Severity
from netdoctor.model.node import IptablesTable, NodeSnapshot
from netdoctor.model.serialize import dumps_snapshot, read_snapshot, write_snapshot
from netdoctor.model.table import SchemaError


def _reported(snapshot: ClusterSnapshot) -> set[str]:
    report = run_checks(snapshot, load_checks(sorted(catalogue())))
    assert report.gaps == ()
    return {finding.check for finding in report.findings if finding.severity >= Severity.WARNING}


@pytest.mark.parametrize("backend", synthetic.BACKENDS)
def test_clean_cluster_has_no_findings(backend: str) -> None:
    assert _reported(synthetic.generate(backend, 9)) == set()


@pytest.mark.parametrize("backend", synthetic.BACKENDS)
def test_services_add_no_findings(backend: str) -> None:
    assert _reported(synthetic.generate(backend, 9, services=120)) == set()


def test_services_keep_faults_reported() -> None:
    faults = ["route-missing", "stale-blackhole", "ip-forward-off"]
    assert _reported(synthetic.generate("calico", 9, faults, services=40)) == synthetic.expected_checks(faults)


def test_services_add_kube_proxy_rules() -> None:
    ruleset = synthetic.generate("calico", 4, services=20).nodes[0].iptables
    assert ruleset is not None
    nat, filter_table = ruleset.table("nat"), ruleset.table("filter")
    assert nat is not None
    assert filter_table is not None
    # 18 services with an endpoint get five rules each; the two without one get a REJECT rule.
    assert len(nat.rules_of("KUBE-SERVICES")) == 18
    assert len(nat.rules) == len(synthetic.NAT_RULES) + 7 + 18 * 5
    assert [rule.target for rule in filter_table.rules_of("KUBE-SERVICES")] == ["REJECT", "REJECT"]
    # Service 5's endpoint is node 1's second pod, in node 1's Calico block.
    assert "DNAT --to-destination 10.128.0.67:8080" in nat.rules_of("KUBE-SEP-0000000000000005")[1].text


def _nat_table(node: NodeSnapshot) -> IptablesTable:
    table = node.iptables.table("nat") if node.iptables is not None else None
    assert table is not None
    return table


def test_counters_differ_between_nodes() -> None:
    snapshot = synthetic.generate("calico", 4, services=20, counters=True)
    tables = [_nat_table(node) for node in snapshot.nodes]
    plain = _nat_table(synthetic.generate("calico", 4, services=20).nodes[0])

    assert [len(table.rule_packets) for table in tables] == [len(plain.rules)] * 4
    assert len({table.rule_packets for table in tables}) == 4
    # Counters are the only difference: the rules are those of a cluster without counters.
    assert [table.rules for table in tables] == [plain.rules] * 4
    assert _reported(snapshot) == set()


def test_command_writes_counters(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    assert synthetic.main(["--nodes", "3", "--services", "5", "--counters", "-o", str(path)]) == 0
    assert read_snapshot(path) == synthetic.generate("calico", 3, services=5, counters=True)


def test_command_writes_services(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    assert synthetic.main(["--nodes", "3", "--services", "5", "-o", str(path)]) == 0
    assert read_snapshot(path) == synthetic.generate("calico", 3, services=5)


@pytest.mark.parametrize(
    ("backend", "fault"),
    [(backend, fault) for fault, (_, backends) in synthetic.FAULTS.items() for backend in backends],
)
def test_fault_reports_its_checks(backend: str, fault: str) -> None:
    assert _reported(synthetic.generate(backend, 9, [fault], seed=5)) == synthetic.expected_checks([fault])


def test_fault_lands_on_planned_node() -> None:
    plan = synthetic.plan("direct-routing", 40, ["route-missing"], seed=11)
    node, peer = plan.faults["route-missing"]
    report = run_checks(synthetic.generate("direct-routing", 40, ["route-missing"], seed=11), load_checks(["route-missing"]))
    assert [finding.nodes for finding in report.findings] == [(synthetic.node_name(node),)]
    assert synthetic.node_name(peer) in report.findings[0].summary


def test_same_seed_same_bytes() -> None:
    first = dumps_snapshot(synthetic.generate("flannel-vxlan", 15, ["vtep-mismatch"], seed=7))
    second = dumps_snapshot(synthetic.generate("flannel-vxlan", 15, ["vtep-mismatch"], seed=7))
    assert first == second


def test_other_seed_other_fault_node() -> None:
    chosen = {synthetic.plan("calico", 500, ["route-missing"], seed=seed).faults["route-missing"] for seed in range(5)}
    assert len(chosen) > 1


def test_calico_routes_grow_with_square() -> None:
    snapshot = synthetic.generate("calico", 30)
    routes = sum(len(node.routes or ()) for node in snapshot.nodes)
    # Each node: 29 peer blocks, its blackhole, 3 pod routes and 4 base routes.
    assert routes == 30 * (29 + 1 + 3 + 4)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("weave", 10, ()), "unknown backend 'weave'"),
        (("calico", 1, ()), "node count 1 is out of range"),
        (("calico", 10, ("mtu",)), "unknown fault 'mtu'"),
        (("ovs-vxlan", 10, ("stale-blackhole",)), "does not apply to ovs-vxlan"),
        (("calico", 10, (), 1, -1), "service count -1 is out of range"),
    ],
)
def test_bad_request_is_named(arguments: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthetic.generate(*arguments)


def test_streamed_file_equals_dumps(tmp_path: Path) -> None:
    snapshot = synthetic.generate("flannel-vxlan", 6, ["vtep-mismatch"])
    path = tmp_path / "cluster.json"
    with path.open("w", encoding="utf-8") as stream:
        write_snapshot(snapshot, stream)
    assert path.read_text(encoding="utf-8") == dumps_snapshot(snapshot)
    assert read_snapshot(path) == snapshot


def test_command_writes_loadable_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    assert synthetic.main(["--backend", "calico", "--nodes", "5", "--fault", "route-missing", "-o", str(path)]) == 0
    assert read_snapshot(path) == synthetic.generate("calico", 5, ["route-missing"])


@pytest.mark.parametrize(("arguments", "expected"), [
    (["--backend", "ovs-vxlan", "--fault", "stale-blackhole", "-o", "x.json"], "does not apply to ovs-vxlan"),
    (["--nodes", "abc", "-o", "x.json"], "argument --nodes: invalid int value: 'abc'"),
    (["-o", "missing/x.json"], "cannot write missing/x.json"),
])
def test_command_rejects_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                   arguments: list[str], expected: str) -> None:
    monkeypatch.chdir(tmp_path)

    assert synthetic.main(arguments) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert expected in lines[0]


def test_truncated_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(dumps_snapshot(synthetic.generate("calico", 3))[:-40], encoding="utf-8")
    with pytest.raises(SchemaError, match=r"cut\.json: invalid JSON at line 1"):
        read_snapshot(path)


@pytest.mark.parametrize("backend", synthetic.BACKENDS)
def test_all_faults_together_each_reported(backend: str) -> None:
    faults = [fault for fault, (_, backends) in synthetic.FAULTS.items() if backend in backends]
    for nodes in (3, 4, 7):
        for seed in range(6):
            snapshot = synthetic.generate(backend, nodes, faults, seed=seed)
            assert _reported(snapshot) == synthetic.expected_checks(faults), (nodes, seed)


def test_faults_land_on_distinct_nodes() -> None:
    chosen = synthetic.plan("calico", 3, ["route-missing", "stale-blackhole", "ip-forward-off"], seed=4).faults
    assert len({node for node, _ in chosen.values()}) == 3


def test_repeated_fault_injected_once() -> None:
    plan = synthetic.plan("calico", 10, ["route-missing", "route-missing"], seed=2)
    assert list(plan.faults) == ["route-missing"]


def test_too_few_nodes_for_faults() -> None:
    with pytest.raises(ValueError, match="1 fault\\(s\\) need at least 3 nodes, not 2"):
        synthetic.plan("ovs-vxlan", 2, ["tunnel-missing"])


def test_pod_paths_skip_own_subnet_on_peer_device() -> None:
    from dataclasses import replace

    from netdoctor.checks.filtering import pod_paths
    from netdoctor.facts import cluster_facts
    from netdoctor.model.routes import Route, RouteTable

    snapshot = synthetic.generate("flannel-vxlan", 4)
    node = snapshot.nodes[0]
    assert node.routes is not None
    # The node's own /24 moved onto flannel.1, the device its peers' subnets use.
    rows = [route._replace(dev="flannel.1") if route.dev == "cni0" and route.dst_len == 24 else route
            for route in node.routes]
    moved = replace(node, routes=RouteTable.from_rows(Route(*row) for row in rows))
    snapshot = replace(snapshot, nodes=(moved, *snapshot.nodes[1:]))
    facts = cluster_facts(snapshot)

    paths = pod_paths(facts, facts.nodes[node.name])

    assert [path.peer_device for path in paths] == ["flannel.1"]
    assert paths[0].peer == synthetic.node_name(1)


def test_file_with_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "edited.json"
    snapshot = synthetic.generate("calico", 3)
    path.write_text("\ufeff" + dumps_snapshot(snapshot), encoding="utf-8")

    assert read_snapshot(path) == snapshot
