"""The snapshot JSON keeps each distinct iptables rule and chain once, and nodes refer to them."""

from __future__ import annotations

import copy
import json
import operator
from typing import Any

import pytest

from netdoctor import synthetic
from netdoctor.capture.iptables import parse_iptables_save
from netdoctor.firewall import CompiledRuleset, Packet
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
    RULE_REFERENCES_SCHEMA,
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


def as_references(rules: dict[str, Any]) -> list[list[Any]]:
    """Return a table's rules JSON in the reference-list form that netdoctor.snapshot/2 writes."""
    lines = [line for first, count in rules["line"] for line in range(first, first + count)]
    if "packets" not in rules:
        return [[position, line] for position, line in zip(rules["rule"], lines, strict=True)]
    return [list(entry) for entry in zip(rules["rule"], lines, rules["packets"], rules["bytes"], strict=True)]


def inline_json(snapshot: ClusterSnapshot, schema: str = SNAPSHOT_SCHEMA) -> dict[str, Any]:
    """Return a snapshot's JSON with every node's rules and chains written in the node as whole objects."""
    data = dump_snapshot(snapshot)
    del data["iptables_rules"], data["iptables_chains"]
    data["schema"] = schema
    for node, item in zip(snapshot.nodes, data["nodes"], strict=True):
        item["iptables"] = to_json(node.iptables)
        # Those schemas give a rule's counters in its object.
        for table in item["iptables"].get("tables", ()):
            for rule, packets, count in zip(table.get("rules", ()), table.pop("rule_packets", ()),
                                            table.pop("rule_bytes", ())):
                rule.update(packets=packets, bytes=count)
    return data


def table_json(data: dict[str, Any], node: int = 0, table: int = 1) -> dict[str, Any]:
    found: dict[str, Any] = data["nodes"][node]["iptables"]["tables"][table]
    return found


def test_pool_shares_equal_rules() -> None:
    snapshot = ClusterSnapshot(tuple(node_with(f"node-{number}", KUBE_PROXY) for number in range(50)))

    data = json.loads(dumps_snapshot(snapshot))
    loaded = load_snapshot(data)

    assert data["schema"] == SNAPSHOT_SCHEMA
    assert len(data["iptables_rules"]) == 4
    assert len(data["iptables_chains"]) == 5
    assert table_json(data, 7, 0) == {"name": "nat", "chains": [0, 1, 2], "rules": {"rule": [0, 1, 2], "line": [[5, 3]]}}
    assert table_json(data, 7, 1) == {"name": "filter", "chains": [3, 4], "rules": {"rule": [3], "line": [[12, 1]]}}
    assert loaded == snapshot
    first, last = rules_of(loaded.nodes[0]), rules_of(loaded.nodes[-1])
    assert all(one is other for one, other in zip(first, last, strict=True))
    first_tables, last_tables = loaded.nodes[0].iptables.tables, loaded.nodes[-1].iptables.tables  # type: ignore[union-attr]
    assert all(one.chains is other.chains for one, other in zip(first_tables, last_tables, strict=True))
    assert all(one.rules is other.rules for one, other in zip(first_tables, last_tables, strict=True))


def test_pool_shifted_rule_keeps_line() -> None:
    shifted = KUBE_PROXY.replace("-A PREROUTING", "-A PREROUTING -s 192.0.2.0/24 -j RETURN\n-A PREROUTING")
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY), node_with("node-b", shifted)))

    data = dump_snapshot(snapshot)
    loaded = load_snapshot(json.loads(json.dumps(data)))

    assert len(data["iptables_rules"]) == 5
    assert table_json(data, 1, 0)["rules"] == {"rule": [4, 0, 1, 2], "line": [[5, 4]]}
    assert loaded == snapshot
    assert [rule.line for rule in rules_of(loaded.node("node-b"))] == [5, 6, 7, 8, 13]


