"""Walk iptables chains for one described packet and return the verdict.

The evaluator follows ``iptables-save`` rules in order: jumps into user chains,
``RETURN``, ``-g`` gotos and the built-in chain's policy. It understands the
common conditions (``-p``, ``-s``/``-d`` with negation, ``-i``/``-o`` with ``+``,
``-f``) and the match modules ``tcp``, ``udp``, ``icmp``, ``multiport``,
``state``, ``conntrack``, ``addrtype``, ``comment``, ``mark`` and ``physdev``.
A rule whose other conditions all hold but which uses any other match module
gives the verdict ``UNKNOWN`` with that rule, instead of a guess.

Connection tracking state comes from the packet's ``ctstate`` field: ``NEW`` unless
the caller describes a reply or an ICMP error (``RELATED``). The packet mark
starts at the packet's ``mark`` (0 for a packet that nothing marked yet), and a
``-j MARK`` rule on the way changes it for the rules after it, as the kernel
does for kube-proxy's ``KUBE-MARK-MASQ`` and ``KUBE-MARK-DROP``.

The nat table is walked the same way: ``MASQUERADE``, ``SNAT``, ``DNAT``,
``REDIRECT`` and ``NETMAP`` end the walk with that target as the verdict, and a
built-in nat chain that ends without one gives ``ACCEPT`` (no translation).
"""

from __future__ import annotations

from collections.abc import Iterable

from netdoctor.log import get_logger
from netdoctor.model import IptablesMatch, IptablesRule, IptablesRuleset, IptablesTable
from netdoctor.model.addr import AddressError, network_of, parse_ip, parse_prefix
from netdoctor.model.record import field, record, replace

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

#: Match modules this evaluator reads.
_KNOWN_MODULES = frozenset(
    {"tcp", "udp", "icmp", "multiport", "state", "conntrack", "addrtype", "comment", "mark", "physdev"}
)

_MAX_DEPTH = 64


@record
class Packet:
    """The packet to evaluate. Addresses are text, and a ``None`` field matches no condition on it."""

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


def evaluate(ruleset: IptablesRuleset, chain: str, packet: Packet, table: str = "filter") -> Verdict:
    """Walk a built-in chain of one table for ``packet`` and return the verdict.

    A missing table or chain means no rules: the packet is accepted.
    """
    found = ruleset.table(table)
    if found is None:
        return Verdict("ACCEPT", None, chain, f"no {table} table")
    rules_by_chain: dict[str, list[IptablesRule]] = {}
    for rule in found.rules:
        rules_by_chain.setdefault(rule.chain, []).append(rule)
    return _walk(found, rules_by_chain, chain, packet)


def _walk(table: IptablesTable, rules_by_chain: dict[str, list[IptablesRule]], chain: str, packet: Packet) -> Verdict:
    # Each stack entry is (chain, index of the next rule to evaluate).
    stack: list[tuple[str, int]] = [(chain, 0)]
    while stack:
        if len(stack) > _MAX_DEPTH:
            return Verdict("UNKNOWN", None, stack[-1][0], f"chain jumps nest deeper than {_MAX_DEPTH}")
        current, position = stack.pop()
        rules = rules_by_chain.get(current, [])
        jumped = False
        while position < len(rules):
            rule = rules[position]
            position += 1
            try:
                matched = rule_matches(rule, packet)
            except _Unknown as error:
                return Verdict("UNKNOWN", rule, current, f"unknown match: {error}")
            if not matched or rule.target is None:
                continue
            target = rule.target
            if target in TERMINAL_TARGETS or target in NAT_TARGETS:
                return Verdict(target, rule, current, rule.text)
            if target == "RETURN":
                break
            if target == "MARK":
                try:
                    packet = replace(packet, mark=_set_mark(packet.mark, rule))
                except _Unknown as error:
                    return Verdict("UNKNOWN", rule, current, f"unknown MARK option: {error}")
                continue
            if target in rules_by_chain or table.chain(target) is not None:
                if not rule.goto:
                    stack.append((current, position))
                stack.append((target, 0))
                jumped = True
                break
            if target in CONTINUING_TARGETS:
                continue
            return Verdict("UNKNOWN", rule, current, f"unknown target {target}")
        if jumped:
            continue
    # The built-in chain ended, returned, or a chain it went to with -g ended.
    declared = table.chain(chain)
    policy = declared.policy if declared is not None and declared.policy not in (None, "-") else "ACCEPT"
    return Verdict(policy, None, chain, f"policy {policy}")


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
    known = [
        _negate(_protocol_matches(rule.protocol, packet), rule.protocol_negated) if rule.protocol else True,
        _negate(_address_matches(rule.source, packet.src), rule.source_negated) if rule.source else True,
        _negate(_address_matches(rule.destination, packet.dst), rule.destination_negated) if rule.destination else True,
        _negate(_interface_matches(rule.in_interface, packet.in_interface), rule.in_interface_negated)
        if rule.in_interface else True,
        _negate(_interface_matches(rule.out_interface, packet.out_interface), rule.out_interface_negated)
        if rule.out_interface else True,
        rule.fragment is not True,
    ]
    if not all(known):
        return False
    unknown: list[str] = []
    for match in rule.matches:
        result = _module_matches(match, packet)
        if result is None:
            unknown.append(match.module)
        elif not result:
            return False
    if unknown:
        raise _Unknown(", ".join(f"-m {module}" for module in unknown))
    return True


