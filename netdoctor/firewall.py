"""Walk iptables chains for one described packet and return the verdict.

The evaluator follows ``iptables-save`` rules in order: jumps into user chains,
``RETURN``, ``-g`` gotos and the built-in chain's policy. It understands the
common conditions (``-p``, ``-s``/``-d`` with negation, ``-i``/``-o`` with ``+``,
``-f``) and the match modules ``tcp``, ``udp``, ``icmp``, ``multiport``,
``state``, ``conntrack``, ``addrtype``, ``comment``, ``mark`` and ``physdev``.
A rule whose other conditions all hold but which uses any other match module
gives the verdict ``UNKNOWN`` with that rule, instead of a guess. Rules that
only log or count (``-j LOG``, ``-j NFLOG``, no target) cannot change a
verdict, so walks pass over them without testing their conditions.

Connection tracking state comes from the packet's ``ctstate`` field: ``NEW`` unless
the caller describes a reply or an ICMP error (``RELATED``). The packet mark
starts at the packet's ``mark`` (0 for a packet that nothing marked yet), and a
``-j MARK`` rule on the way changes it for the rules after it, as the kernel
does for kube-proxy's ``KUBE-MARK-MASQ`` and ``KUBE-MARK-DROP``.

The nat table is walked the same way: ``MASQUERADE``, ``SNAT``, ``DNAT``,
``REDIRECT`` and ``NETMAP`` end the walk with that target as the verdict, and a
built-in nat chain that ends without one gives ``ACCEPT`` (no translation).

:func:`evaluate` walks one packet. To walk many packets through one ruleset,
build a :class:`CompiledRuleset` once: it parses each rule's conditions once.
It also reports which packet fields a chain's rules can test
(:meth:`CompiledRuleset.reads_any`), so a caller can walk one packet for many
that differ only in fields no rule tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from operator import attrgetter
from typing import Any

from netdoctor.log import get_logger
from netdoctor.model import IptablesMatch, IptablesRule, IptablesRuleset, IptablesTable
from netdoctor.model.addr import AddressError, masked_address, parse_ip, parse_prefix, width
from netdoctor.model.record import field, record, record_spec, replace
from netdoctor.model.table import decimal_value

logger = get_logger(__name__)

#: IP protocol numbers of the names ``iptables -p`` accepts, as in netbase's ``/etc/protocols``.
#: ``ipip`` is protocol 94 there; the IP-in-IP that Calico's tunl0 uses is 4, ``ipencap``.
PROTOCOLS = {
    "all": 0, "icmp": 1, "igmp": 2, "ipencap": 4, "ipip": 94, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
    "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "udplite": 136,
}

#: ICMP type names ``--icmp-type`` accepts, as ``(type, code)``. A code of None matches any code.
ICMP_TYPES: dict[str, tuple[int, int | None]] = {
    "any": (-1, None), "echo-reply": (0, None), "pong": (0, None), "destination-unreachable": (3, None),
    "network-unreachable": (3, 0), "host-unreachable": (3, 1), "protocol-unreachable": (3, 2),
    "port-unreachable": (3, 3), "fragmentation-needed": (3, 4), "source-route-failed": (3, 5),
    "network-prohibited": (3, 9), "host-prohibited": (3, 10), "communication-prohibited": (3, 13),
    "source-quench": (4, None), "redirect": (5, None), "echo-request": (8, None), "ping": (8, None),
    "router-advertisement": (9, None), "router-solicitation": (10, None), "time-exceeded": (11, None),
    "ttl-exceeded": (11, None), "ttl-zero-during-transit": (11, 0), "parameter-problem": (12, None),
    "timestamp-request": (13, None), "timestamp-reply": (14, None),
}

#: Targets that end the walk with that verdict.
TERMINAL_TARGETS = frozenset({"ACCEPT", "DROP", "REJECT"})

#: nat table targets that translate the packet and end the walk with that verdict.
NAT_TARGETS = frozenset({"MASQUERADE", "SNAT", "DNAT", "REDIRECT", "NETMAP"})

#: Targets that act on the packet and let it continue to the next rule.
CONTINUING_TARGETS = frozenset({"LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "CT", "NOTRACK", "TRACE", "AUDIT", "CLASSIFY", "TCPMSS"})

#: Continuing targets that change nothing a walk reads, so whether their rule matches cannot change a verdict:
#: walks pass over these rules without testing them, even when a match is one the evaluator cannot decide.
_NEUTRAL_TARGETS = frozenset({"", "LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "CLASSIFY", "TCPMSS"})

#: Match modules this evaluator reads.
_KNOWN_MODULES = frozenset(
    {"tcp", "udp", "icmp", "multiport", "state", "conntrack", "addrtype", "comment", "mark", "physdev"}
)

#: The :class:`Packet` fields that the tests of each known match module can read, whatever its options.
#: A match with any other module reads no field, because it is undecidable for every packet.
_MODULE_FIELDS: dict[str, frozenset[str]] = {
    "tcp": frozenset({"sport", "dport", "ctstate"}),
    "udp": frozenset({"sport", "dport", "ctstate"}),
    "multiport": frozenset({"sport", "dport"}),
    "icmp": frozenset({"icmp_type", "icmp_code"}),
    "state": frozenset({"ctstate"}),
    "conntrack": frozenset({"ctstate"}),
    "addrtype": frozenset({"src", "dst", "local_addresses"}),
    "comment": frozenset(),
    "mark": frozenset({"mark"}),
    "physdev": frozenset({"physdev_in", "physdev_out"}),
}

#: Chains one walk may nest through ``-j`` jumps, counting the chain it starts in. Chains that jump to each other
#: with ``-j`` reach this limit.
_MAX_DEPTH = 64
#: Jumps and gotos one walk may take. The kernel rejects rulesets whose chains loop, so only a
#: capture edited by hand reaches this, through chains that go to each other with ``-g``.
_MAX_JUMPS = 100_000


@record(frozen=False)
class Packet:
    """The packet to evaluate. Addresses are text, and a ``None`` field matches no condition on it.

    Packets are mutable, and so unhashable, because the checks build many of
    them and a frozen record's ``__init__`` costs about four times as much
    (2.0 against 0.5 us for these 14 fields, CPython 3.11 on a 2-vCPU VM).
    The evaluator never changes a packet it is given.
    """

    protocol: str
    src: str
    dst: str
    in_interface: str | None = None
    out_interface: str | None = None
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    #: Connection tracking state as ``-m state``/``-m conntrack`` see it.
    ctstate: str = "NEW"
    #: Addresses the node owns, for ``-m addrtype --dst-type LOCAL``.
    local_addresses: frozenset[str] = field(default_factory=frozenset)
    #: The packet mark (``skb->mark``) when the walk starts.
    mark: int = 0
    #: Bridge ports the packet entered and leaves by, for ``-m physdev``; None when not bridged.
    physdev_in: str | None = None
    physdev_out: str | None = None

    def describe(self) -> str:
        """Render the packet for messages: ``icmp 192.0.2.1 -> 192.0.2.2 type 8 in eth0``."""
        parts = [self.protocol, f"{self.src} -> {self.dst}"]
        if self.dport is not None:
            parts.append(f"dport {self.dport}")
        if self.icmp_type is not None:
            parts.append(f"type {self.icmp_type}" + (f"/{self.icmp_code}" if self.icmp_code is not None else ""))
        if self.in_interface:
            parts.append(f"in {self.in_interface}")
        if self.out_interface:
            parts.append(f"out {self.out_interface}")
        return " ".join(parts)


def _packet_fields() -> frozenset[str]:
    spec = record_spec(Packet)
    assert spec is not None
    return frozenset(spec.names)


#: The names of the :class:`Packet` fields.
PACKET_FIELDS = _packet_fields()


@record
class Verdict:
    """The outcome of a walk: ``ACCEPT``, ``DROP``, ``REJECT`` or ``UNKNOWN``."""

    verdict: str
    #: The rule that decided, or None when a chain policy decided.
    rule: IptablesRule | None
    #: The chain whose rule or policy decided.
    chain: str
    #: Why: ``policy DROP``, the rule text, or the condition that could not be evaluated.
    reason: str

    @property
    def blocks(self) -> bool:
        """Whether the packet is dropped or rejected."""
        return self.verdict in ("DROP", "REJECT")


class _Unknown(Exception):
    """A rule condition the evaluator cannot decide."""


#: A test of one ``-p``, ``-s``, ``-d``, ``-i`` or ``-o`` condition: returns True when the packet matches it.
_Test = Callable[[Packet], bool]
#: A test of one ``-m`` match or match option: returns None when the evaluator cannot decide it.
_MatchTest = Callable[[Packet], "bool | None"]


def evaluate(ruleset: IptablesRuleset, chain: str, packet: Packet, table: str = "filter") -> Verdict:
    """Walk a built-in chain of one table for ``packet`` and return the verdict.

    A missing table or chain means no rules: the packet is accepted. To walk
    many packets through one ruleset, build a :class:`CompiledRuleset` once and
    call its ``evaluate``.
    """
    return CompiledRuleset(ruleset).evaluate(chain, packet, table)


class CompiledRuleset:
    """An iptables ruleset prepared for many walks, with the same verdicts as :func:`evaluate`.

    Each table's rules are grouped by chain on the table's first walk. A rule's
    conditions are parsed into tests the first time a walk reaches the rule,
    so a walk that ends early in a long chain parses only the rules before its
    verdict.

    Rulesets built with one ``shared`` dictionary share the compiled form of
    equal tables, so kube-proxy's rules are compiled once for the cluster
    instead of once per node. Tables are equal when their chains have the same
    names and policies and their rules come from the same parsed rules at the
    same lines, whatever their counters (:func:`_sharing_key`). A verdict then
    names the rule of this ruleset's own table.
    """

    __slots__ = ("_fixed", "_own_rules", "_ruleset", "_shared", "_tables")

    def __init__(self, ruleset: IptablesRuleset, shared: dict[Any, Any] | None = None) -> None:
        self._ruleset = ruleset
        self._shared = shared
        self._tables: dict[str, _CompiledTable | None] = {}
        #: Table name -> this ruleset's rules, for a table compiled from another ruleset's equal table.
        self._own_rules: dict[str, tuple[IptablesRule, ...]] = {}
        #: ``(table, chain)`` -> the result of :meth:`fixed_verdict`.
        self._fixed: dict[tuple[str, str], Verdict | None] = {}

    def has_table(self, table: str) -> bool:
        """Tell whether the ruleset has ``table``."""
        return self._table(table) is not None

    def evaluate(self, chain: str, packet: Packet, table: str = "filter") -> Verdict:
        """Walk a built-in chain of one table for ``packet`` and return the verdict."""
        compiled = self._table(table)
        if compiled is None:
            return Verdict("ACCEPT", None, chain, f"no {table} table")
        verdict = compiled.walk(chain, packet)
        own = self._own_rules.get(table)
        if own is not None and verdict.rule is not None:
            verdict = compiled.own_verdict(verdict, own)
        return verdict

    def fixed_verdict(self, chain: str, table: str = "filter") -> Verdict | None:
        """Return the verdict that every packet gets from ``chain``, or None when it depends on the packet."""
        key = (table, chain)
        if key not in self._fixed:
            verdict = None
            if not self.reads_any(chain, PACKET_FIELDS, table):
                # No reachable rule reads the packet, so every packet gets the verdict of this one.
                verdict = self.evaluate(chain, Packet("", "", ""), table)
            self._fixed[key] = verdict
        return self._fixed[key]

    def reads_any(self, chain: str, fields: frozenset[str], table: str = "filter") -> bool:
        """Tell whether a rule that a walk of ``chain`` can reach tests any of the :class:`Packet` ``fields``.

        When it returns False, packets that differ only in those fields get
        the same verdict, so a caller can walk one of them for all. The result
        is conservative: a reachable rule counts even when no walk gets to it.
        """
        compiled = self._table(table)
        return compiled is not None and compiled.reads_any(chain, fields)

    def tested_prefixes(self, chain: str, field_name: str, table: str = "filter") -> set[str] | None:
        """Return the prefixes that rules a walk of ``chain`` can reach compare the packet's ``src`` or ``dst`` with.

        Returns None when a match module (``addrtype``) reads that field too,
        because the prefixes then do not decide every test of it.
        """
        compiled = self._table(table)
        if compiled is None:
            return set()
        prefixes: set[str] = set()
        for rule in compiled.reachable_rules(chain):
            if compiled.passes_over(rule):
                continue
            prefix = rule.source if field_name == "src" else rule.destination
            if prefix:
                prefixes.add(prefix)
            if any(field_name in _MODULE_FIELDS.get(match.module, ()) for match in rule.matches):
                return None
        return prefixes

    def _table(self, table: str) -> _CompiledTable | None:
        try:
            return self._tables[table]
        except KeyError:
            found = self._ruleset.table(table)
            shared = self._shared
            compiled = None
            if found is not None and shared is None:
                compiled = _CompiledTable(found)
            elif found is not None and shared is not None:
                compiled = self._shared_table(found, shared)
            self._tables[table] = compiled
            return compiled

    def _shared_table(self, found: IptablesTable, shared: dict[Any, Any]) -> _CompiledTable:
        # Nodes whose tables are the same tuples find their entry without a content key. Each entry keeps alive
        # the table it was compiled from, and the list under the key None keeps the tables that share it, so the
        # ids in the keys stay unique while the dictionary lives.
        same = ("same", found.name, id(found.chains), id(found.rules))
        entry = shared.get(same)
        if entry is None:
            # Nodes captured with counters have equal rules in one tuple, but chains of their own: the built-in
            # chains' counters differ. Their chains' names and policies are compared instead.
            same_rules = ("same rules", found.name, id(found.rules), tuple(map(_chain_policy, found.chains)))
            entry = shared.get(same_rules)
            if entry is not None:
                shared.setdefault(None, []).append(found)
                shared[same] = entry
        if entry is None:
            key = _sharing_key(found)
            entry = shared.get(key) if key is not None else None
            if entry is None:
                entry = (found, _CompiledTable(found))
                # A verdict is mapped to another node's rule by the position of its rule object. In a table with
                # one rule object at two positions that is ambiguous, so such a table is compiled for its nodes alone.
                if key is not None and len(set(map(id, found.rules))) == len(found.rules):
                    shared[key] = entry
            else:
                shared.setdefault(None, []).append(found)
            shared[same] = shared[same_rules] = entry
        origin, compiled = entry
        if origin.rules is not found.rules:
            self._own_rules[found.name] = found.rules
        return compiled


_rule_text = attrgetter("text")
_rule_line = attrgetter("line")
_chain_policy = attrgetter("name", "policy")


def _sharing_key(table: IptablesTable) -> tuple[Any, ...] | None:
    """Return a key that equal tables share whatever their counters, or None when the table is compiled alone.

    Rules made from one shared rule of a snapshot, or from one parsed line,
    keep its text object, so rules with the same text object at the same line
    are equal even when they are distinct objects. Texts of fewer than two
    characters can be objects that the interpreter shares between unrelated
    strings, so a table with such a rule gets no key.
    """
    texts = tuple(map(_rule_text, table.rules))
    if texts and min(map(len, texts)) < 2:
        return None
    return (table.name, tuple(map(_chain_policy, table.chains)), tuple(map(id, texts)),
            tuple(map(_rule_line, table.rules)))


# Effects of a matching rule on the walk, derived from its target once per rule.
_END, _RETURN, _MARK, _JUMP, _CONTINUE, _UNKNOWN_TARGET = range(6)


class _CompiledTable:
    """One table's rules grouped by chain, compiled as walks reach them.

    A walk's verdict depends only on the packet fields that the rules it can
    reach read, so verdicts are kept by chain and those fields' values. Nodes
    that share this table then walk each distinct packet once between them.
    """

    __slots__ = ("_chains", "_compiled", "_policies", "_positions", "_read_fields", "_reads", "_rules", "_table",
                 "_verdicts")

    def __init__(self, table: IptablesTable) -> None:
        self._table = table
        rules_by_chain: dict[str, list[IptablesRule]] = {}
        for rule in table.rules:
            rules_by_chain.setdefault(rule.chain, []).append(rule)
        self._rules = rules_by_chain
        #: Chains a rule can jump to: those with rules and those the table declares.
        self._chains = set(rules_by_chain).union(chain.name for chain in table.chains)
        #: Chain -> its compiled rules; None marks a rule no walk has reached yet.
        self._compiled: dict[str, list[_CompiledRule | None]] = {}
        #: Built-in chain -> the verdict of its policy.
        self._policies: dict[str, Verdict] = {}
        #: ``(chain, fields)`` -> the result of :meth:`reads_any`.
        self._reads: dict[tuple[str, frozenset[str]], bool] = {}
        #: Chain -> a getter of the packet fields that the rules a walk of it can reach read.
        self._read_fields: dict[str, Callable[[Packet], Any]] = {}
        #: ``(chain, values of those fields)`` -> the verdict.
        self._verdicts: dict[tuple[str, Any], Verdict] = {}
        #: Id of each rule of the table -> its position, built when another table's verdicts first need it.
        self._positions: dict[int, int] | None = None

    def own_verdict(self, verdict: Verdict, rules: tuple[IptablesRule, ...]) -> Verdict:
        """Return ``verdict`` naming the rule at the same position of ``rules``, an equal table of another node."""
        positions = self._positions
        if positions is None:
            positions = self._positions = {id(rule): position for position, rule in enumerate(self._table.rules)}
        assert verdict.rule is not None
        own = rules[positions[id(verdict.rule)]]
        return verdict if own is verdict.rule else replace(verdict, rule=own)

    def walk(self, chain: str, packet: Packet) -> Verdict:
        """Walk ``chain`` for ``packet``: jumps, ``RETURN``, ``-g`` gotos, ``MARK`` and the chain's policy."""
        read = self._read_fields.get(chain)
        if read is None:
            fields = set().union(*(_fields_read(rule) for rule in self.reachable_rules(chain)
                                   if not self.passes_over(rule)))
            read = self._read_fields[chain] = attrgetter(*sorted(fields)) if fields else _no_fields
        key = (chain, read(packet))
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self._walk(chain, packet)
        return verdict

    def _walk(self, chain: str, packet: Packet) -> Verdict:
        if chain not in self._rules:
            return self._policies.get(chain) or self._policy(chain)
        # Each stack entry is (chain, index of the next rule to evaluate).
        stack: list[tuple[str, int]] = [(chain, 0)]
        jumps = 0
        while stack:
            current, position = stack.pop()
            compiled = self._compiled.get(current)
            if compiled is None:
                compiled = self._compiled[current] = [None] * len(self._rules.get(current, ()))
            count = len(compiled)
            while position < count:
                entry = compiled[position]
                if entry is None:
                    entry = compiled[position] = _CompiledRule(self._rules[current][position], self._chains)
                position += 1
                if not entry.always:
                    if entry.passed:
                        continue
                    try:
                        if not entry.matches(packet):
                            continue
                    except _Unknown as error:
                        return Verdict("UNKNOWN", entry.rule, current, f"unknown match: {error}")
                action = entry.action
                if action == _CONTINUE:
                    continue
                if action == _END:
                    return entry.end_verdict()
                if action == _RETURN:
                    break
                if action == _JUMP:
                    # A -g goto does not grow the stack, so chains that go to each other are caught by the count.
                    jumps += 1
                    if jumps > _MAX_JUMPS:
                        return Verdict("UNKNOWN", entry.rule, current,
                                       f"the walk took more than {_MAX_JUMPS} jumps: the chains loop")
                    if not entry.rule.goto:
                        # The jump pushes its return point and the chain it enters.
                        if len(stack) + 2 > _MAX_DEPTH:
                            return Verdict("UNKNOWN", entry.rule, current,
                                           f"chain jumps nest deeper than {_MAX_DEPTH}: the chains may loop")
                        stack.append((current, position))
                    stack.append((entry.target, 0))
                    break
                if action == _MARK:
                    try:
                        packet = replace(packet, mark=_set_mark(packet.mark, entry.rule))
                    except _Unknown as error:
                        return Verdict("UNKNOWN", entry.rule, current, f"unknown MARK option: {error}")
                    continue
                return Verdict("UNKNOWN", entry.rule, current, f"unknown target {entry.target or repr('')}")
        # The built-in chain ended, returned, or a chain it went to with -g ended.
        return self._policies.get(chain) or self._policy(chain)

    def reads_any(self, chain: str, fields: frozenset[str]) -> bool:
        """Tell whether a rule of ``chain``, or of a chain it can jump or go to, tests any of ``fields``."""
        key = (chain, fields)
        found = self._reads.get(key)
        if found is None:
            found = self._reads[key] = self._search_reads(chain, fields)
        return found

    def _search_reads(self, chain: str, fields: frozenset[str]) -> bool:
        return any(not fields.isdisjoint(_fields_read(rule)) for rule in self.reachable_rules(chain)
                   if not self.passes_over(rule))

    def passes_over(self, rule: IptablesRule) -> bool:
        """Tell whether walks pass over ``rule`` whatever the packet: it only logs or counts.

        This is the test of :class:`_CompiledRule` ``passed`` for the rule's target. A target such as
        ``LOG`` is a jump when the table declares a chain of that name, and an empty target is unknown.
        """
        return (_classify_target(rule.target, self._chains) == _CONTINUE
                and (rule.target or "") in _NEUTRAL_TARGETS)

    def reachable_rules(self, chain: str) -> Iterator[IptablesRule]:
        """Yield the rules of ``chain`` and of every chain it can jump or go to, each chain once."""
        pending = [chain]
        seen = {chain}
        while pending:
            for rule in self._rules.get(pending.pop(), ()):
                yield rule
                target = rule.target
                if target is not None and target in self._chains and target not in seen:
                    seen.add(target)
                    pending.append(target)

    def _policy(self, chain: str) -> Verdict:
        verdict = self._policies.get(chain)
        if verdict is None:
            declared = self._table.chain(chain)
            policy = declared.policy if declared is not None and declared.policy not in (None, "-") else "ACCEPT"
            verdict = self._policies[chain] = Verdict(policy, None, chain, f"policy {policy}")
        return verdict