def test_reference_carries_counters() -> None:
    counted = ("*filter\n:INPUT ACCEPT [7:420]\n[3:180] -A INPUT -p icmp -j ACCEPT\n[0:0] -A INPUT -j DROP\n"
               "COMMIT\n")
    other = counted.replace("[3:180]", "[9:540]")
    snapshot = ClusterSnapshot((node_with("node-a", counted), node_with("node-b", other)))

    data = dump_snapshot(snapshot)

    assert len(data["iptables_rules"]) == 2
    assert table_json(data, 1, 0)["rules"] == {"rule": [0, 1], "line": [[3, 2]], "packets": [9, 0], "bytes": [540, 0]}
    assert "packets" not in data["iptables_rules"][0]
    # The built-in chain's counters differ, so each node has its own entry for it.
    assert table_json(data, 0, 0)["chains"] == [0]
    assert table_json(data, 1, 0)["chains"] == [0]
    loaded = loads_snapshot(json.dumps(data))
    assert loaded == snapshot
    first, second = (node.iptables.tables[0] for node in loaded.nodes if node.iptables is not None)
    assert second.counters(0) == (9, 540)
    assert first.counters(0) == (3, 180)
    # Only the counters differ, so both nodes share the rule objects.
    assert all(map(operator.is_, first.rules, second.rules))


def test_inline_schema_loads_equal() -> None:
    snapshot = synthetic.generate("calico", 4, ["stale-blackhole"], services=12)
    older = inline_json(snapshot, INLINE_RULES_SCHEMA)

    assert loads_snapshot(json.dumps(older)) == snapshot


def test_inline_schema_rejects_pool() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["schema"] = INLINE_RULES_SCHEMA

    with pytest.raises(SchemaError, match=r"\$\.iptables_rules: unknown field in a netdoctor\.snapshot/1 snapshot"):
        load_snapshot(data, "case.json")


def test_inline_schema_names_references() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    del data["iptables_rules"], data["iptables_chains"]
    data["schema"] = INLINE_RULES_SCHEMA

    with pytest.raises(SchemaError, match=r"chains\[0\]: expected an object \(references to shared rules need the schema "
                                          r"'netdoctor\.snapshot/2' or later, and shared chains 'netdoctor\.snapshot/3', "
                                          r"not 'netdoctor\.snapshot/1'\)$"):
        load_snapshot(data, "case.json")


def test_reference_schema_loads_equal() -> None:
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY), node_with("node-b", KUBE_PROXY)))
    older = dump_snapshot(snapshot)
    older["schema"] = RULE_REFERENCES_SCHEMA
    chains = older.pop("iptables_chains")
    for item in older["nodes"]:
        for table in item["iptables"]["tables"]:
            table["chains"] = [chains[position] for position in table["chains"]]
            table["rules"] = as_references(table["rules"])

    assert load_snapshot(older) == snapshot


def test_reference_schema_rejects_shared_chains() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["schema"] = RULE_REFERENCES_SCHEMA

    with pytest.raises(SchemaError, match=r"\$\.iptables_chains: unknown field in a netdoctor\.snapshot/2 snapshot; "
                                          r"shared chains need the schema 'netdoctor\.snapshot/3'"):
        load_snapshot(data, "case.json")


def test_current_schema_accepts_inline_rules() -> None:
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY),))
    data = inline_json(snapshot)

    assert load_snapshot(data) == snapshot


def test_current_schema_accepts_reference_lists() -> None:
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY),))
    data = dump_snapshot(snapshot)
    for table in data["nodes"][0]["iptables"]["tables"]:
        table["rules"] = as_references(table["rules"])

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

    assert [item["iptables"]["tables"][0]["rules"]["rule"] for item in data["nodes"]] == [[0], [0], [1]]


