"""The shared iptables rules of a snapshot's JSON.

kube-proxy and the network plugins write the same rules on every node: a
cluster with 1,000 ClusterIP services has about 4,600 of them on each node.
Written out per node, a 1,000-node snapshot of such a cluster would hold 4.6
million rule objects, and loading it would need about 12 GiB. The JSON
therefore keeps each distinct rule once, in the top-level list
``iptables_rules``, without its line number and counters. A node's table lists
references instead: ``[rule, line]``, or ``[rule, line, packets, bytes]`` when
the capture has counters. Rules that are equal on every node, at the same line,
load as one shared object.

A rule's line number is not part of the shared entry. One extra rule near the
top of a node's table shifts the line of every rule after it, and those rules
still share their entries.
"""

from __future__ import annotations

import json
from itertools import chain
from operator import attrgetter
from typing import Any

from netdoctor.model.node import IptablesRule, IptablesRuleset, NodeSnapshot
from netdoctor.model.record import record_spec, replace
from netdoctor.model.table import SchemaError, number_text

#: The top-level key of the shared rules.
POOL_KEY = "iptables_rules"
#: The node parts that contain iptables rulesets.
RULESET_FIELDS = ("iptables", "ip6tables")
#: The largest packet or byte counter: the kernel keeps them as 64-bit unsigned integers.
MAX_COUNTER = 2**64 - 1
#: Rule fields that each reference carries, in the reference's order after the rule's position.
PLACE_FIELDS = ("line", "packets", "bytes")
_SPEC = record_spec(IptablesRule)
assert _SPEC is not None
#: Rule fields kept once in the shared list.
_BODY_FIELDS = tuple(name for name in _SPEC.names if name not in PLACE_FIELDS)
_body_key = attrgetter(*_BODY_FIELDS)


class RulePool:
    """Collects the distinct rules of the nodes written so far, in order of first use."""

    def __init__(self) -> None:
        #: The JSON of each distinct rule, without its line and counters.
        self.bodies: list[dict[str, Any]] = []
        self._positions: dict[Any, int] = {}
        # Nodes parsed in one process share rule objects, so a rule's id skips the hashing of equal
        # rules. Every rule stays alive while its snapshot is written, so no id is reused.
        self._by_id: dict[int, int] = {}

    def reference(self, rule: IptablesRule, to_json: Any) -> list[int | None]:
        """Return the JSON reference to ``rule``, adding its body to the list when it is new."""
        position = self._by_id.get(id(rule))
        if position is None:
            key = _body_key(rule)
            position = self._positions.get(key)
            if position is None:
                position = self._positions[key] = len(self.bodies)
                body = to_json(rule)
                for name in PLACE_FIELDS:
                    body.pop(name, None)
                self.bodies.append(body)
            self._by_id[id(rule)] = position
        if rule.packets is None and rule.bytes is None:
            return [position, rule.line]
        return [position, rule.line, rule.packets, rule.bytes]

    def ruleset_json(self, ruleset: IptablesRuleset, to_json: Any) -> dict[str, Any]:
        """Return a ruleset's JSON with references in place of its rules."""
        data: dict[str, Any] = to_json(replace(ruleset, tables=()))
        tables = []
        for table in ruleset.tables:
            entry = to_json(replace(table, rules=()))
            if table.rules:
                entry["rules"] = [self.reference(rule, to_json) for rule in table.rules]
            tables.append(entry)
        if tables:
            data["tables"] = tables
        return data


def has_references(node: Any) -> bool:
    """Tell whether a node's JSON lists a rule as a reference (a JSON list) in any table."""
    if not isinstance(node, dict):
        return False
    for name in RULESET_FIELDS:
        ruleset = node.get(name)
        tables = ruleset.get("tables") if isinstance(ruleset, dict) else None
        for table in tables if isinstance(tables, list) else ():
            rules = table.get("rules") if isinstance(table, dict) else None
            if isinstance(rules, list) and any(isinstance(entry, list) for entry in rules):
                return True
    return False


