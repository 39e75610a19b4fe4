"""The snapshot JSON keeps each distinct iptables rule once, and nodes refer to it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from netdoctor import synthetic
from netdoctor.capture.iptables import parse_iptables_save
from netdoctor.model import ClusterSnapshot, NodeSnapshot
from netdoctor.model.node import (
    IptablesChain,
    IptablesMatch,
    IptablesOption,
    IptablesRule,
    IptablesRuleset,
    IptablesTable,
)
from netdoctor.model.record import replace
from netdoctor.model.serialize import (
    INLINE_RULES_SCHEMA,
    SNAPSHOT_SCHEMA,
    dump_snapshot,
    dumps_snapshot,
    load_snapshot,
    loads_snapshot,
    to_json,
)
from netdoctor.model.table import SchemaError

KUBE_PROXY = """\
*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-A - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-A
-A KUBE-SVC-A -j DNAT --to-destination 10.244.1.5:53
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
-A FORWARD -s 10.244.0.0/16 -j ACCEPT
COMMIT
"""


def node_with(name: str, text: str) -> NodeSnapshot:
    """Return a node whose iptables ruleset is parsed from ``text``, as a bundle's nodes are."""
    return NodeSnapshot(name, iptables=parse_iptables_save(text, f"{name}/iptables-save.txt"))


def rules_of(node: NodeSnapshot) -> list[IptablesRule]:
    assert node.iptables is not None
    return [rule for table in node.iptables.tables for rule in table.rules]


def test_pool_shares_equal_rules() -> None:
    snapshot = ClusterSnapshot(tuple(node_with(f"node-{number}", KUBE_PROXY) for number in range(50)))

    data = json.loads(dumps_snapshot(snapshot))
    loaded = load_snapshot(data)

    assert data["schema"] == SNAPSHOT_SCHEMA
    assert len(data["iptables_rules"]) == 4
    assert data["nodes"][7]["iptables"]["tables"][0]["rules"] == [[0, 5], [1, 6], [2, 7]]
    assert loaded == snapshot
    first, last = rules_of(loaded.nodes[0]), rules_of(loaded.nodes[-1])
    assert all(one is other for one, other in zip(first, last, strict=True))


def test_pool_shifted_rule_keeps_line() -> None:
    shifted = KUBE_PROXY.replace("-A PREROUTING", "-A PREROUTING -s 192.0.2.0/24 -j RETURN\n-A PREROUTING")
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY), node_with("node-b", shifted)))

    data = dump_snapshot(snapshot)
    loaded = load_snapshot(json.loads(json.dumps(data)))

    assert len(data["iptables_rules"]) == 5
    assert data["nodes"][1]["iptables"]["tables"][0]["rules"] == [[4, 5], [0, 6], [1, 7], [2, 8]]
    assert loaded == snapshot
    assert [rule.line for rule in rules_of(loaded.node("node-b"))] == [5, 6, 7, 8, 13]


def test_reference_carries_counters() -> None:
    counted = ("*filter\n:INPUT ACCEPT [7:420]\n[3:180] -A INPUT -p icmp -j ACCEPT\n[0:0] -A INPUT -j DROP\n"
               "COMMIT\n")
    other = counted.replace("[3:180]", "[9:540]")
    snapshot = ClusterSnapshot((node_with("node-a", counted), node_with("node-b", other)))

    data = dump_snapshot(snapshot)

    assert len(data["iptables_rules"]) == 2
    assert data["nodes"][1]["iptables"]["tables"][0]["rules"] == [[0, 3, 9, 540], [1, 4, 0, 0]]
    assert "packets" not in data["iptables_rules"][0]
    loaded = loads_snapshot(json.dumps(data))
    assert loaded == snapshot
    assert rules_of(loaded.node("node-b"))[0].packets == 9


def test_inline_schema_loads_equal() -> None:
    snapshot = synthetic.generate("calico", 4, ["stale-blackhole"], services=12)
    older = dump_snapshot(snapshot)
    del older["iptables_rules"]
    older["schema"] = INLINE_RULES_SCHEMA
    for node, item in zip(snapshot.nodes, older["nodes"], strict=True):
        item["iptables"] = to_json(node.iptables)

    assert loads_snapshot(json.dumps(older)) == snapshot


def test_inline_schema_rejects_pool() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["schema"] = INLINE_RULES_SCHEMA

    with pytest.raises(SchemaError, match=r"\$\.iptables_rules: unknown field in a netdoctor\.snapshot/1 snapshot"):
        load_snapshot(data, "case.json")


def test_inline_schema_names_references() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    del data["iptables_rules"]
    data["schema"] = INLINE_RULES_SCHEMA

    with pytest.raises(SchemaError, match=r"rules\[0\]: expected an object \(rule references need the schema "
                                          r"'netdoctor\.snapshot/2', not 'netdoctor\.snapshot/1'\)$"):
        load_snapshot(data, "case.json")


def test_current_schema_accepts_inline_rules() -> None:
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY),))
    data = dump_snapshot(snapshot)
    del data["iptables_rules"]
    data["nodes"][0]["iptables"] = to_json(snapshot.nodes[0].iptables)

    assert load_snapshot(data) == snapshot


def test_load_keeps_caller_data() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY), node_with("node-b", KUBE_PROXY))))
    before = copy.deepcopy(data)

    load_snapshot(data)

    assert data == before