def _with_reference(reference: Any) -> dict[str, Any]:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    table = table_json(data)
    table["rules"] = as_references(table["rules"])
    table["rules"][0] = reference
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
    table_json(data)["rules"] = "0"

    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.iptables\.tables\[1\]\.rules: expected an object with "
                                          r"'rule' and 'line', or a list$"):
        load_snapshot(data, "case.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda pool: pool[1].update(line=4), (r"\$\.iptables_rules\[1\]\.line: invalid field in a shared rule; give the "
                                               r"line in the 'rules' object of each table$")),
        (lambda pool: pool[1].update(packets=0), (r"\$\.iptables_rules\[1\]\.packets: invalid field in a shared rule; give "
                                                  r"the packets in the 'rules' object of each table$")),
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
    data = _with_reference([3, 12])
    if pool is None:
        del data["iptables_rules"]
    else:
        data["iptables_rules"] = pool

    with pytest.raises(SchemaError, match=r"tables\[0\]\.rules\.rule: positions of shared rules, but \$\.iptables_rules "
                                          r"is missing or empty; collect the snapshot again"):
        load_snapshot(data, "case.json")
    del table_json(data, table=0)["rules"]
    with pytest.raises(SchemaError, match=r"tables\[1\]\.rules\[0\]: a reference to a shared rule, but "
                                          r"\$\.iptables_rules is missing"):
        load_snapshot(data, "case.json")


def _with_rules(change: Any) -> dict[str, Any]:
    """Return a one-node snapshot's JSON whose filter table's rules object ``change`` has edited."""
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY.replace(
        "-A FORWARD -s", "-A FORWARD -p icmp -j ACCEPT\n-A FORWARD -s")),)))
    change(table_json(data)["rules"])
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rules: rules.update(rule=[3, 9]), (r"rules\.rule\[1\]: expected a position in \$\.iptables_rules, an "
                                                 r"integer from 0 to 4, got 9$")),
        (lambda rules: rules.update(rule=[3, True]), r"rules\.rule\[1\]: expected a position .*, got true$"),
        (lambda rules: rules.update(rule=[3, 4.0]), r"rules\.rule\[1\]: expected a position .*, got 4\.0$"),
        (lambda rules: rules.update(rule=[-1, 3]), r"rules\.rule\[0\]: expected a position .*, got -1$"),
        (lambda rules: rules.update(rule=[[3], 4]), r"rules\.rule\[0\]: expected a position .*, got \[3\]$"),
        (lambda rules: rules.update(rule="34"), r"rules\.rule: invalid; expected a list of positions in \$\.iptables_rules \(netdoctor collect"),
        (lambda rules: rules.pop("rule"), r"rules\.rule: missing; expected a list of positions"),
        (lambda rules: rules.pop("line"), r"rules\.line: missing; expected a list of runs \[first line, number of lines\]"),
        (lambda rules: rules.update(line=[[12, 1]]), (r"rules\.line: the runs cover 1 line\(s\), but 'rule' lists 2 "
                                                    r"rule\(s\); give one line per rule$")),
        (lambda rules: rules.update(line=[[0, 2]]), (r"rules\.line\[0\]: expected \[first line, number of lines\], two "
                                                   r"integers from 1, got \[0, 2\]$")),
        (lambda rules: rules.update(line=[[12, 1], [14, 0]]), r"rules\.line\[1\]: expected \[first line.*, got \[14, 0\]$"),
        (lambda rules: rules.update(line=[12, 2]), r"rules\.line\[0\]: expected \[first line.*, got 12$"),
        (lambda rules: rules.update(line=[[12, 2.0]]), r"rules\.line\[0\]: expected \[first line.*, got \[12, 2\.0\]$"),
        (lambda rules: rules.update(packets=[1, 2]), r"rules\.bytes: expected a list of 2 counter\(s\), one per rule"),
        (lambda rules: rules.update(packets=[1], bytes=[1]), r"rules\.packets: expected a list of 2 counter\(s\)"),
        (lambda rules: rules.update(packets=[1, -1], bytes=[1, 1]), (r"rules\.packets\[1\]: expected a counter, an "
                                                                   r"integer from 0 to 18446744073709551615, or null, got -1$")),
        (lambda rules: rules.update(packets=[1, None], bytes=[1, 1]), (r"rules: rule 1 has packets null and bytes 1; "
                                                                     r"expected both null or both set$")),
        (lambda rules: rules.update(lines=[]), r"rules: unknown field\(s\) \"lines\"; expected rule, line, packets, bytes$"),
    ],
)
def test_bad_rules_object_names_its_path(change: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.iptables\.tables\[1\]\." + message):
        load_snapshot(_with_rules(change), "case.json")


@pytest.mark.parametrize("key", ["rule_packets", "rule_bytes"])
def test_table_level_counters_rejected(key: str) -> None:
    data = _with_rules(lambda rules: None)
    table_json(data)[key] = [1, 2]

    with pytest.raises(SchemaError, match=(r"\$\.nodes\[0\]\.iptables\.tables\[1\]\." + key + r": unknown field; "
                                           r"give the rules' counters as 'packets' and 'bytes' in the table's 'rules'")):
        load_snapshot(data, "case.json")


def test_rules_object_reads_runs_and_counters() -> None:
    data = _with_rules(lambda rules: rules.update(rule=[4, 3], line=[[20, 1], [30, 1]], packets=[None, 6],
                                                  bytes=[None, 360]))

    loaded = load_snapshot(data)

    assert loaded.nodes[0].iptables is not None
    table = loaded.nodes[0].iptables.tables[1]
    assert [rule.line for rule in table.rules[-2:]] == [20, 30]
    assert [table.counters(position) for position in (-2, -1)] == [None, (6, 360)]
    assert table.rules[-2].text == "FORWARD -s 10.244.0.0/16 -j ACCEPT"


def test_bad_positions_not_cached() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY), node_with("node-b", KUBE_PROXY))))
    table_json(data, 1)["rules"]["rule"] = [True]

    with pytest.raises(SchemaError, match=r"\$\.nodes\[1\]\.iptables\.tables\[1\]\.rules\.rule\[0\]: expected a "
                                          r"position .*, got true$"):
        load_snapshot(data, "case.json")