class _CompiledRule:
    """One rule with its conditions parsed: tests of the fields it names, then its ``-m`` matches in order."""

    __slots__ = ("action", "always", "match_tests", "never", "passed", "rule", "target", "tests", "verdict")

    def __init__(self, rule: IptablesRule, chains: set[str] | None = None) -> None:
        self.rule = rule
        tests = _compile_conditions(rule)
        match_tests: list[tuple[str, _MatchTest | None]] = []
        for match in rule.matches:
            if tests is None:
                break
            test = _compile_match(match)
            if test is False:
                # A match that is never true makes the rule fail, whatever the other matches return.
                tests = None
            elif test is not True:
                match_tests.append((match.module, test))
        #: True when the rule matches no packet, so walks skip it.
        self.never = tests is None
        self.tests: tuple[_Test, ...] = tuple(tests or ())
        #: ``(module, test)`` per match that depends on the packet. A test of None marks a match the
        #: evaluator cannot decide.
        self.match_tests = tuple(match_tests)
        #: The ``-j`` target or ``-g`` chain; empty for a rule without one.
        self.target = rule.target or ""
        self.action = _classify_target(rule.target, chains or set())
        #: True when walks pass over the rule: it matches no packet, or it only logs or counts.
        self.passed = self.never or (self.action == _CONTINUE and self.target in _NEUTRAL_TARGETS)
        #: True when the rule matches every packet, so walks need not call :meth:`matches`.
        self.always = not self.passed and not self.tests and not self.match_tests
        #: The verdict of a rule whose target ends the walk, made when a walk first ends there.
        self.verdict: Verdict | None = None

    def end_verdict(self) -> Verdict:
        """Return the verdict of a matching rule whose target ends the walk."""
        if self.verdict is None:
            self.verdict = Verdict(self.target, self.rule, self.rule.chain, self.rule.text)
        return self.verdict

    def matches(self, packet: Packet) -> bool:
        """Tell whether the rule matches the packet; raise ``_Unknown`` when an undecidable condition remains."""
        if self.never:
            return False
        for test in self.tests:
            if not test(packet):
                return False
        unknown: list[str] | None = None
        for module, match_test in self.match_tests:
            result = match_test(packet) if match_test is not None else None
            if result is None:
                if unknown is None:
                    unknown = []
                unknown.append(module)
            elif not result:
                return False
        if unknown:
            raise _Unknown(", ".join(f"-m {module}" for module in unknown))
        return True


