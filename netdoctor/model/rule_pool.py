"""The shared iptables rules and chains of a snapshot's JSON.

kube-proxy and the network plugins write the same rules on every node: a
cluster with 1,000 ClusterIP services has about 4,600 rules and 2,000 chains
on each node. Written out per node, a 1,000-node snapshot of such a cluster
would hold 4.6 million rule objects, and loading it would need about 12 GiB.
The JSON therefore keeps each distinct rule once, in the top-level list
``iptables_rules``, without its line number and counters, and each distinct
chain declaration once, in ``iptables_chains``. A node's table lists the
positions of its chains, and its rules as three parallel parts: the positions
of the rules, their line numbers as runs of consecutive lines, and, when the
capture has counters, the counters. Rules that are equal on every node, at
the same line, load as one shared object, and tables whose chains or rules are
equal on several nodes share one tuple of them.

A rule's line number is not part of the shared entry. One extra rule near the
top of a node's table shifts the line of every rule after it, and those rules
still share their entries. Counters are not part of a rule at all. A loaded
table keeps them beside its rules (``IptablesTable.rule_packets`` and
``rule_bytes``), so nodes captured with ``iptables-save -c`` share rule
objects too.

Earlier schemas wrote a rule as a reference list ``[rule, line]`` (or
``[rule, line, packets, bytes]``) and a chain as an object; the reader accepts
both forms.
"""

from __future__ import annotations

import json
from array import array
from itertools import chain
from operator import attrgetter
from typing import Any

from netdoctor.model.addr import AddressError, check_rule_address
from netdoctor.model.node import (
    IptablesChain,
    IptablesRule,
    IptablesRuleset,
    IptablesTable,
    NodeSnapshot,
)
from netdoctor.model.record import record_spec, replace
from netdoctor.model.table import SchemaError, number_text

#: The top-level key of the shared rules.
POOL_KEY = "iptables_rules"
#: The top-level key of the shared chain declarations.
CHAIN_POOL_KEY = "iptables_chains"
#: The node parts that contain iptables rulesets.
RULESET_FIELDS = ("iptables", "ip6tables")
#: The largest packet or byte counter: the kernel keeps them as 64-bit unsigned integers.
MAX_COUNTER = 2**64 - 1
#: What each reference carries after the rule's position, in order: the rule's line and its counters.
PLACE_FIELDS = ("line", "packets", "bytes")
#: The fields of a loaded table that contain its rules' counters, which no file gives as such.
COUNTER_FIELDS = ("rule_packets", "rule_bytes")
#: The keys of a table's ``rules`` object.
RULES_KEYS = ("rule", "line", "packets", "bytes")
_SPEC = record_spec(IptablesRule)
assert _SPEC is not None
#: Rule fields kept once in the shared list.
_BODY_FIELDS = tuple(name for name in _SPEC.names if name not in PLACE_FIELDS)
_body_key = attrgetter(*_BODY_FIELDS)
#: A table's rule counters as :meth:`RuleReader.restore` sets them: packets and bytes, both empty without counters.
Counters = tuple[tuple[int | None, ...], tuple[int | None, ...]]
_NO_COUNTERS: Counters = ((), ())
_CHAIN_SPEC = record_spec(IptablesChain)
assert _CHAIN_SPEC is not None
_chain_key = attrgetter(*_CHAIN_SPEC.names)