def test_pool_compares_rules_by_value() -> None:
    rule = IptablesRule("INPUT", 3, "INPUT -p tcp -m tcp --dport 179 -j ACCEPT", protocol="tcp",
                        matches=(IptablesMatch("tcp", (IptablesOption("--dport", ("179",)),)),), target="ACCEPT")
    equal = replace(rule, matches=(IptablesMatch("tcp", (IptablesOption("--dport", ("179",)),)),))
    negated = replace(rule, matches=(IptablesMatch("tcp", (IptablesOption("--dport", ("179",), True),)),))

    def node(name: str, chosen: IptablesRule) -> NodeSnapshot:
        table = IptablesTable("filter", (IptablesChain("INPUT", "ACCEPT"),), (chosen,))
        return NodeSnapshot(name, iptables=IptablesRuleset(4, (table,)))

    data = dump_snapshot(ClusterSnapshot((node("a", rule), node("b", equal), node("c", negated))))

    assert [item["iptables"]["tables"][0]["rules"] for item in data["nodes"]] == [[[0, 3]], [[0, 3]], [[1, 3]]]


def _with_reference(reference: Any) -> dict[str, Any]:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["nodes"][0]["iptables"]["tables"][1]["rules"][0] = reference
    return data


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ([9, 3], r"rules\[0\]\[0\]: expected a position in \$\.iptables_rules, an integer from 0 to 3, got 9$"),
        ([-1, 3], r"rules\[0\]\[0\]: expected a position .*, got -1$"),
        ([True, 3], r"rules\[0\]\[0\]: expected a position .*, got true$"),
        ([None, 3], r"rules\[0\]\[0\]: expected a position .*, got null$"),
        ([3.0, 3], r"rules\[0\]\[0\]: expected a position .*, got 3\.0$"),
        (["0", 3], r"rules\[0\]\[0\]: expected a position .*, got \"0\"$"),
        ([[3], 12], r"rules\[0\]\[0\]: expected a position .*, got \[3\]$"),
        ([3, "12"], r"rules\[0\]\[1\]: expected a line number, an integer from 1, got \"12\"$"),
        ([3, 0], r"rules\[0\]\[1\]: expected a line number, an integer from 1, got 0$"),
        ([3, -8], r"rules\[0\]\[1\]: expected a line number, an integer from 1, got -8$"),
        ([3, 12, "1", 0], r"rules\[0\]\[2\]: expected a counter, an integer from 0 to 18446744073709551615, or null"),
        ([3, 12, 0, -2], r"rules\[0\]\[3\]: expected a counter, .*, got -2$"),
        ([3, 12, 0, 2**64], r"rules\[0\]\[3\]: expected a counter, .*, got 18446744073709551616$"),
        ([3, 12, None, 5], r"rules\[0\]: expected packets and bytes both null or both set, got \[null, 5\]$"),
        ([3], r"rules\[0\]: expected a rule object, or a reference \[rule, line\] .*, got \[3\]$"),
        ([3, 12, 0], r"rules\[0\]: expected a rule object"),
        ("3", r"rules\[0\]: expected a rule object, .*, got \"3\"$"),
        ({"chain": "FORWARD"}, r"rules\[0\]: missing required field\(s\) line, text"),
    ],
)
def test_bad_reference_names_its_path(reference: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.iptables\.tables\[1\]\." + message):
        load_snapshot(_with_reference(reference), "case.json")


def test_reference_list_not_a_list() -> None:
    data = _with_reference([3, 12])
    data["nodes"][0]["iptables"]["tables"][1]["rules"] = {"0": [3, 12]}

    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.iptables\.tables\[1\]\.rules: expected a list"):
        load_snapshot(data, "case.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda pool: pool[1].update(line=4), r"\$\.iptables_rules\[1\]\.line: invalid field in a shared rule; give the line in each"),
        (lambda pool: pool[1].update(packets=0), r"\$\.iptables_rules\[1\]\.packets: invalid field in a shared rule; give the packets"),
        (lambda pool: pool[2].update(chain=5), r"\$\.iptables_rules\[2\]\.chain: expected a string"),
        (lambda pool: pool.append("rule"), r"\$\.iptables_rules\[4\]: expected an object"),
    ],
)
def test_bad_shared_rule_names_its_path(change: Any, message: str) -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    change(data["iptables_rules"])

    with pytest.raises(SchemaError, match=message):
        load_snapshot(data, "case.json")


@pytest.mark.parametrize("pool", [None, []])
def test_reference_without_pool(pool: Any) -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    if pool is None:
        del data["iptables_rules"]
    else:
        data["iptables_rules"] = pool

    with pytest.raises(SchemaError, match=r"rules\[0\]: a reference to a shared rule, but \$\.iptables_rules is missing"):
        load_snapshot(data, "case.json")


def test_pool_not_a_list() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["iptables_rules"] = {}

    with pytest.raises(SchemaError, match=r"\$\.iptables_rules: expected a list"):
        load_snapshot(data, "case.json")


def test_pool_shrinks_kube_proxy_file() -> None:
    two = len(dumps_snapshot(synthetic.generate("calico", 2, services=200)))
    many = len(dumps_snapshot(synthetic.generate("calico", 40, services=200)))

    # Forty nodes' references and routes, not twenty times two nodes' copies of about 900 rules.
    assert many < 5 * two