class RuleReader:
    """Resolves the references of a snapshot's nodes to rules, sharing equal rules between nodes."""

    def __init__(self, bodies: Any, from_json: Any) -> None:
        if not isinstance(bodies, list):
            raise SchemaError(f"$.{POOL_KEY}: expected a list")
        self._bases: list[IptablesRule] = []
        for position, body in enumerate(bodies):
            where = f"$.{POOL_KEY}[{position}]"
            if not isinstance(body, dict):
                raise SchemaError(f"{where}: expected an object")
            for name in PLACE_FIELDS:
                if name in body:
                    raise SchemaError(f"{where}.{name}: invalid field in a shared rule; give the {name} in each "
                                      "reference to the rule")
            self._bases.append(from_json(IptablesRule, {**body, "line": 0}, where))
        self._rules: dict[tuple[int, int], IptablesRule] = {}
        self._from_json = from_json

    def hold(self, node: Any, where: str) -> tuple[Any, list[tuple[str, int, list[Any]]]]:
        """Return the node's JSON without rules in its tables, and those rules' JSON to :meth:`restore`.

        The node's JSON is copied where it changes, so the caller's data stays as it was.
        """
        held_rules: list[tuple[str, int, list[Any]]] = []
        if not isinstance(node, dict):
            return node, held_rules
        copied = None
        for name in RULESET_FIELDS:
            ruleset = node.get(name)
            if not isinstance(ruleset, dict) or not isinstance(ruleset.get("tables"), list):
                continue
            tables = list(ruleset["tables"])
            for number, table in enumerate(tables):
                if isinstance(table, dict) and "rules" in table:
                    held_rules.append((name, number, table["rules"]))
                    tables[number] = {key: value for key, value in table.items() if key != "rules"}
            if copied is None:
                copied = dict(node)
            copied[name] = {**ruleset, "tables": tables}
        return (node if copied is None else copied), held_rules

    def restore(self, node: NodeSnapshot, held_rules: list[tuple[str, int, list[Any]]], where: str) -> NodeSnapshot:
        """Return the node with the rules that :meth:`hold` held back, resolved and checked."""
        changes: dict[str, IptablesRuleset] = {}
        for name, number, entries in held_rules:
            path = f"{where}.{name}.tables[{number}].rules"
            if not isinstance(entries, list):
                raise SchemaError(f"{path}: expected a list")
            rules = self._known(entries)
            for position, rule in enumerate(rules):
                if rule is None:
                    rules[position] = self._rule(entries[position], f"{path}[{position}]")
            ruleset: IptablesRuleset = changes.get(name) or getattr(node, name)
            tables = list(ruleset.tables)
            tables[number] = replace(tables[number], rules=tuple(rules))
            changes[name] = replace(ruleset, tables=tuple(tables))
        return replace(node, **changes) if changes else node

    def _known(self, entries: list[Any]) -> list[Any]:
        """Return the rule of each reference seen before, and None for the others.

        Equal tables of many nodes cost a few passes in C each. Only references
        whose items are all of class int are looked up: True and 1.0 equal 1 as keys.
        """
        try:
            if set(map(len, entries)) == {2} and set(map(type, chain.from_iterable(entries))) == {int}:
                return list(map(self._rules.get, map(tuple, entries)))
        except TypeError:  # an item without a length, or that cannot be iterated; _rule names it
            pass
        return [None] * len(entries)

    def _rule(self, entry: Any, where: str) -> IptablesRule:
        rule: IptablesRule | None
        if entry.__class__ is list and len(entry) == 2:
            position, line = entry
            # Equal references share one rule. The classes are tested first: True and 1.0 equal 1 as keys.
            if position.__class__ is int and line.__class__ is int:
                rule = self._rules.get((position, line))
                if rule is None:
                    rule = self._rules[position, line] = self._resolve(entry, where)
                return rule
        if entry.__class__ is dict:
            rule = self._from_json(IptablesRule, entry, where)
            assert rule is not None
            return rule
        return self._resolve(entry, where)

    def _resolve(self, entry: Any, where: str) -> IptablesRule:
        if entry.__class__ is not list or len(entry) not in (2, 4):
            raise SchemaError(f"{where}: expected a rule object, or a reference [rule, line] or "
                              f"[rule, line, packets, bytes], got {_json_text(entry)}")
        position, line, *counters = entry
        if not self._bases:
            raise SchemaError(f"{where}: a reference to a shared rule, but $.{POOL_KEY} is missing or empty; "
                              "collect the snapshot again (netdoctor collect -o FILE)")
        if position.__class__ is not int or not 0 <= position < len(self._bases):
            raise SchemaError(f"{where}[0]: expected a position in $.{POOL_KEY}, an integer from 0 to "
                              f"{len(self._bases) - 1}, got {_json_text(position)}")
        if line.__class__ is not int or line < 1:
            raise SchemaError(f"{where}[1]: expected a line number, an integer from 1, got {_json_text(line)}")
        for offset, value in enumerate(counters, start=2):
            if value is not None and (value.__class__ is not int or not 0 <= value <= MAX_COUNTER):
                raise SchemaError(f"{where}[{offset}]: expected a counter, an integer from 0 to {MAX_COUNTER}, or "
                                  f"null, got {_json_text(value)}")
        if counters and (counters[0] is None) != (counters[1] is None):
            raise SchemaError(f"{where}: expected packets and bytes both null or both set, got "
                              f"{_json_text(counters)}")
        changes = dict(zip(PLACE_FIELDS, [line, *counters]))
        return replace(self._bases[position], **changes)


def _json_text(value: Any) -> str:
    """Return a JSON value as the file writes it, for an error message. A long number is quoted by its length."""
    if value.__class__ is int:
        return number_text(value)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