def _classify_target(target: str | None, chains: set[str]) -> int:
    """Return the effect on the walk of a matching rule with this target."""
    if target is None:
        return _CONTINUE
    if target in TERMINAL_TARGETS or target in NAT_TARGETS:
        return _END
    if target == "RETURN":
        return _RETURN
    if target == "MARK":
        return _MARK
    if target in chains:
        return _JUMP
    if target in CONTINUING_TARGETS:
        return _CONTINUE
    return _UNKNOWN_TARGET


def _no_fields(packet: Packet) -> tuple[()]:
    return ()


def _fields_read(rule: IptablesRule) -> set[str]:
    """Return the :class:`Packet` fields that the rule's conditions can read.

    A ``-j MARK`` target changes the mark without reading it, so only a
    ``-m mark`` match makes the mark count. Callers leave out the rules that
    walks pass over (:meth:`_CompiledTable.passes_over`).
    """
    fields: set[str] = set()
    if rule.protocol:
        fields.add("protocol")
    if rule.source:
        fields.add("src")
    if rule.destination:
        fields.add("dst")
    if rule.in_interface:
        fields.add("in_interface")
    if rule.out_interface:
        fields.add("out_interface")
    for match in rule.matches:
        fields.update(_MODULE_FIELDS.get(match.module, ()))
    return fields