class RulePool:
    """Collects the distinct rules and chains of the nodes written so far, in order of first use."""

    def __init__(self) -> None:
        #: The JSON of each distinct rule, without its line and counters.
        self.bodies: list[dict[str, Any]] = []
        #: The JSON of each distinct chain declaration.
        self.chains: list[dict[str, Any]] = []
        self._positions: dict[Any, int] = {}
        self._chain_positions: dict[Any, int] = {}
        # Nodes parsed in one process share rule objects, so a rule's id skips the hashing of equal
        # rules. Every rule stays alive while its snapshot is written, so no id is reused.
        self._by_id: dict[int, int] = {}

    def position(self, rule: IptablesRule, to_json: Any) -> int:
        """Return the position of ``rule`` in the shared list, adding its body when it is new."""
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
        return position

    def chain_position(self, declared: IptablesChain, to_json: Any) -> int:
        """Return the position of a chain declaration in the shared list, adding it when it is new."""
        key = _chain_key(declared)
        position = self._chain_positions.get(key)
        if position is None:
            position = self._chain_positions[key] = len(self.chains)
            self.chains.append(to_json(declared))
        return position

    def rules_json(self, table: IptablesTable, to_json: Any) -> dict[str, Any]:
        """Return a table's rules as the positions of their shared entries, runs of lines and counters."""
        runs: list[list[int]] = []
        for rule in table.rules:
            if runs and rule.line == runs[-1][0] + runs[-1][1]:
                runs[-1][1] += 1
            else:
                runs.append([rule.line, 1])
        data: dict[str, Any] = {"rule": [self.position(rule, to_json) for rule in table.rules], "line": runs}
        if table.rule_packets:
            data["packets"] = list(table.rule_packets)
            data["bytes"] = list(table.rule_bytes)
        return data

    def ruleset_json(self, ruleset: IptablesRuleset, to_json: Any) -> dict[str, Any]:
        """Return a ruleset's JSON with positions in the shared lists in place of its chains and rules."""
        data: dict[str, Any] = to_json(replace(ruleset, tables=()))
        tables = []
        for table in ruleset.tables:
            entry = to_json(replace(table, chains=(), rules=(), rule_packets=(), rule_bytes=()))
            if table.chains:
                entry["chains"] = [self.chain_position(declared, to_json) for declared in table.chains]
            if table.rules:
                entry["rules"] = self.rules_json(table, to_json)
            tables.append(entry)
        if tables:
            data["tables"] = tables
        return data


def has_references(node: Any, *, shared_chains: bool = False) -> bool:
    """Tell whether a node's JSON refers to shared rules or chains in any table.

    With ``shared_chains``, only the forms that ``netdoctor.snapshot/3`` brought
    count: chain positions and a ``rules`` object.
    """
    if not isinstance(node, dict):
        return False
    for name in RULESET_FIELDS:
        ruleset = node.get(name)
        tables = ruleset.get("tables") if isinstance(ruleset, dict) else None
        for table in tables if isinstance(tables, list) else ():
            if not isinstance(table, dict):
                continue
            rules, chains = table.get("rules"), table.get("chains")
            if isinstance(rules, dict) or (not shared_chains and isinstance(rules, list)
                                           and any(isinstance(entry, list) for entry in rules)):
                return True
            if isinstance(chains, list) and any(entry.__class__ is int for entry in chains):
                return True
    return False