@pytest.mark.parametrize(
    ("chains", "message"),
    [
        ([3, 9], r"chains\[1\]: expected a position in \$\.iptables_chains, an integer from 0 to 4, got 9$"),
        ([3, -1], r"chains\[1\]: expected a position .*, got -1$"),
        ([3, True], r"chains\[1\]: expected a chain object or a position in \$\.iptables_chains, got true$"),
        ([3, "INPUT"], r"chains\[1\]: expected a chain object or a position .*, got \"INPUT\"$"),
        ([3, {"name": 4}], r"chains\[1\]\.name: expected a string"),
        ("34", r"chains: expected a list$"),
    ],
)
def test_bad_chain_position_names_its_path(chains: Any, message: str) -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    table_json(data)["chains"] = chains

    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.iptables\.tables\[1\]\." + message):
        load_snapshot(data, "case.json")


def test_chain_objects_mix_with_positions() -> None:
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY),))
    data = dump_snapshot(snapshot)
    table_json(data)["chains"] = [3, {"name": "FORWARD", "policy": "DROP", "packets": 0, "bytes": 0}]

    assert load_snapshot(data) == snapshot


@pytest.mark.parametrize("pool", [None, []])
def test_chain_position_without_pool(pool: Any) -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    if pool is None:
        del data["iptables_chains"]
    else:
        data["iptables_chains"] = pool

    with pytest.raises(SchemaError, match=r"tables\[0\]\.chains\[0\]: a position of a shared chain, but "
                                          r"\$\.iptables_chains is missing or empty"):
        load_snapshot(data, "case.json")


def test_bad_shared_chain_names_its_path() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["iptables_chains"][2]["policy"] = 1

    with pytest.raises(SchemaError, match=r"\$\.iptables_chains\[2\]\.policy: expected a string"):
        load_snapshot(data, "case.json")
    data["iptables_chains"] = {}
    with pytest.raises(SchemaError, match=r"\$\.iptables_chains: expected a list"):
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


def _without_chain(data: dict[str, Any], table: int, chain: str) -> dict[str, Any]:
    """Drop the declaration of ``chain`` from the first node's iptables table number ``table``."""
    entry = data["nodes"][0]["iptables"]["tables"][table]
    entry["chains"] = [item for item in entry["chains"] if data["iptables_chains"][item]["name"] != chain]
    return data