def _set_mark(mark: int, rule: IptablesRule) -> int:
    """Return the packet mark after a ``-j MARK`` rule, as the xt_MARK target computes it."""
    for option in rule.target_options:
        name = option.name.lstrip("-")
        text = option.values[0] if option.values else ""
        value, mask = _mark_value(text, 0xFFFFFFFF)
        if name == "set-xmark":
            return (mark & ~mask & 0xFFFFFFFF) ^ value
        if name == "set-mark":
            return (mark & ~mask & 0xFFFFFFFF) | value
        if name == "and-mark":
            return mark & value
        if name == "or-mark":
            return mark | value
        if name == "xor-mark":
            return mark ^ value
    raise _Unknown(" ".join(option.name for option in rule.target_options) or "no option")


def _mark_value(text: str, default_mask: int) -> tuple[int, int]:
    """Parse ``VALUE[/MASK]`` (decimal or ``0x`` hexadecimal)."""
    value_text, _, mask_text = text.partition("/")
    try:
        return int(value_text, 0), int(mask_text, 0) if mask_text else default_mask
    except ValueError:
        raise _Unknown(f"invalid mark {text!r}") from None


def rule_matches(rule: IptablesRule, packet: Packet) -> bool:
    """Tell whether a rule matches the packet; raise ``_Unknown`` when an undecidable condition remains."""
    return _CompiledRule(rule).matches(packet)