class RuleReader:
    """Resolves the references of a snapshot's nodes to rules and chains, sharing equal ones between nodes.

    ``chain_bodies`` is None for a schema without shared chains: its tables
    declare chains as objects, and its rules are reference lists.
    """

    def __init__(self, bodies: Any, from_json: Any, chain_bodies: Any = None) -> None:
        if not isinstance(bodies, list):
            raise SchemaError(f"$.{POOL_KEY}: expected a list")
        self._bases: list[IptablesRule] = []
        # netdoctor.snapshot/3, the schema with shared chains, gives lines and counters in each table's 'rules'.
        place = "each reference to the rule" if chain_bodies is None else "the 'rules' object of each table"
        for position, body in enumerate(bodies):
            where = f"$.{POOL_KEY}[{position}]"
            if not isinstance(body, dict):
                raise SchemaError(f"{where}: expected an object")
            for name in PLACE_FIELDS:
                if name in body:
                    raise SchemaError(f"{where}.{name}: invalid field in a shared rule; give the {name} in {place}")
            base = from_json(IptablesRule, {**body, "line": 0}, where)
            check_rule_addresses(base, where)
            self._bases.append(base)
        self._shares_chains = chain_bodies is not None
        if self._shares_chains and not isinstance(chain_bodies, list):
            raise SchemaError(f"$.{CHAIN_POOL_KEY}: expected a list")
        self._chains: list[IptablesChain] = []
        for position, body in enumerate(chain_bodies or ()):
            where = f"$.{CHAIN_POOL_KEY}[{position}]"
            declared = from_json(IptablesChain, body, where)
            check_chain_counters(declared, where)
            self._chains.append(declared)
        self._rules: dict[tuple[int, int], IptablesRule] = {}
        #: The rules, or the chains, of tables seen before, by their JSON as a key.
        self._rule_tuples: dict[Any, tuple[IptablesRule, ...]] = {}
        self._chain_tuples: dict[tuple[int, ...], tuple[IptablesChain, ...]] = {}
        self._from_json = from_json

    def hold(self, node: Any, where: str) -> tuple[Any, list[tuple[str, int, str, Any]]]:
        """Return the node's JSON without rules (and shared chains) in its tables, and those parts to :meth:`restore`.

        The node's JSON is copied where it changes, so the caller's data stays as it was.
        """
        held_parts: list[tuple[str, int, str, Any]] = []
        if not isinstance(node, dict):
            return node, held_parts
        fields = ("chains", "rules") if self._shares_chains else ("rules",)
        copied = None
        for name in RULESET_FIELDS:
            ruleset = node.get(name)
            if not isinstance(ruleset, dict) or not isinstance(ruleset.get("tables"), list):
                continue
            tables = list(ruleset["tables"])
            for number, table in enumerate(tables):
                if not isinstance(table, dict):
                    continue
                for key in COUNTER_FIELDS:
                    if key in table:
                        raise SchemaError(f"{where}.{name}.tables[{number}].{key}: unknown field; give the rules' "
                                          "counters as 'packets' and 'bytes' in the table's 'rules'")
                present = [field for field in fields if field in table]
                if present:
                    held_parts.extend((name, number, field, table[field]) for field in present)
                    tables[number] = {key: value for key, value in table.items() if key not in present}
            if copied is None:
                copied = dict(node)
            copied[name] = {**ruleset, "tables": tables}
        return (node if copied is None else copied), held_parts

    def restore(self, node: NodeSnapshot, held_parts: list[tuple[str, int, str, Any]], where: str) -> NodeSnapshot:
        """Return the node with the parts that :meth:`hold` held back, resolved and checked."""
        changes: dict[str, IptablesRuleset] = {}
        for name, number, field, entries in held_parts:
            path = f"{where}.{name}.tables[{number}].{field}"
            ruleset: IptablesRuleset = changes.get(name) or getattr(node, name)
            tables = list(ruleset.tables)
            if field == "chains":
                tables[number] = replace(tables[number], chains=self._chain_list(entries, path))
            else:
                rules, (packets, counted) = self._rule_list(entries, path)
                tables[number] = replace(tables[number], rules=rules, rule_packets=packets, rule_bytes=counted)
            changes[name] = replace(ruleset, tables=tuple(tables))
        return replace(node, **changes) if changes else node

    def _rule_list(self, entries: Any, path: str) -> tuple[tuple[IptablesRule, ...], Counters]:
        """Resolve a table's rules and return them with their counters."""
        if entries.__class__ is dict and self._shares_chains:
            return self._compact_rules(entries, path)
        if not isinstance(entries, list):
            expected = "an object with 'rule' and 'line', or a list" if self._shares_chains else "a list"
            raise SchemaError(f"{path}: expected {expected}")
        rules = self._known(entries)
        packets: list[int | None] = [None] * len(rules)
        counted: list[int | None] = [None] * len(rules)
        for position, rule in enumerate(rules):
            if rule is None:
                rules[position], packets[position], counted[position] = self._rule(entries[position],
                                                                                   f"{path}[{position}]")
        if all(value is None for value in packets):
            return tuple(rules), _NO_COUNTERS
        return tuple(rules), (tuple(packets), tuple(counted))

    def _compact_rules(self, data: dict[str, Any], path: str) -> tuple[tuple[IptablesRule, ...], Counters]:
        """Resolve a table's rules written as positions, runs of lines and optional counters."""
        unknown = set(data) - set(RULES_KEYS)
        if unknown:
            raise SchemaError(f"{path}: unknown field(s) {', '.join(sorted(map(_json_text, unknown)))}; "
                              f"expected {', '.join(RULES_KEYS)}")
        expected = {"rule": "a list of positions in $." + POOL_KEY, "line": "a list of runs [first line, number of lines]"}
        for key, description in expected.items():
            if not isinstance(data.get(key), list):
                problem = "invalid" if key in data else "missing"
                raise SchemaError(f"{path}.{key}: {problem}; expected {description} (netdoctor collect -o FILE "
                                  "writes it)")

        positions: list[Any] = data["rule"]
        runs: list[Any] = data["line"]
        total = 0
        for number, run in enumerate(runs):
            if (run.__class__ is not list or len(run) != 2 or run[0].__class__ is not int
                    or run[1].__class__ is not int or run[0] < 1 or run[1] < 1):
                raise SchemaError(f"{path}.line[{number}]: expected [first line, number of lines], two integers "
                                  f"from 1, got {_json_text(run)}")
            total += run[1]

        if total != len(positions):
            raise SchemaError(f"{path}.line: the runs cover {total} line(s), but 'rule' lists {len(positions)} "
                              "rule(s); give one line per rule")
        counters = self._counters(data, len(positions), path)
        # Only integers make a key: True and 1.0 equal 1 as keys. Equal integers were checked with the key's table.
        integers = set(map(type, positions)) <= {int}
        cache_key = (tuple(positions), tuple(map(tuple, runs))) if integers else None
        found = self._rule_tuples.get(cache_key)
        if found is not None:
            return found, counters
        self._check_positions(positions, f"{path}.rule")

        lines = [line for first, count in runs for line in range(first, first + count)]
        rules: list[IptablesRule] = []
        known = self._rules
        for position, line in zip(positions, lines):
            rule = known.get((position, line))
            if rule is None:
                rule = known[position, line] = replace(self._bases[position], line=line)
            rules.append(rule)
        found = self._rule_tuples[cache_key] = tuple(rules)
        return found, counters

    def _check_positions(self, positions: list[Any], path: str) -> None:
        """Raise for the first item of ``positions`` that is no position in the shared rules."""
        size = len(self._bases)
        # Checking the classes first keeps True and 1.0 out: they compare equal to 1.
        if not positions or (set(map(type, positions)) == {int} and 0 <= min(positions) and max(positions) < size):
            return
        if not size:
            raise SchemaError(f"{path}: positions of shared rules, but $.{POOL_KEY} is missing or empty; "
                              "collect the snapshot again (netdoctor collect -o FILE)")
        for number, position in enumerate(positions):
            if position.__class__ is not int or not 0 <= position < size:
                raise SchemaError(f"{path}[{number}]: expected a position in $.{POOL_KEY}, an integer from 0 to "
                                  f"{size - 1}, got {_json_text(position)}")

    @staticmethod
    def _counters(data: dict[str, Any], count: int, path: str) -> Counters:
        """Return the checked packet and byte counters of a compact rule list, both empty when it has none."""
        if "packets" not in data and "bytes" not in data:
            return _NO_COUNTERS
        columns = []
        plain_columns = 0
        for key in ("packets", "bytes"):
            values = data.get(key)
            if not isinstance(values, list) or len(values) != count:
                raise SchemaError(f"{path}.{key}: expected a list of {count} counter(s), one per rule, as "
                                  "'packets' and 'bytes' come together")
            # A list of integers in range, the usual case, is checked in C: an array of unsigned 64-bit integers
            # takes only integers from 0 to MAX_COUNTER, and the classes keep out True and False. The loop
            # finds the first bad item.
            try:
                plain = not values or (bool(array("Q", values)) and set(map(type, values)) == {int})
            except (TypeError, OverflowError):
                plain = False
            plain_columns += plain
            for number, value in enumerate(() if plain else values):
                if value is not None and (value.__class__ is not int or not 0 <= value <= MAX_COUNTER):
                    raise SchemaError(f"{path}.{key}[{number}]: expected a counter, an integer from 0 to "
                                      f"{MAX_COUNTER}, or null, got {_json_text(value)}")
            columns.append(tuple(values))
        packets, counted = columns
        if plain_columns == 2:
            return packets, counted
        for number, (first, second) in enumerate(zip(packets, counted)):
            if (first is None) != (second is None):
                raise SchemaError(f"{path}: rule {number} has packets {_json_text(first)} and bytes "
                                  f"{_json_text(second)}; expected both null or both set")
        if all(value is None for value in packets):
            return _NO_COUNTERS
        return packets, counted

    def _chain_list(self, entries: Any, path: str) -> tuple[IptablesChain, ...]:
        """Resolve a table's chains: positions in the shared chains, or chain objects."""
        if not isinstance(entries, list):
            raise SchemaError(f"{path}: expected a list")
        size = len(self._chains)
        if entries and set(map(type, entries)) == {int}:
            # Equal integers were checked with the table that made the key.
            key = tuple(entries)
            found = self._chain_tuples.get(key)
            if found is not None:
                return found
            if 0 <= min(entries) and max(entries) < size:
                found = self._chain_tuples[key] = tuple(map(self._chains.__getitem__, entries))
                return found
        chains: list[IptablesChain] = []
        for number, entry in enumerate(entries):
            where = f"{path}[{number}]"
            if entry.__class__ is dict:
                declared = self._from_json(IptablesChain, entry, where)
                check_chain_counters(declared, where)
                chains.append(declared)
            elif entry.__class__ is not int:
                raise SchemaError(f"{where}: expected a chain object or a position in $.{CHAIN_POOL_KEY}, got "
                                  f"{_json_text(entry)}")
            elif not size:
                raise SchemaError(f"{where}: a position of a shared chain, but $.{CHAIN_POOL_KEY} is missing or "
                                  "empty; collect the snapshot again (netdoctor collect -o FILE)")
            elif not 0 <= entry < size:
                raise SchemaError(f"{where}: expected a position in $.{CHAIN_POOL_KEY}, an integer from 0 to "
                                  f"{size - 1}, got {_json_text(entry)}")
            else:
                chains.append(self._chains[entry])
        return tuple(chains)

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

    def _rule(self, entry: Any, where: str) -> tuple[IptablesRule, int | None, int | None]:
        """Return the rule of a reference or a rule object, and its packets and bytes (None when not given)."""
        rule: IptablesRule | None
        if entry.__class__ is dict:
            packets, counted = entry.get("packets"), entry.get("bytes")
            _check_counters(packets, counted, where)
            body = {key: value for key, value in entry.items() if key not in ("packets", "bytes")}
            rule = self._from_json(IptablesRule, body, where)
            assert rule is not None
            check_rule_place(rule, where)
            check_rule_addresses(rule, where)
            return rule, packets, counted
        if entry.__class__ is not list or len(entry) not in (2, 4):
            raise SchemaError(f"{where}: expected a rule object, or a reference [rule, line] or "
                              f"[rule, line, packets, bytes], got {_json_text(entry)}")
        position, line, *counters = entry
        for offset, value in enumerate(counters, start=2):
            if value is not None and (value.__class__ is not int or not 0 <= value <= MAX_COUNTER):
                raise SchemaError(f"{where}[{offset}]: expected a counter, an integer from 0 to {MAX_COUNTER}, or "
                                  f"null, got {_json_text(value)}")
        if counters and (counters[0] is None) != (counters[1] is None):
            raise SchemaError(f"{where}: expected packets and bytes both null or both set, got "
                              f"{_json_text(counters)}")
        packets, counted = counters or (None, None)
        # Equal references share one rule. The classes are tested first: True and 1.0 equal 1 as keys.
        if position.__class__ is int and line.__class__ is int:
            rule = self._rules.get((position, line))
            if rule is None:
                rule = self._rules[position, line] = self._resolve(position, line, where)
            return rule, packets, counted
        return self._resolve(position, line, where), packets, counted

    def _resolve(self, position: Any, line: Any, where: str) -> IptablesRule:
        """Return the shared rule at ``position`` with its line set, raising for an invalid position or line."""
        if not self._bases:
            raise SchemaError(f"{where}: a reference to a shared rule, but $.{POOL_KEY} is missing or empty; "
                              "collect the snapshot again (netdoctor collect -o FILE)")
        if position.__class__ is not int or not 0 <= position < len(self._bases):
            raise SchemaError(f"{where}[0]: expected a position in $.{POOL_KEY}, an integer from 0 to "
                              f"{len(self._bases) - 1}, got {_json_text(position)}")
        if line.__class__ is not int or line < 1:
            raise SchemaError(f"{where}[1]: expected a line number, an integer from 1, got {_json_text(line)}")
        return replace(self._bases[position], line=line)