def _negate(value: bool, negated: bool) -> bool:
    return not value if negated else value


def _protocol_number(text: str) -> int | None:
    text = text.lower()
    if text.isdigit():
        return int(text)
    return PROTOCOLS.get(text)


def _protocol_matches(rule_protocol: str, packet: Packet) -> bool:
    expected = _protocol_number(rule_protocol)
    if expected == 0:
        return True
    return expected is not None and expected == _protocol_number(packet.protocol)


def _address_matches(condition: str, address: str) -> bool:
    try:
        family, net, length = parse_prefix(condition)
        other_family, value = parse_ip(address)
    except AddressError:
        return False
    return family == other_family and network_of(family, value, length) == network_of(family, net, length)


def _interface_matches(pattern: str, name: str | None) -> bool:
    if name is None:
        return False
    if pattern.endswith("+"):
        return name.startswith(pattern[:-1])
    return name == pattern


def _port_in(values: Iterable[str], port: int | None) -> bool:
    if port is None:
        return False
    for value in values:
        for item in value.split(","):
            low, _, high = item.partition(":")
            try:
                if int(low or 0) <= port <= int(high or low or 65535):
                    return True
            except ValueError:
                return False
    return False


def _module_matches(match: IptablesMatch, packet: Packet) -> bool | None:
    """Return whether one ``-m`` match holds, or None when the evaluator cannot decide."""
    if match.module not in _KNOWN_MODULES:
        return None
    result = True
    for option in match.options:
        value = _option_matches(match.module, option.name.lstrip("-"), option.values, packet)
        if value is None:
            return None
        if option.negated:
            value = not value
        result = result and value
    return result


def _option_matches(module: str, name: str, values: tuple[str, ...], packet: Packet) -> bool | None:
    if module == "comment":
        return True
    if module in ("tcp", "udp"):
        if name in ("dport", "destination-port"):
            return _port_in(values, packet.dport)
        if name in ("sport", "source-port"):
            return _port_in(values, packet.sport)
        if name == "syn":
            return packet.ctstate == "NEW"
        return None
    if module == "multiport":
        if name in ("dports", "destination-ports"):
            return _port_in(values, packet.dport)
        if name in ("sports", "source-ports"):
            return _port_in(values, packet.sport)
        if name == "ports":
            return _port_in(values, packet.dport) or _port_in(values, packet.sport)
        return None
    if module == "icmp" and name == "icmp-type":
        return _icmp_matches(values[0] if values else "any", packet)
    if module in ("state", "conntrack") and name in ("state", "ctstate"):
        states = {state for value in values for state in value.split(",")}
        return packet.ctstate in states
    if module == "mark" and name == "mark":
        try:
            value, mask = _mark_value(values[0] if values else "", 0xFFFFFFFF)
        except _Unknown:
            return None
        return packet.mark & mask == value
    if module == "physdev":
        return _physdev_matches(name, values, packet)
    if module == "addrtype" and name in ("dst-type", "src-type"):
        address = packet.dst if name == "dst-type" else packet.src
        types = {item for value in values for item in value.split(",")}
        if types <= {"LOCAL"}:
            return address in packet.local_addresses
        return None
    return None


def _physdev_matches(name: str, values: tuple[str, ...], packet: Packet) -> bool | None:
    if name == "physdev-in":
        return _interface_matches(values[0], packet.physdev_in) if values else None
    if name == "physdev-out":
        return _interface_matches(values[0], packet.physdev_out) if values else None
    if name == "physdev-is-in":
        return packet.physdev_in is not None
    if name == "physdev-is-out":
        return packet.physdev_out is not None
    if name == "physdev-is-bridged":
        return packet.physdev_in is not None and packet.physdev_out is not None
    return None


def _icmp_matches(value: str, packet: Packet) -> bool | None:
    if packet.icmp_type is None:
        return False
    if value in ICMP_TYPES:
        expected_type, expected_code = ICMP_TYPES[value]
    else:
        type_text, _, code_text = value.partition("/")
        if not type_text.isdigit() or (code_text and not code_text.isdigit()):
            return None
        expected_type, expected_code = int(type_text), int(code_text) if code_text else None
    if expected_type == -1:
        return True
    if expected_type != packet.icmp_type:
        return False
    return expected_code is None or expected_code == packet.icmp_code