def _compile_conditions(rule: IptablesRule) -> list[_Test] | None:
    """Return tests for the rule's ``-p``, ``-s``, ``-d``, ``-i``, ``-o`` and ``-f``, or None when no packet matches them.

    A condition whose result does not depend on the packet (``-p all``, an
    address that does not parse) gets no test, or makes the result None.
    """
    if rule.fragment is True:
        return None
    tests: list[_Test] = []
    if rule.protocol:
        expected = _protocol_number(rule.protocol)
        if expected == 0 or expected is None:
            # Protocol 0 matches every packet, and an unknown name matches none.
            if (expected == 0) == rule.protocol_negated:
                return None
        else:
            tests.append(_protocol_test(expected, rule.protocol_negated))
    if rule.source:
        test = _address_test("src", rule.source, rule.source_negated)
        if test is None:
            return None
        if not isinstance(test, bool):
            tests.append(test)
    if rule.destination:
        test = _address_test("dst", rule.destination, rule.destination_negated)
        if test is None:
            return None
        if not isinstance(test, bool):
            tests.append(test)
    if rule.in_interface:
        tests.append(_interface_test("in_interface", rule.in_interface, rule.in_interface_negated))
    if rule.out_interface:
        tests.append(_interface_test("out_interface", rule.out_interface, rule.out_interface_negated))
    return tests