def test_undeclared_chain_rejected() -> None:
    data = _without_chain(dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),))), 0, "KUBE-SVC-A")

    with pytest.raises(SchemaError) as raised:
        load_snapshot(data, "case.json")

    message = str(raised.value)
    assert message.startswith("$.nodes[0].iptables.tables[0].rules: rule 2 (line 7) is for chain 'KUBE-SVC-A', ")
    assert "table 'nat' of node 'node-a' does not declare" in message
    assert "declare the chain in $.nodes[0].iptables.tables[0].chains, or remove the rule" in message


def test_undeclared_chain_on_second_node_rejected() -> None:
    # Both nodes load one tuple of rules, and the first node declares every chain they use.
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY), node_with("node-b", KUBE_PROXY))))
    entry = data["nodes"][1]["iptables"]["tables"][0]
    entry["chains"] = [item for item in entry["chains"] if data["iptables_chains"][item]["name"] != "KUBE-SVC-A"]

    with pytest.raises(SchemaError, match=r"^\$\.nodes\[1\]\.iptables\.tables\[0\]\.rules: rule 2 \(line 7\) is for "
                                          r"chain 'KUBE-SVC-A', which table 'nat' of node 'node-b' does not declare"):
        load_snapshot(data, "case.json")


def test_undeclared_chain_of_shared_rule_rejected() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["iptables_rules"][3]["chain"] = "KUBE-FORWARD"

    with pytest.raises(SchemaError, match=r"^\$\.nodes\[0\]\.iptables\.tables\[1\]\.rules: rule 0 \(line 12\) is for "
                                          r"chain 'KUBE-FORWARD', which table 'filter' of node 'node-a' does not declare"):
        load_snapshot(data, "case.json")


def test_undeclared_chain_rejected_inline() -> None:
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY),))
    data = dump_snapshot(snapshot)
    del data["iptables_rules"], data["iptables_chains"]
    data["schema"] = INLINE_RULES_SCHEMA
    ruleset = to_json(replace(snapshot.nodes[0].iptables, family=6))
    ruleset["tables"][0]["chains"] = [chain for chain in ruleset["tables"][0]["chains"] if chain["name"] != "KUBE-SVC-A"]
    data["nodes"][0] = {"name": "node-a", "ip6tables": ruleset}

    with pytest.raises(SchemaError, match=r"^\$\.nodes\[0\]\.ip6tables\.tables\[0\]\.rules: rule 2 \(line 7\) is for "
                                          r"chain 'KUBE-SVC-A'"):
        load_snapshot(data, "case.json")


@pytest.mark.parametrize(("table", "chain"), [(0, "PREROUTING"), (1, "FORWARD")])
def test_undeclared_builtin_chain_accepted(table: int, chain: str) -> None:
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY),))
    data = _without_chain(dump_snapshot(snapshot), table, chain)

    loaded = load_snapshot(data, "case.json")

    assert rules_of(loaded.nodes[0]) == rules_of(snapshot.nodes[0])


def test_builtin_chain_of_other_table_rejected() -> None:
    text = "*raw\n:PREROUTING ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j NOTRACK\nCOMMIT\n"
    data = _without_chain(dump_snapshot(ClusterSnapshot((node_with("node-a", text),))), 0, "FORWARD")

    with pytest.raises(SchemaError, match=r"rules: rule 0 \(line 4\) is for chain 'FORWARD', which table 'raw' of node "
                                          r"'node-a' does not declare"):
        load_snapshot(data, "case.json")


