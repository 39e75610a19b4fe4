"""Evaluate firewalld zones and policies for one described packet.

The model follows firewalld 1.x with the nftables backend (read in firewalld
1.3's ``core/nftables.py`` and ``core/fw_policy.py``):

- A packet belongs to the zone whose ``sources`` contain its source address,
  else to the zone its interface is bound to, else to the default zone.
- Inside a zone (or a policy), rich rules with a negative priority come first,
  then rich rules that drop or reject and the icmp-blocks, then everything that
  accepts (services, ports, protocols, source ports, accepting rich rules), then
  rich rules with a positive priority.
- ICMP that nothing above decided is accepted when the target is ``default``
  (``ACCEPT`` accepts everything anyway). With ``icmp-block-inversion`` the
  listed types are accepted and every other type is rejected. Targets ``DROP``
  and ``REJECT`` apply to ICMP like to anything else.
- Then the target decides: ``default`` and ``%%REJECT%%`` reject, ``DROP``
  drops, ``ACCEPT`` accepts.
- Forwarded packets: policies whose ingress and egress zones match, by
  priority; intra-zone forwarding (``forward: yes``) between interfaces and
  sources bound to the zone explicitly; the ingress zone's target when it is
  ``ACCEPT``, ``DROP`` or ``REJECT``; otherwise firewalld rejects.

Connection tracking comes first in firewalld: a packet in state ``ESTABLISHED``
or ``RELATED`` is accepted before any zone is consulted. Anything this module
cannot decide (an ipset source, an unknown service, a rich rule it cannot
parse) gives the verdict ``UNKNOWN`` instead of a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from netdoctor.firewall import ICMP_TYPES, PROTOCOLS, Packet
from netdoctor.log import get_logger
from netdoctor.model.addr import AddressError, network_of, parse_ip, parse_prefix
from netdoctor.model.node import FirewalldPolicy, FirewalldState, FirewalldZone
from netdoctor.model.record import record
from netdoctor.model.table import decimal_value

logger = get_logger(__name__)

#: Ports and protocols of the services firewalld ships, used when the node's service files were not collected.
KNOWN_SERVICES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bgp": (("179/tcp",), ()),
    "cockpit": (("9090/tcp",), ()),
    "dhcp": (("67/udp",), ()),
    "dhcpv6-client": (("546/udp",), ()),
    "dns": (("53/tcp", "53/udp"), ()),
    "etcd-client": (("2379/tcp",), ()),
    "etcd-server": (("2380/tcp",), ()),
    "gre": ((), ("gre",)),
    "http": (("80/tcp",), ()),
    "https": (("443/tcp",), ()),
    "kube-apiserver": (("6443/tcp",), ()),
    "kube-api": (("10250/tcp",), ()),
    "kubelet": (("10250/tcp",), ()),
    "kube-nodeport-services": (("30000-32767/tcp",), ()),
    "mdns": (("5353/udp",), ()),
    "ntp": (("123/udp",), ()),
    "samba-client": (("137/udp", "138/udp"), ()),
    "ssh": (("22/tcp",), ()),
}

_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")

#: Connection tracking states firewalld accepts before any zone.
_TRACKED_STATES = frozenset({"ESTABLISHED", "RELATED"})


@record
class FirewalldVerdict:
    """The outcome of a firewalld evaluation: ``ACCEPT``, ``DROP``, ``REJECT`` or ``UNKNOWN``."""

    verdict: str
    #: The zone that applied to the packet, if any.
    zone: str | None
    #: The policy that decided, if a policy decided.
    policy: str | None
    #: What decided, for messages: ``target default``, ``rich rule '...'``, ``icmp-block echo-request``.
    reason: str

    @property
    def blocks(self) -> bool:
        """Whether the packet is dropped or rejected."""
        return self.verdict in ("DROP", "REJECT")


@record
class RichRule:
    """A parsed firewalld rich rule."""

    text: str
    family: str | None
    priority: int
    source: str | None
    source_negated: bool
    destination: str | None
    destination_negated: bool
    #: The element: ``service``, ``port``, ``protocol``, ``icmp-block``, ``icmp-type``, ``source-port``,
    #: ``masquerade``, ``forward-port`` or None (the rule matches every packet).
    element: str | None
    attributes: tuple[tuple[str, str], ...]
    #: ``accept``, ``reject``, ``drop``, ``mark`` or None (a rule that only logs).
    action: str | None

    def attribute(self, name: str) -> str | None:
        """Return an attribute of the element, such as ``port`` or ``protocol``."""
        return dict(self.attributes).get(name)


class RichRuleError(ValueError):
    """A rich rule that cannot be parsed."""


_ELEMENTS = frozenset({"service", "port", "protocol", "icmp-block", "icmp-type", "source-port", "masquerade",
                       "forward-port", "tcp-mss-clamp"})
_ACTIONS = frozenset({"accept", "reject", "drop", "mark"})
_DECORATIONS = frozenset({"log", "audit", "nflog", "limit"})


def parse_rich_rule(text: str) -> RichRule:
    """Parse ``rule family="ipv4" source address="..." port port="8472" protocol="udp" accept``."""
    import shlex  # only nodes with rich rules need it

    try:
        tokens = shlex.split(text)
    except ValueError as error:
        raise RichRuleError(f"invalid rich rule {text!r}: {error}") from None
    if not tokens or tokens[0] != "rule":
        raise RichRuleError(f"invalid rich rule {text!r}: expected it to start with 'rule'")
    family: str | None = None
    priority = 0
    addresses: dict[str, tuple[str | None, bool]] = {}
    element: str | None = None
    attributes: list[tuple[str, str]] = []
    action: str | None = None
    section: str | None = None
    negated = False
    for token in tokens[1:]:
        name, equals, value = token.partition("=")
        if not equals:
            if token == "NOT":
                negated = True
            elif token in ("source", "destination"):
                section = token
            elif token in _ELEMENTS:
                element, section = token, "element"
            elif token in _ACTIONS:
                action, section = token, "action"
            elif token in _DECORATIONS:
                section = "decoration"
            else:
                raise RichRuleError(f"invalid rich rule {text!r}: unknown word {token!r}")
            continue
        if section is None and name == "family":
            family = value
        elif section is None and name == "priority":
            try:
                priority = int(value)
            except ValueError:
                raise RichRuleError(f"invalid rich rule {text!r}: priority {value!r} is not a number") from None
        elif section in ("source", "destination"):
            if name != "address":
                raise RichRuleError(f"rich rule {text!r}: {section} {name}= is not evaluated, only address=")
            addresses[section] = (value, negated)
            negated = False
        elif section == "element":
            attributes.append((name, value))
    source, source_negated = addresses.get("source", (None, False))
    destination, destination_negated = addresses.get("destination", (None, False))
    return RichRule(text, family, priority, source, source_negated, destination, destination_negated, element,
                    tuple(attributes), action)


class _Undecided(Exception):
    """A condition this module cannot evaluate."""


def zone_for(state: FirewalldState, interface: str | None, source: str | None = None) -> tuple[FirewalldZone | None, str]:
    """Return the zone that applies to a packet and how it was chosen.

    The binding is ``source ADDR/LEN``, ``interface NAME`` or ``default zone``.
    Source bindings win over interface bindings, the most specific first.
    """
    if source is not None:
        best: tuple[int, FirewalldZone, str] | None = None
        for zone in state.zones:
            for entry in zone.sources:
                length = _prefix_length_if_contains(entry, source)
                if length is not None and (best is None or length > best[0]):
                    best = (length, zone, entry)
        if best is not None:
            return best[1], f"source {best[2]}"
    if interface is not None:
        bound = bound_zone(state, interface)
        if bound is not None:
            return bound, f"interface {interface}"
    if state.default_zone is not None:
        return state.zone(state.default_zone), "default zone"
    return None, "no zone"


def bound_zone(state: FirewalldState, interface: str) -> FirewalldZone | None:
    """Return the zone an interface is bound to explicitly (``+`` ends a wildcard), if any."""
    for zone in state.zones:
        for pattern in zone.interfaces:
            if pattern == interface or (pattern.endswith("+") and interface.startswith(pattern[:-1])):
                return zone
    return None


def evaluate_input(state: FirewalldState, packet: Packet) -> FirewalldVerdict:
    """Decide a packet addressed to the node itself, arriving on ``packet.in_interface``."""
    if packet.ctstate in _TRACKED_STATES:
        return FirewalldVerdict("ACCEPT", None, None, f"connection state {packet.ctstate} is accepted before any zone")
    zone, binding = zone_for(state, packet.in_interface, packet.src)
    if zone is None:
        return FirewalldVerdict("UNKNOWN", None, None, f"zone {state.default_zone!r} was not captured")
    zone_label = f"zone {zone.name} ({binding})"
    services = _service_index(state)
    try:
        for policy, verdict in _policy_verdicts(state, packet, zone.name, "HOST", services, before_zone=True):
            return FirewalldVerdict(verdict[0], zone.name, policy.name, f"policy {policy.name}: {verdict[1]}")
        decided = _decide_lists(zone, packet, services, zone.icmp_block_inversion is True)
        if decided is not None:
            return FirewalldVerdict(decided[0], zone.name, None, f"{zone_label}: {decided[1]}")
        for policy, verdict in _policy_verdicts(state, packet, zone.name, "HOST", services, before_zone=False):
            return FirewalldVerdict(verdict[0], zone.name, policy.name, f"policy {policy.name}: {verdict[1]}")
    except _Undecided as error:
        return FirewalldVerdict("UNKNOWN", zone.name, None, f"{zone_label}: {error}")
    final, reason = _zone_final(zone, packet)
    return FirewalldVerdict(final, zone.name, None, f"{zone_label}: {reason}")


def evaluate_forward(state: FirewalldState, packet: Packet) -> FirewalldVerdict:
    """Decide a packet the node forwards from ``packet.in_interface`` to ``packet.out_interface``."""
    if packet.ctstate in _TRACKED_STATES:
        return FirewalldVerdict("ACCEPT", None, None, f"connection state {packet.ctstate} is accepted before any zone")
    ingress, ingress_binding = zone_for(state, packet.in_interface, packet.src)
    egress, egress_binding = zone_for(state, packet.out_interface, packet.dst)
    if ingress is None or egress is None:
        return FirewalldVerdict("UNKNOWN", None, None, f"zone {state.default_zone!r} was not captured")
    services = _service_index(state)
    label = f"from zone {ingress.name} ({ingress_binding}) to zone {egress.name} ({egress_binding})"
    try:
        for before in (True, False):
            for policy, verdict in _policy_verdicts(state, packet, ingress.name, egress.name, services, before_zone=before):
                return FirewalldVerdict(verdict[0], ingress.name, policy.name, f"policy {policy.name}: {verdict[1]}")
            if before and ingress.name == egress.name and ingress.forward:
                explicit = ingress_binding != "default zone" and egress_binding != "default zone"
                if explicit:
                    return FirewalldVerdict("ACCEPT", ingress.name, None, f"{label}: intra-zone forwarding")
    except _Undecided as error:
        return FirewalldVerdict("UNKNOWN", ingress.name, None, f"{label}: {error}")
    target = (ingress.target or "default").strip("%")
    if target in ("ACCEPT", "DROP", "REJECT"):
        return FirewalldVerdict(target, ingress.name, None, f"{label}: target {ingress.target} of zone {ingress.name}")
    return FirewalldVerdict("REJECT", ingress.name, None,
                            f"{label}: no policy or intra-zone forwarding accepts it, so firewalld rejects it")


def masquerading_zone(state: FirewalldState, out_interface: str) -> FirewalldZone | None:
    """Return the zone that masquerades traffic leaving by ``out_interface``, if its zone masquerades."""
    zone, _ = zone_for(state, out_interface)
    if zone is not None and zone.masquerade:
        return zone
    return None


def _prefix_length_if_contains(entry: str, address: str) -> int | None:
    if entry.startswith("ipset:") or _MAC.match(entry):
        return None
    try:
        family, net, length = parse_prefix(entry if "/" in entry else f"{entry}/{32 if '.' in entry else 128}")
        other_family, value = parse_ip(address)
    except AddressError:
        return None
    if family == other_family and network_of(family, value, length) == network_of(family, net, length):
        return length
    return None


def _address_in(entry: str, address: str) -> bool:
    if entry.startswith("ipset:"):
        raise _Undecided(f"source {entry} is an ipset, whose members were not captured")
    return _prefix_length_if_contains(entry, address) is not None


def _service_index(state: FirewalldState) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    index = dict(KNOWN_SERVICES)
    for service in state.services:
        index[service.name] = (service.ports, service.protocols)
    return index


def _protocol_number(name: str) -> int | None:
    name = name.lower()
    number = decimal_value(name)
    return PROTOCOLS.get(name) if number is None else number


def _port_entry_matches(entry: str, packet: Packet, *, source: bool = False) -> bool:
    port_text, _, protocol = entry.partition("/")
    if _protocol_number(protocol) != _protocol_number(packet.protocol):
        return False
    port = packet.sport if source else packet.dport
    if port is None:
        return False
    low, _, high = port_text.partition("-")
    try:
        return int(low) <= port <= int(high or low)
    except ValueError:
        raise _Undecided(f"invalid port entry {entry!r}") from None


def _icmp_name_matches(name: str, packet: Packet) -> bool:
    if packet.icmp_type is None or _protocol_number(packet.protocol) != 1:
        return False
    if name not in ICMP_TYPES:
        raise _Undecided(f"ICMP type {name!r} is not known")
    icmp_type, code = ICMP_TYPES[name]
    return icmp_type == packet.icmp_type and (code is None or code == packet.icmp_code)


def _service_matches(name: str, packet: Packet, services: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> bool:
    if name not in services:
        raise _Undecided(f"service {name!r} is not known; collect the node's service files to resolve it")
    ports, protocols = services[name]
    return any(_port_entry_matches(entry, packet) for entry in ports) or any(
        _protocol_number(protocol) == _protocol_number(packet.protocol) for protocol in protocols
    )


def _rich_matches(rule: RichRule, packet: Packet, services: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> bool:
    family = 6 if ":" in packet.src else 4
    if rule.family is not None and rule.family != f"ipv{family}":
        return False
    if rule.source is not None and _address_in(rule.source, packet.src) == rule.source_negated:
        return False
    if rule.destination is not None and _address_in(rule.destination, packet.dst) == rule.destination_negated:
        return False
    element = rule.element
    if element is None:
        return True
    if element == "service":
        return _service_matches(rule.attribute("name") or "", packet, services)
    if element in ("port", "source-port"):
        entry = f"{rule.attribute('port')}/{rule.attribute('protocol')}"
        return _port_entry_matches(entry, packet, source=element == "source-port")
    if element == "protocol":
        return _protocol_number(rule.attribute("value") or "") == _protocol_number(packet.protocol)
    if element in ("icmp-block", "icmp-type"):
        return _icmp_name_matches(rule.attribute("name") or "", packet)
    return False


def _rich_rules(texts: Iterable[str]) -> list[RichRule]:
    rules = []
    for text in texts:
        try:
            rules.append(parse_rich_rule(text))
        except RichRuleError as error:
            raise _Undecided(str(error)) from None
    return rules


def _rich_action(rule: RichRule) -> str | None:
    """Return the verdict a matching rich rule gives, or None when it only logs, marks or translates."""
    if rule.element == "icmp-block":
        return "REJECT"
    if rule.element in ("masquerade", "forward-port", "tcp-mss-clamp"):
        return None
    if rule.action in ("accept", "reject", "drop"):
        return rule.action.upper()
    return None


def _decide_lists(owner: FirewalldZone | FirewalldPolicy, packet: Packet,
                  services: dict[str, tuple[tuple[str, ...], tuple[str, ...]]], inverted: bool) -> tuple[str, str] | None:
    """Walk a zone's or policy's lists in firewalld's chain order and return ``(verdict, reason)`` or None."""
    rules = _rich_rules(owner.rich_rules)
    ordered = sorted((rule for rule in rules if rule.priority != 0), key=lambda rule: rule.priority)
    for rule in (rule for rule in ordered if rule.priority < 0):
        action = _rich_action(rule)
        if action is not None and _rich_matches(rule, packet, services):
            return action, f"rich rule '{rule.text}'"

    deny = [rule for rule in rules if rule.priority == 0 and _rich_action(rule) in ("REJECT", "DROP")]
    for rule in deny:
        if _rich_matches(rule, packet, services):
            return str(_rich_action(rule)), f"rich rule '{rule.text}'"
    if not inverted:
        for name in owner.icmp_blocks:
            if _icmp_name_matches(name, packet):
                return "REJECT", f"icmp-block {name}"

    allow = _allow_reason(owner, rules, packet, services, inverted)
    if allow is not None:
        return "ACCEPT", allow

    for rule in (rule for rule in ordered if rule.priority > 0):
        action = _rich_action(rule)
        if action is not None and _rich_matches(rule, packet, services):
            return action, f"rich rule '{rule.text}'"
    return None