@lru_cache(maxsize=256)
def _protocol_number(text: str) -> int | None:
    text = text.lower()
    number = decimal_value(text)
    return PROTOCOLS.get(text) if number is None else number


@lru_cache(maxsize=16384)
def _parse_address(text: str) -> tuple[int, int] | None:
    """Return ``(family, value)`` of a packet address, or None when it does not parse."""
    try:
        return parse_ip(text)
    except AddressError:
        return None


# The test builders below are cached by their arguments. Nodes of a cluster usually carry the same
# rules, and a test is a pure function of the packet, so one test serves every rule with that condition.


@lru_cache(maxsize=1024)
def _protocol_test(expected: int, negated: bool) -> _Test:
    def test(packet: Packet) -> bool:
        return (_protocol_number(packet.protocol) == expected) != negated

    return test


@lru_cache(maxsize=4096)
def _address_test(name: str, prefix: str, negated: bool) -> _Test | bool | None:
    """Return a test of whether the packet's ``src`` or ``dst`` lies inside ``prefix`` (host bits ignored).

    A prefix that does not parse contains no address, so the condition gives
    None (no packet matches) or, negated, True (every packet matches).
    """
    read = attrgetter(name)
    masked = masked_address(prefix)
    if masked is not None:
        family, expected, mask = masked

        def test_masked(packet: Packet) -> bool:
            address = _parse_address(read(packet))
            return (address is not None and address[0] == family and address[1] & mask == expected) != negated

        return test_masked
    try:
        family, net, length = parse_prefix(prefix)
    except AddressError:
        return True if negated else None
    shift = width(family) - length
    network = net >> shift

    def test(packet: Packet) -> bool:
        address = _parse_address(read(packet))
        return (address is not None and address[0] == family and address[1] >> shift == network) != negated

    return test