def check_chain_counters(declared: IptablesChain, where: str) -> None:
    """Raise for chain counters that no capture gives, as the iptables-save parser does."""
    _check_counters(declared.packets, declared.bytes, where)


def _check_counters(packets: Any, count: Any, where: str) -> None:
    """Raise for counters that are not both null or both integers from 0 to :data:`MAX_COUNTER`."""
    for name, value in (("packets", packets), ("bytes", count)):
        if value is not None and (value.__class__ is not int or not 0 <= value <= MAX_COUNTER):
            raise SchemaError(f"{where}.{name}: expected a counter, an integer from 0 to {MAX_COUNTER}, or null, "
                              f"got {_json_text(value)}")
    if (packets is None) != (count is None):
        raise SchemaError(f"{where}: expected packets and bytes both null or both set, got packets "
                          f"{_json_text(packets)} and bytes {_json_text(count)}")


def check_rule_place(rule: IptablesRule, where: str) -> None:
    """Raise for a whole rule object whose line the shared forms would reject.

    The writer turns every rule into a reference, so a rule that loads as an
    object must also load once written.
    """
    if rule.line < 1:
        raise SchemaError(f"{where}.line: expected a line number, an integer from 1, got {number_text(rule.line)}")


def check_rule_addresses(rule: IptablesRule, where: str) -> None:
    """Raise for a ``source`` or ``destination`` that is neither a prefix nor an address with a mask, as the parser does."""
    for name in ("source", "destination"):
        value = getattr(rule, name)
        try:
            if value is not None:
                check_rule_address(value)
        except AddressError as error:
            raise SchemaError(f"{where}.{name}: {error}") from None


def _json_text(value: Any) -> str:
    """Return a JSON value as the file writes it, for an error message. A long number is quoted by its length."""
    if value.__class__ is int:
        return number_text(value)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