def _allow_reason(owner: FirewalldZone | FirewalldPolicy, rules: list[RichRule], packet: Packet,
                  services: dict[str, tuple[tuple[str, ...], tuple[str, ...]]], inverted: bool) -> str | None:
    for rule in rules:
        if rule.priority == 0 and _rich_action(rule) == "ACCEPT" and _rich_matches(rule, packet, services):
            return f"rich rule '{rule.text}'"
    for name in owner.services:
        if _service_matches(name, packet, services):
            return f"service {name}"
    for entry in owner.ports:
        if _port_entry_matches(entry, packet):
            return f"port {entry}"
    for entry in owner.source_ports:
        if _port_entry_matches(entry, packet, source=True):
            return f"source-port {entry}"
    for protocol in owner.protocols:
        if _protocol_number(protocol) == _protocol_number(packet.protocol):
            return f"protocol {protocol}"
    if inverted:
        for name in owner.icmp_blocks:
            if _icmp_name_matches(name, packet):
                return f"icmp-block {name} with icmp-block-inversion"
    return None


def _zone_final(zone: FirewalldZone, packet: Packet) -> tuple[str, str]:
    """Apply the ICMP catch-all and the target of a zone to a packet nothing else decided."""
    target = zone.target or "default"
    is_icmp = _protocol_number(packet.protocol) == 1
    if is_icmp and target in ("default", "ACCEPT"):
        if zone.icmp_block_inversion:
            return "REJECT", "icmp-block-inversion rejects ICMP types not listed"
        return "ACCEPT", f"target {target} accepts ICMP"
    if target == "ACCEPT":
        return "ACCEPT", "target ACCEPT"
    if target == "DROP":
        return "DROP", "target DROP"
    return "REJECT", f"target {target} rejects what no service, port or rule accepts"


def _policy_verdicts(state: FirewalldState, packet: Packet, ingress: str, egress: str,
                     services: dict[str, tuple[tuple[str, ...], tuple[str, ...]]], *,
                     before_zone: bool) -> Iterator[tuple[FirewalldPolicy, tuple[str, str]]]:
    """Yield the first policy that decides the packet, among those before (or after) the zones."""
    policies = [
        policy for policy in state.policies or ()
        if _zone_listed(policy.ingress_zones, ingress) and _zone_listed(policy.egress_zones, egress)
        and ((policy.priority or -1) < 0) == before_zone
    ]
    for policy in sorted(policies, key=lambda policy: policy.priority or -1):
        decided = _decide_lists(policy, packet, services, inverted=False)
        if decided is not None:
            yield policy, decided
            return
        target = (policy.target or "CONTINUE").strip("%")
        if target in ("ACCEPT", "DROP", "REJECT"):
            yield policy, (target, f"target {policy.target}")
            return


def _zone_listed(zones: tuple[str, ...], name: str) -> bool:
    if name == "HOST":
        return "HOST" in zones
    return name in zones or "ANY" in zones