@lru_cache(maxsize=4096)
def _interface_test(name: str, pattern: str, negated: bool = False) -> _Test:
    """Test an interface field of the packet against ``eth0`` or ``cali+``; a field of None matches neither."""
    read = attrgetter(name)
    if pattern.endswith("+"):
        start = pattern[:-1]

        def test_prefix(packet: Packet) -> bool:
            interface = read(packet)
            return (interface is not None and interface.startswith(start)) != negated

        return test_prefix

    def test_name(packet: Packet) -> bool:
        return (read(packet) == pattern) != negated

    return test_name


def _compile_match(match: IptablesMatch) -> _MatchTest | bool | None:
    """Return a test for one ``-m`` match, or its result (True, False or None) when it does not depend on the packet.

    The packet matches when it matches every option. An option that cannot be
    decided makes the whole match undecidable (None), even after an option
    that the packet does not match.
    """
    if match.module not in _KNOWN_MODULES:
        return None
    fixed = True
    tests: list[_MatchTest] = []
    for option in match.options:
        test = _compile_option(match.module, option.name, option.values, option.negated)
        if test is None:
            return None
        if test is True or test is False:
            fixed = fixed and test
        else:
            tests.append(test)
    if not tests:
        return fixed
    if fixed and len(tests) == 1:
        return tests[0]
    options = tuple(tests)

    def test_all(packet: Packet) -> bool | None:
        result = fixed
        for option_test in options:
            value = option_test(packet)
            if value is None:
                return None
            result = result and value
        return result

    return test_all


@lru_cache(maxsize=4096)
def _compile_option(module: str, name: str, values: tuple[str, ...], negated: bool) -> _MatchTest | bool | None:
    """Return a test for one option (``--dport``, ``! --ctstate``), its fixed result, or None when it cannot be decided."""
    test = _option_test(module, name.lstrip("-"), values)
    if not negated or test is None:
        return test
    if test is True or test is False:
        return not test
    return _negate(test)


def _negate(test: _MatchTest) -> _MatchTest:
    def negated(packet: Packet) -> bool | None:
        value = test(packet)
        return None if value is None else not value

    return negated