def test_equal_tables_compile_once() -> None:
    other = KUBE_PROXY.replace("-A FORWARD -s 10.244.0.0/16 -j ACCEPT", "-A FORWARD -s 10.245.0.0/16 -j ACCEPT")
    loaded = loads_snapshot(dumps_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),
                                                            node_with("node-b", KUBE_PROXY),
                                                            node_with("node-c", other)))))
    shared: dict[Any, Any] = {}
    compiled = [CompiledRuleset(node.iptables, shared) for node in loaded.nodes if node.iptables is not None]
    packet = Packet("tcp", "10.244.1.5", "10.244.2.7", dport=80)

    verdicts = [ruleset.evaluate("FORWARD", packet) for ruleset in compiled]
    dns = [ruleset.evaluate("PREROUTING", Packet("udp", "10.244.1.5", "10.96.0.10", dport=53), "nat")
           for ruleset in compiled]

    # node-c accepts 10.245.0.0/16 only, so its FORWARD policy drops the packet.
    assert [verdict.verdict for verdict in verdicts] == ["ACCEPT", "ACCEPT", "DROP"]
    assert verdicts[0].rule is verdicts[1].rule
    assert [verdict.verdict for verdict in dns] == ["DNAT"] * 3
    # One compiled filter table for node-a and node-b, one for node-c, and one nat table for all three.
    assert len({id(entry[1]) for key, entry in shared.items() if key is not None}) == 3


def test_tables_with_counters_compile_once() -> None:
    counted = ("*filter\n:INPUT ACCEPT [7:420]\n:FORWARD DROP [3:180]\n[3:180] -A FORWARD -p icmp -j ACCEPT\n"
               "[0:0] -A FORWARD -s 10.244.0.0/16 -j ACCEPT\nCOMMIT\n")
    other = counted.replace("[3:180] -A", "[9:540] -A").replace(":INPUT ACCEPT [7:420]", ":INPUT ACCEPT [1:60]")
    loaded = loads_snapshot(dumps_snapshot(ClusterSnapshot((node_with("node-a", counted), node_with("node-b", other)))))
    shared: dict[Any, Any] = {}
    compiled = [CompiledRuleset(node.iptables, shared) for node in loaded.nodes if node.iptables is not None]
    packet = Packet("icmp", "10.244.1.5", "10.244.2.7", icmp_type=8, icmp_code=0)

    verdicts = [ruleset.evaluate("FORWARD", packet) for ruleset in compiled]

    assert len({id(entry[1]) for key, entry in shared.items() if key is not None}) == 1
    assert [verdict.verdict for verdict in verdicts] == ["ACCEPT", "ACCEPT"]
    # Each verdict names its node's rule, and each node's table has its own counters for it.
    for verdict, node in zip(verdicts, loaded.nodes, strict=True):
        assert node.iptables is not None
        assert verdict.rule is node.iptables.tables[0].rules[0]
    assert [node.iptables.tables[0].counters(0) for node in loaded.nodes if node.iptables] == [(3, 180), (9, 540)]


def test_policy_difference_not_shared() -> None:
    accept = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p icmp -j ACCEPT\nCOMMIT\n"
    drop = accept.replace(":FORWARD ACCEPT", ":FORWARD DROP")
    loaded = loads_snapshot(dumps_snapshot(ClusterSnapshot((node_with("node-a", accept), node_with("node-b", drop)))))
    shared: dict[Any, Any] = {}
    compiled = [CompiledRuleset(node.iptables, shared) for node in loaded.nodes if node.iptables is not None]

    verdicts = [ruleset.evaluate("FORWARD", Packet("tcp", "10.244.1.5", "10.244.2.7", dport=80)) for ruleset in compiled]

    assert [verdict.verdict for verdict in verdicts] == ["ACCEPT", "DROP"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"line": 0}, r"rules\[0\]\.line: expected a line number, an integer from 1, got 0$"),
        ({"packets": -1, "bytes": -1}, (r"rules\[0\]\.packets: expected a counter, an integer from 0 to "
                                       r"18446744073709551615, or null, got -1$")),
        ({"packets": 2**64, "bytes": 0}, r"rules\[0\]\.packets: expected a counter, .*, got 18446744073709551616$"),
        ({"packets": 5}, r"rules\[0\]: expected packets and bytes both null or both set, got packets 5 and bytes null$"),
    ],
)
@pytest.mark.parametrize("schema", [INLINE_RULES_SCHEMA, RULE_REFERENCES_SCHEMA, SNAPSHOT_SCHEMA])
def test_rule_object_place_checked(change: dict[str, Any], message: str, schema: str) -> None:
    # A rule object must load only when the file that netdoctor writes from it loads too.
    data = inline_json(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)), schema)
    table_json(data)["rules"][0].update(change)

    with pytest.raises(SchemaError, match=r"\$\.nodes\[0\]\.iptables\.tables\[1\]\." + message):
        load_snapshot(data, "case.json")