def _option_test(module: str, name: str, values: tuple[str, ...]) -> _MatchTest | bool | None:
    """Return a test for one option of a known match module, its fixed result, or None when it cannot be decided."""
    if module == "comment":
        return True
    if module in ("tcp", "udp"):
        if name in ("dport", "destination-port"):
            return _port_test(values, "dport")
        if name in ("sport", "source-port"):
            return _port_test(values, "sport")
        if name == "syn":
            return _is_new
        return None
    if module == "multiport":
        if name in ("dports", "destination-ports"):
            return _port_test(values, "dport")
        if name in ("sports", "source-ports"):
            return _port_test(values, "sport")
        if name == "ports":
            return _port_test(values, "dport", "sport")
        return None
    if module == "icmp" and name == "icmp-type":
        return _icmp_test(values[0] if values else "any")
    if module in ("state", "conntrack") and name in ("state", "ctstate"):
        states = frozenset(state for value in values for state in value.split(","))
        return lambda packet: packet.ctstate in states
    if module == "mark" and name == "mark":
        try:
            mark, mask = _mark_value(values[0] if values else "", 0xFFFFFFFF)
        except _Unknown:
            return None
        return lambda packet: packet.mark & mask == mark
    if module == "physdev":
        return _physdev_test(name, values)
    if module == "addrtype" and name in ("dst-type", "src-type"):
        types = {item for value in values for item in value.split(",")}
        if not types <= {"LOCAL"}:
            return None
        read = attrgetter("dst" if name == "dst-type" else "src")
        return lambda packet: read(packet) in packet.local_addresses
    return None


def _is_new(packet: Packet) -> bool:
    return packet.ctstate == "NEW"


def _port_ranges(values: Iterable[str]) -> list[tuple[int, int | None] | None]:
    """Parse ``--dport``/``--dports`` values into ``(low, high)`` ranges, in order.

    A range whose high end does not parse has a high of None. A range whose low
    end does not parse is None, and nothing after it is read, because
    :func:`_ports_contain` returns False when it reaches that range.
    """
    ranges: list[tuple[int, int | None] | None] = []
    for value in values:
        for item in value.split(","):
            low_text, _, high_text = item.partition(":")
            try:
                low = int(low_text or 0)
            except ValueError:
                ranges.append(None)
                return ranges
            try:
                high: int | None = int(high_text or low_text or 65535)
            except ValueError:
                high = None
            ranges.append((low, high))
    return ranges


def _ports_contain(ranges: list[tuple[int, int | None] | None], port: int | None) -> bool:
    """Tell whether ``port`` lies in one of the ranges, read in order.

    A range that does not parse ends the search with False when it is reached.
    A high end that does not parse does so when the port is at least the low
    end, because ``low <= port <= high`` reads ``high`` only then.
    """
    if port is None:
        return False
    for bounds in ranges:
        if bounds is None:
            return False
        low, high = bounds
        if low <= port:
            if high is None:
                return False
            if port <= high:
                return True
    return False


def _port_test(values: tuple[str, ...], *fields: str) -> _MatchTest:
    """Test whether any of the packet's ports named by ``fields`` (``dport``, ``sport``) is in ``values``."""
    ranges = _port_ranges(values)
    if len(fields) == 1:
        read = attrgetter(fields[0])
        return lambda packet: _ports_contain(ranges, read(packet))
    return lambda packet: _ports_contain(ranges, packet.dport) or _ports_contain(ranges, packet.sport)


def _physdev_test(name: str, values: tuple[str, ...]) -> _MatchTest | None:
    if name == "physdev-in":
        return _interface_test("physdev_in", values[0]) if values else None
    if name == "physdev-out":
        return _interface_test("physdev_out", values[0]) if values else None
    if name == "physdev-is-in":
        return lambda packet: packet.physdev_in is not None
    if name == "physdev-is-out":
        return lambda packet: packet.physdev_out is not None
    if name == "physdev-is-bridged":
        return lambda packet: packet.physdev_in is not None and packet.physdev_out is not None
    return None


def _icmp_test(value: str) -> _MatchTest:
    """Test ``--icmp-type`` (a name, ``TYPE`` or ``TYPE/CODE``); a packet without an ICMP type never matches."""
    if value in ICMP_TYPES:
        expected_type, expected_code = ICMP_TYPES[value]
    else:
        type_text, _, code_text = value.partition("/")
        number = decimal_value(type_text)
        code = decimal_value(code_text) if code_text else None
        if number is None or (code_text and code is None):
            return lambda packet: False if packet.icmp_type is None else None
        expected_type, expected_code = number, code
    if expected_type == -1:
        return lambda packet: packet.icmp_type is not None

    def test(packet: Packet) -> bool:
        if packet.icmp_type != expected_type:
            return False
        return expected_code is None or expected_code == packet.icmp_code

    return test