@pytest.mark.parametrize("part", ["chains", "rules"])
def test_reference_schema_names_later_parts(part: str) -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["schema"] = RULE_REFERENCES_SCHEMA
    chains = data.pop("iptables_chains")
    for table in data["nodes"][0]["iptables"]["tables"]:
        if part == "rules":
            table["chains"] = [chains[position] for position in table["chains"]]

    with pytest.raises(SchemaError, match=r"\(chain positions and rules objects need the schema "
                                          r"'netdoctor\.snapshot/3', not 'netdoctor\.snapshot/2'\)$"):
        load_snapshot(data, "case.json")


def test_null_chain_pool_rejected() -> None:
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", KUBE_PROXY),)))
    data["iptables_chains"] = None

    with pytest.raises(SchemaError, match=r"^\$\.iptables_chains: expected a list$"):
        load_snapshot(data, "case.json")


@pytest.mark.parametrize(
    ("counters", "message"),
    [
        ({"packets": -5}, r"packets: expected a counter, an integer from 0 to 18446744073709551615, or null, got -5$"),
        ({"bytes": 2**70}, r"bytes: expected a counter, .*, got 1180591620717411303424$"),
        ({"packets": None, "bytes": 7}, (r": expected packets and bytes both null or both set, got packets null and "
                                        r"bytes 7$")),
    ],
)
@pytest.mark.parametrize("schema", [INLINE_RULES_SCHEMA, RULE_REFERENCES_SCHEMA, SNAPSHOT_SCHEMA])
def test_chain_counters_checked(counters: dict[str, Any], message: str, schema: str) -> None:
    snapshot = ClusterSnapshot((node_with("node-a", KUBE_PROXY),))
    if schema == SNAPSHOT_SCHEMA:
        data = dump_snapshot(snapshot)
        data["iptables_chains"][3].update(counters)
        where = r"\$\.iptables_chains\[3\]\.?"
    else:
        data = inline_json(snapshot, schema)
        table_json(data)["chains"][0].update(counters)
        where = r"\$\.nodes\[0\]\.iptables\.tables\[1\]\.chains\[0\]\.?"

    with pytest.raises(SchemaError, match=where + message):
        load_snapshot(data, "case.json")


def test_repeated_rule_object_not_shared() -> None:
    plain = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n-A FORWARD -p icmp -j ACCEPT\nCOMMIT\n"
    data = dump_snapshot(ClusterSnapshot((node_with("node-a", plain), node_with("node-b", plain))))
    for item in data["nodes"]:
        # The same rule twice at one line, as only an edited file has it, so each node loads one rule object twice.
        # node-b's two copies have different counters.
        rules = item["iptables"]["tables"][0]["rules"]
        rules.update(rule=rules["rule"] * 2, line=[[4, 1], [4, 1]])
    data["nodes"][1]["iptables"]["tables"][0]["rules"].update(packets=[2, 8], bytes=[120, 480])
    loaded = load_snapshot(data)
    shared: dict[Any, Any] = {}
    compiled = [CompiledRuleset(node.iptables, shared) for node in loaded.nodes if node.iptables is not None]

    verdicts = [ruleset.evaluate("FORWARD", Packet("icmp", "10.244.1.5", "10.244.2.7", icmp_type=8, icmp_code=0))
                for ruleset in compiled]

    # The first copy decides on both nodes.
    for verdict, node in zip(verdicts, loaded.nodes, strict=True):
        assert node.iptables is not None
        assert verdict.rule is node.iptables.tables[0].rules[0]
    assert loaded.nodes[1].iptables is not None
    assert loaded.nodes[1].iptables.tables[0].counters(0) == (2, 120)
