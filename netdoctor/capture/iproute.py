"""Parsers of iproute2 output: ``ip addr``, ``ip route``, ``ip neigh`` and ``bridge fdb``, text and JSON.

Each parser takes the output and the name of the command or file it came from.
It returns the model part that a netlink dump of the same state gives, so a
snapshot built from a bundle of text captures compares field by field with one
collected live (the parity test checks this against the kernel):

* route protocols are ``rt_protos`` names, or the decimal number when the name
  is not in :data:`~netdoctor.model.routes.ROUTE_PROTOCOLS`;
* scopes, tables and types are the kernel's numbers; a route line without
  ``table`` is in main (254), without ``metric`` has metric 0, and without
  ``proto`` has protocol ``boot``, because ``ip route`` omits exactly these
  defaults;
* route flags keep only the ``RTNH_F_*`` bits dead, pervasive, onlink and linkdown;
* interface flags and state are the ``<...>`` list and the operstate as
  ``ip link`` prints them.

The text route parser reads every keyword that iproute2 1.x to 6.x prints and
raises :class:`~netdoctor.capture.ParseError` on any other word, so a format it
does not know is reported instead of being skipped silently. The JSON parsers
read the keys they need and ignore the rest.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from functools import lru_cache
from socket import AF_INET as SOCKET_AF_INET
from socket import inet_pton
from typing import Any, TypeVar

from netdoctor.capture import TOO_MANY_DIGITS, ParseError
from netdoctor.model.addr import AF_INET, AF_INET6, AddressError, parse_ip, parse_mac, parse_prefix
from netdoctor.model.addr import quoted_text as _quoted
from netdoctor.model.node import MAX_MTU, Address, Interface, TunnelInfo, VxlanInfo
from netdoctor.model.routes import (
    NEXTHOP_FLAG_NAMES,
    NTF_EXT_LEARNED,
    NTF_MASTER,
    NTF_SELF,
    NTF_STICKY,
    NUD_STATES,
    ROUTE_PROTOCOL_NAMES,
    ROUTE_PROTOCOLS,
    ROUTE_SCOPE_NAMES,
    ROUTE_SCOPES,
    ROUTE_TABLES,
    ROUTE_TYPES,
    FdbEntry,
    FdbTable,
    Neighbour,
    NeighbourTable,
    NextHop,
    Route,
    RouteTable,
)
from netdoctor.model.table import Table, decimal_value, gc_paused

logger = logging.getLogger(__name__)

_Row = TypeVar("_Row", bound=tuple[Any, ...])

#: FDB flags that iproute2 prints by name but the model has no constant for.
NTF_OFFLOADED = 0x20
NTF_ROUTER = 0x80

#: ``bridge fdb`` flag words and their ``NTF_*`` bits.
FDB_FLAGS = {
    "self": NTF_SELF, "master": NTF_MASTER, "extern_learn": NTF_EXT_LEARNED,
    "offload": NTF_OFFLOADED, "sticky": NTF_STICKY, "router": NTF_ROUTER,
}

#: Address flags in the order ``ip addr`` prints them. ``dynamic`` is printed
#: when ``IFA_F_PERMANENT`` is clear; ``temporary`` is the IPv6 name of ``secondary``.
ADDRESS_FLAGS = (
    "secondary", "temporary", "nodad", "optimistic", "dadfailed", "home", "deprecated",
    "tentative", "dynamic", "mngtmpaddr", "noprefixroute", "autojoin", "stable-privacy",
)

#: ``link/TYPE`` values that name the link kind when ``ip addr`` runs without ``-d``.
LINK_TYPE_KINDS = {
    "loopback": "loopback", "ipip": "ipip", "gre": "gre", "sit": "sit", "gre6": "ip6gre",
    "tunnel6": "ip6tnl",
}

#: Names that flannel's UDP backend and common TUN users give their devices,
#: which ``link/none`` alone does not identify (WireGuard is ``link/none`` too).
_TUN_NAME = re.compile(r"^(flannel\d+|tun\d+)$")

_LINK_HEADER = re.compile(r"^(\d+):\s+(\S+?)(?:@(\S+))?:\s+<([^>]*)>(.*)$")

#: Route keywords whose value the model does not keep: one argument each.
_ROUTE_SKIP_WITH_VALUE = frozenset({
    "pref", "expires", "error", "realm", "realms", "advmss", "window", "rtt", "rttvar",
    "ssthresh", "cwnd", "initcwnd", "initrwnd", "quickack", "congctl", "features",
    "hoplimit", "reordering", "rto_min", "fastopen_no_cookie", "tos", "dsfield", "from",
    "used", "age", "users", "ipid", "mark", "uid", "iif", "ttl-propagate", "pmtu",
})
#: Route flag words that the model does not keep (offload and notification state).
_ROUTE_SKIP_FLAGS = frozenset({
    "offload", "trap", "notify", "rt_offload", "rt_trap", "rt_offload_failed", "unresolved",
    "cache", "cloned", "<cache>", "rt_notify",
})
_ROUTE_FLAG_BITS = {name: bit for bit, name in NEXTHOP_FLAG_NAMES.items()}


# ---------------------------------------------------------------------------
# small value helpers


#: Parsed destinations and addresses, kept because a cluster's route files repeat them: every Calico node routes
#: each peer's block via that peer.
_cached_prefix = lru_cache(maxsize=1 << 16)(parse_prefix)
_cached_ip = lru_cache(maxsize=1 << 16)(parse_ip)


def _number(source: str, line: int | None, what: str, text: str) -> int:
    hexadecimal = text.startswith("0x")
    digits = text[2:] if hexadecimal else text
    problem = "expected a number"
    # int() also reads signs, underscores and the digits of other scripts, which ip never prints.
    if digits.isascii() and (digits.isalnum() if hexadecimal else digits.isdigit()):
        try:
            return int(digits, 16 if hexadecimal else 10)
        except ValueError:
            # CPython rejects decimal text of more than 4,300 digits by default, and no field of ip's output is that long.
            problem = problem if hexadecimal else "far too large"
    raise ParseError(source, line, f"invalid {what} {_quoted(text)}: {problem}")


def _ip(source: str, line: int | None, text: str, family: int | None = None) -> tuple[int, int]:
    try:
        parsed = _cached_ip(text)
    except AddressError as error:
        raise ParseError(source, line, str(error)) from None
    if family is not None and parsed[0] != family:
        raise ParseError(source, line, f"{_quoted(text)} is not an IPv{family} address")
    return parsed


def _addresses_checked(source: str, line: int | None, where: str, values: dict[str, Any]) -> None:
    """Raise :class:`ParseError` for the first of ``values`` (name -> text or None) that is not an IP address.

    ``any``, which iproute2 prints for an unset tunnel end, is not an address and passes.
    """
    for name, value in values.items():
        if value is None or value == "any":
            continue
        if not isinstance(value, str):
            raise ParseError(source, line, f"{where}{name} is {json.dumps(value)}, expected an address")
        try:
            _cached_ip(value)
        except AddressError as error:
            raise ParseError(source, line, f"{where}{name}: {error}") from None


def mac_or_none(text: str | None) -> str | None:
    """Return a 6-octet MAC address in lower case, or None for other link addresses."""
    if not text:
        return None
    try:
        parse_mac(text)
    except AddressError:
        return None
    return text.lower()


def table_number(source: str, line: int | None, text: str, names: Mapping[str, int] | None = None) -> int:
    """Return the id of a routing table written as a number or a name."""
    number = decimal_value(text)
    if number is not None:
        return number
    if text in ROUTE_TABLES:
        return ROUTE_TABLES[text]
    if names and text in names:
        return names[text]
    if text.isascii() and text.isdigit():
        raise ParseError(source, line, f"invalid routing table {_quoted(text)}: far too large")
    raise ParseError(
        source, line,
        f"unknown routing table name {_quoted(text)}: pass the rt_tables mapping or capture with 'ip -N' for numbers",
    )


def scope_number(source: str, line: int | None, text: str) -> int:
    """Return the number of a route or address scope written as a name or a number."""
    number = decimal_value(text)
    if number is not None:
        return number
    if text in ROUTE_SCOPES:
        return ROUTE_SCOPES[text]
    if text.isascii() and text.isdigit():
        raise ParseError(source, line, f"invalid scope {_quoted(text)}: far too large")
    raise ParseError(source, line, f"unknown scope {_quoted(text)}: expected global, site, link, host, nowhere or a number")


def scope_name(number: int) -> str:
    """Return the scope name ``ip addr`` prints, or the number as text."""
    return ROUTE_SCOPE_NAMES.get(number, str(number))


def protocol_text(text: str) -> str:
    """Normalize a route protocol: a number with an ``rt_protos`` name becomes that name."""
    number = decimal_value(text)
    return text if number is None else ROUTE_PROTOCOL_NAMES.get(number, text)


def _family_of(text: str) -> int:
    if text in ("inet", "ipv4"):
        return AF_INET
    if text in ("inet6", "ipv6"):
        return AF_INET6
    raise ValueError(text)


def _load_json(text: str, source: str) -> list[Any]:
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as error:
        raise ParseError(source, error.lineno, f"invalid JSON ({error.msg}): expected 'ip -j' output") from None
    except ValueError:
        # CPython's default limit on converting decimal text to int raises this while parsing.
        raise ParseError(source, None, TOO_MANY_DIGITS) from None
    if not isinstance(data, list):
        raise ParseError(source, 1, "expected a JSON list of objects, as 'ip -j' prints")
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise ParseError(source, None, f"entry {position}: expected an object, found {type(item).__name__}")
    return data


#: The largest value of the kernel's 32-bit fields (indexes, metrics, table numbers).
_U32_MAX = 2**32 - 1


def _json_text(source: str, where: str, item: dict[str, Any], key: str, default: str | None = None, *,
               number: bool = False) -> str | None:
    """Return a text field of an ``ip -j`` entry, or ``default`` when the entry has none.

    With ``number``, an integer is taken too and returned as its digits, for
    fields such as a table or VLAN that either form can name. A value of
    another type raises :class:`ParseError` naming the field, so that the
    bundle reader records a gap instead of keeping the value's Python text.
    """
    value = item.get(key, default)
    if value is None or isinstance(value, str):
        return value
    if number and value.__class__ is int and 0 <= value <= _U32_MAX:
        return str(value)
    expected = f"a string or an integer from 0 to {_U32_MAX}" if number else "a string"
    raise ParseError(source, None, f"{where}: {key!r} is {json.dumps(value)}, expected {expected}")


def _json_number(source: str, where: str, item: dict[str, Any], key: str, default: int | None = None, *,
                 low: int = 0, high: int = _U32_MAX) -> int:
    """Return an integer field of an ``ip -j`` entry, or ``default`` when the entry has none.

    Raises :class:`ParseError` naming the field for a missing field without a
    default, and for a value that is not a JSON integer from ``low`` to ``high``.
    """
    value = item.get(key, default)
    if value.__class__ is int and low <= value <= high:
        return value
    if value is None:
        raise ParseError(source, None, f"{where}: no {key!r}")
    raise ParseError(source, None, f"{where}: {key!r} is {json.dumps(value)}, expected an integer from {low} to {high}")


def _json_object(source: str, where: str, item: dict[str, Any], key: str) -> dict[str, Any]:
    """Return an object field of an ``ip -j`` entry, empty when the entry has none."""
    value = item.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise ParseError(source, None, f"{where}: {key!r} is {json.dumps(value)}, expected an object")


def _json_objects(source: str, where: str, item: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Return a field that ``ip -j`` prints as a list of objects (addresses, next hops), empty when absent."""
    value = item.get(key)
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(entry, dict) for entry in value):
        return value
    raise ParseError(source, None, f"{where}: {key!r} is {json.dumps(value)}, expected a list of objects")


def _json_gateway(source: str, where: str, item: dict[str, Any], family: int) -> str | None:
    """Return the ``gateway`` of a route's next hop as written, after checking that it is an address of ``family``."""
    gateway = _json_text(source, where, item, "gateway")
    if gateway:
        try:
            _ip(source, None, gateway, family)
        except ParseError as error:
            raise ParseError(source, None, f"{where}: {error.message}") from None
    return gateway


def _named(error: ParseError, source: str, where: str) -> ParseError:
    """Return ``error`` with the entry's position before its message, unless it names a line or the entry already."""
    if error.line is not None or error.message.startswith(where):
        return error
    return ParseError(source, None, f"{where}: {error.message}")


def _json_words(source: str, where: str, item: dict[str, Any], key: str) -> list[str]:
    """Return a field that ``ip -j`` prints as a list of words (flags, states); one word alone is taken too."""
    value = item.get(key, [])
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(word, str) for word in value):
        return value
    raise ParseError(source, None, f"{where}: {key!r} is {json.dumps(value)}, expected a list of strings")


# ---------------------------------------------------------------------------
# ip addr (text)


def _detail_kind(lines: list[str]) -> tuple[str | None, list[str]]:
    """Return the link kind named by ``ip -d`` detail lines, and that line's words."""
    for detail in lines:
        words = detail.split()
        if words and not words[0].endswith("_slave"):
            return words[0], words
    return None, []


def _vxlan_from_words(source: str, line: int, words: list[str]) -> VxlanInfo:
    values: dict[str, str] = {}
    for position, word in enumerate(words[:-1]):
        if word in ("id", "local", "remote", "group", "dev", "dstport", "port") and word not in values:
            values[word] = words[position + 1]
    if "id" not in values:
        raise ParseError(source, line, "vxlan details without 'id VNI'")
    remote = values.get("remote") or values.get("group")
    port = values.get("dstport")
    _addresses_checked(source, line, "vxlan ", {"local": values.get("local"), "remote": remote})
    return VxlanInfo(
        vni=_number(source, line, "VNI", values["id"]),
        local=values.get("local"),
        remote=remote,
        port=_number(source, line, "VXLAN port", port) if port is not None else None,
        dev=values.get("dev"),
        learning="nolearning" not in words,
    )


def _tunnel_from_words(source: str, line: int, words: list[str]) -> TunnelInfo:
    values: dict[str, str] = {}
    for position, word in enumerate(words[:-1]):
        if word in ("remote", "local", "ttl", "key", "ikey") and word not in values:
            values[word] = words[position + 1]
    _addresses_checked(source, line, "tunnel ", {"local": values.get("local"), "remote": values.get("remote")})
    ttl = values.get("ttl")
    return TunnelInfo(
        local=None if values.get("local") in (None, "any") else values["local"],
        remote=None if values.get("remote") in (None, "any") else values["remote"],
        # ``ttl inherit`` is TTL 0 in the kernel.
        ttl=None if ttl is None else 0 if ttl == "inherit" else _number(source, line, "TTL", ttl),
        key=values.get("key") or values.get("ikey"),
    )


def _address_from_words(source: str, line: int, words: list[str], ifname: str) -> Address:
    family = AF_INET if words[0] == "inet" else AF_INET6
    if len(words) < 2:
        raise ParseError(source, line, f"'{words[0]}' without an address")
    local, slash, length = words[1].partition("/")
    _ip(source, line, local, family)
    peer: str | None = None
    broadcast: str | None = None
    label: str | None = None
    scope = "global"
    flags: list[str] = []
    plen = _number(source, line, "prefix length", length) if slash else (32 if family == AF_INET else 128)
    position = 2
    while position < len(words):
        word = words[position]
        argument = words[position + 1] if position + 1 < len(words) else None
        if word in ("peer", "brd", "scope", "metric", "proto") and argument is None:
            raise ParseError(source, line, f"'{word}' without a value")
        if word == "peer":
            assert argument is not None
            peer_address, peer_slash, peer_length = argument.partition("/")
            _ip(source, line, peer_address, family)
            peer = peer_address
            if peer_slash:
                plen = _number(source, line, "prefix length", peer_length)
            position += 2
        elif word == "brd":
            assert argument is not None
            _ip(source, line, argument, family)
            broadcast = argument
            position += 2
        elif word == "scope":
            assert argument is not None
            scope = scope_name(scope_number(source, line, argument))
            position += 2
        elif word in ("metric", "proto"):
            position += 2
        elif word in ADDRESS_FLAGS:
            flags.append(word)
            position += 1
        elif word == "flags" and argument is not None:
            # Older iproute2 prints the flag bits it has no name for in hex (``flags 800``).
            flags.extend(_hex_address_flags(source, line, argument))
            position += 2
        elif position == len(words) - 1 and family == AF_INET:
            # The last word of an IPv4 line is the label (``eth0``, ``eth0:1``).
            label = word
            position += 1
        else:
            raise ParseError(source, line, f"unknown word {_quoted(word)} in the address of {ifname}")
    if not 0 <= plen <= (32 if family == AF_INET else 128):
        raise ParseError(source, line, f"prefix length {plen} of {_quoted(words[1])} is out of range (0 to "
                                       f"{32 if family == AF_INET else 128})")
    return Address(
        family=family, address=local, prefixlen=plen, scope=scope, peer=peer,
        broadcast=broadcast, label=label, flags=tuple(flags),
    )


#: ``IFA_F_*`` bits that newer iproute2 prints by name, by value.
_ADDRESS_FLAG_BITS = {
    0x01: "secondary", 0x02: "nodad", 0x04: "optimistic", 0x08: "dadfailed", 0x10: "home",
    0x20: "deprecated", 0x40: "tentative", 0x100: "mngtmpaddr", 0x200: "noprefixroute",
    0x400: "autojoin", 0x800: "stable-privacy",
}


def _hex_address_flags(source: str, line: int, text: str) -> list[str]:
    try:
        bits = int(text, 16)
    except ValueError:
        raise ParseError(source, line, f"invalid address flags {_quoted(text)}: expected hex digits") from None
    names = [name for bit, name in _ADDRESS_FLAG_BITS.items() if bits & bit]
    unknown = bits & ~sum(_ADDRESS_FLAG_BITS)
    if unknown:
        raise ParseError(source, line, f"unknown address flag bits {unknown:#x}")
    return names


def _link_words(header_rest: str) -> dict[str, str]:
    words = header_rest.split()
    values: dict[str, str] = {}
    for position, word in enumerate(words[:-1]):
        if word in ("mtu", "state", "master", "qdisc") and word not in values:
            values[word] = words[position + 1]
    return values


def _split_links(text: str, source: str) -> Iterator[tuple[int, str, list[tuple[int, str]]]]:
    """Yield each interface's header line and its indented lines, with line numbers."""
    current: tuple[int, str, list[tuple[int, str]]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        if raw[0].isdigit():
            if current is not None:
                yield current
            current = (number, raw, [])
        elif raw[0].isspace():
            if current is None:
                raise ParseError(source, number, "indented line before the first interface: expected 'N: NAME: <FLAGS> ...'")
            current[2].append((number, raw.strip()))
        else:
            raise ParseError(source, number, f"unexpected line {raw.strip()[:60]!r}: expected 'N: NAME: <FLAGS> ...'")
    if current is not None:
        yield current


def infer_kind(name: str, link_type: str | None, flags: tuple[str, ...]) -> str:
    """Guess a link kind without ``-d`` details, from the ``link/TYPE`` and the name.

    Only what the link type proves is used: loopback, ipip, gre, sit and the IPv6
    tunnels have their own link types; ``link/none`` is a TUN device only when
    the name is flannel's (``flannel0``) or ``tunN``, and ``unknown`` otherwise;
    every ``link/ether`` device is ``ethernet``, because bridges, veths and VXLAN
    devices look the same without ``-d``.
    """
    if "LOOPBACK" in flags:
        return "loopback"
    if link_type in LINK_TYPE_KINDS:
        return LINK_TYPE_KINDS[link_type]
    if link_type == "none":
        return "tun" if _TUN_NAME.match(name) else "unknown"
    if link_type in (None, "ether"):
        return "ethernet"
    return "unknown"


def parse_ip_addr(text: str, source: str) -> tuple[Interface, ...]:
    """Parse ``ip addr`` or ``ip -d addr`` text of any iproute2 version into interfaces.

    With ``-d`` the kind and the VXLAN or tunnel details come from the detail
    line; without it the kind is inferred (see :func:`infer_kind`). A peer
    written by name (``veth1@veth1p``) is resolved to its index when that
    interface is in the same output; ``@ifN`` gives the index directly and
    ``@NONE`` means no lower device.
    """
    interfaces: list[Interface] = []
    peer_names: dict[int, str] = {}
    for number, header, body in _split_links(text, source):
        match = _LINK_HEADER.match(header)
        if match is None:
            raise ParseError(source, number, f"invalid interface line {header[:60]!r}: expected 'N: NAME: <FLAGS> mtu N ...'")
        index = int(match.group(1))
        name = match.group(2)
        peer = match.group(3)
        flags = tuple(flag for flag in match.group(4).split(",") if flag)
        values = _link_words(match.group(5))
        if "mtu" not in values:
            raise ParseError(source, number, f"no 'mtu' on the line of {name}")
        link_index: int | None = None
        if peer is not None and peer != "NONE":
            link_index = decimal_value(peer[2:]) if peer.startswith("if") else None
            if link_index is None:
                peer_names[len(interfaces)] = peer

        link_type: str | None = None
        mac: str | None = None
        link_netns: str | None = None
        addresses: list[Address] = []
        details: list[str] = []
        detail_line = number
        for line, content in body:
            words = content.split()
            head = words[0]
            if head.startswith("link/"):
                link_type = head[5:]
                if len(words) > 1:
                    mac = mac_or_none(words[1])
                for position, word in enumerate(words[:-1]):
                    if word in ("link-netns", "link-netnsid"):
                        link_netns = words[position + 1]
            elif head in ("inet", "inet6"):
                addresses.append(_address_from_words(source, line, words, name))
            elif head in ("valid_lft", "altname", "alias", "vf") or head.startswith("prog/"):
                continue
            else:
                if not details:
                    detail_line = line
                details.append(content)

        kind, kind_words = _detail_kind(details)
        vxlan = _vxlan_from_words(source, detail_line, kind_words) if kind == "vxlan" else None
        tunnel = (
            _tunnel_from_words(source, detail_line, kind_words)
            if kind in ("gre", "gretap", "ipip", "sit", "ip6gre", "ip6gretap", "ip6tnl")
            else None
        )
        interfaces.append(Interface(
            name=name,
            index=index,
            kind=kind or infer_kind(name, link_type, flags),
            state=values.get("state", "UNKNOWN"),
            mtu=_number(source, number, "MTU", values["mtu"]),
            flags=flags,
            mac=mac,
            master=values.get("master"),
            link_index=link_index,
            link_netns=link_netns,
            addresses=tuple(addresses),
            vxlan=vxlan,
            tunnel=tunnel,
        ))

    by_name = {interface.name: interface.index for interface in interfaces}
    for position, peer in peer_names.items():
        if peer in by_name:
            interfaces[position] = replace(interfaces[position], link_index=by_name[peer])
    return tuple(interfaces)


# ---------------------------------------------------------------------------
# ip -j addr


def _json_address(source: str, where: str, item: dict[str, Any]) -> Address:
    try:
        family = _family_of(item["family"])  # a string: the caller keeps only "inet" and "inet6" entries
        local = item.get("local") or item["address"]
        prefixlen = item["prefixlen"]
    except (KeyError, ValueError, TypeError) as error:
        raise ParseError(source, None, f"{where}: invalid address entry ({error}): expected family, local and prefixlen") from None
    if not isinstance(local, str):
        raise ParseError(source, None, f"{where}: 'local' is {json.dumps(local)}, expected an address")
    try:
        parse_ip(local)
    except AddressError as error:
        raise ParseError(source, None, f"{where}: invalid address: {error}") from None
    if not isinstance(prefixlen, int) or isinstance(prefixlen, bool) or not 0 <= prefixlen <= (
            32 if family == AF_INET else 128):
        raise ParseError(source, None, f"{where}: 'prefixlen' is {json.dumps(prefixlen)}, expected 0 to "
                                       f"{32 if family == AF_INET else 128}")
    peer = _json_text(source, where, item, "address") if item.get("local") else None
    scope = _json_text(source, where, item, "scope", "global", number=True) or "global"
    if decimal_value(scope) is not None:
        scope = scope_name(int(scope))
    flags = tuple(name for name in ADDRESS_FLAGS if item.get(name) is True)
    _addresses_checked(source, None, f"{where}: ", {"broadcast": item.get("broadcast"), "peer": peer})
    return Address(
        family=family, address=local, prefixlen=prefixlen, scope=scope,
        peer=peer if peer and peer != local else None, broadcast=_json_text(source, where, item, "broadcast"),
        label=_json_text(source, where, item, "label") if family == AF_INET else None, flags=flags,
    )


def parse_ip_addr_json(text: str, source: str) -> tuple[Interface, ...]:
    """Parse ``ip -j -d addr`` (or ``ip -j addr``) output into interfaces."""
    interfaces: list[Interface] = []
    items = _load_json(text, source)
    by_name = {str(item.get("ifname")): item.get("ifindex") for item in items}
    for position, item in enumerate(items):
        where = f"interface entry {position}"
        name = _json_text(source, where, item, "ifname")
        if name is None:
            raise ParseError(source, None, f"{where}: no 'ifname'")
        index = _json_number(source, where, item, "ifindex", low=1, high=2**31 - 1)
        mtu = _json_number(source, where, item, "mtu", high=MAX_MTU)
        flags = tuple(_json_words(source, where, item, "flags"))
        linkinfo = _json_object(source, where, item, "linkinfo")
        kind = _json_text(source, f"{where}, linkinfo", linkinfo, "info_kind")
        data = _json_object(source, f"{where}, linkinfo", linkinfo, "info_data")
        link_index = _json_number(source, where, item, "link_index", -1, low=-1, high=2**31 - 1)
        link = _json_text(source, where, item, "link")
        if link_index < 0 and link in by_name:
            link_index = by_name[link]
        netnsid = _json_text(source, where, item, "link_netnsid" if "link_netnsid" in item else "link_netns",
                             number=True)

        vxlan = None
        tunnel = None
        if kind in ("vxlan", "gre", "gretap", "ipip", "sit", "ip6gre", "ip6gretap", "ip6tnl"):
            _addresses_checked(source, None, f"{where}, info_data: ", {
                name: data.get(name) for name in ("local", "remote", "group", "local6", "remote6", "group6")})
        if kind == "vxlan":
            if "id" not in data:
                raise ParseError(source, None, f"{where}: vxlan info_data without 'id'")
            vxlan = VxlanInfo(
                vni=_json_number(source, f"{where}, info_data", data, "id"), local=data.get("local") or data.get("local6"),
                remote=data.get("remote") or data.get("group") or data.get("remote6") or data.get("group6"),
                port=data.get("port"), dev=data.get("link"), learning=data.get("learning"),
            )
        elif kind in ("gre", "gretap", "ipip", "sit", "ip6gre", "ip6gretap", "ip6tnl"):
            key = data.get("key") or data.get("ikey")
            tunnel = TunnelInfo(
                local=None if data.get("local") in (None, "any") else data["local"],
                remote=None if data.get("remote") in (None, "any") else data["remote"],
                ttl=data.get("ttl"), key=str(key) if key is not None else None,
            )

        interfaces.append(Interface(
            name=name,
            index=index,
            kind=kind or infer_kind(name, item.get("link_type"), flags),
            state=_json_text(source, where, item, "operstate", "UNKNOWN") or "UNKNOWN",
            mtu=mtu,
            flags=flags,
            mac=mac_or_none(_json_text(source, where, item, "address")),
            master=_json_text(source, where, item, "master"),
            link_index=link_index if link_index >= 0 else None,
            link_netns=netnsid,
            addresses=tuple(
                _json_address(source, f"{where} ({name}), address {n}", address)
                for n, address in enumerate(_json_objects(source, where, item, "addr_info"))
                if _json_text(source, f"{where} ({name}), address {n}", address, "family") in ("inet", "inet6")
            ),
            vxlan=vxlan,
            tunnel=tunnel,
        ))
    return tuple(interfaces)


# ---------------------------------------------------------------------------
# ip route (text)


def _logical_route_lines(text: str, source: str) -> Iterator[tuple[int, list[str], list[tuple[int, list[str]]]]]:
    """Yield each route's line number and words, and the line number and words of its ``nexthop`` lines."""
    current: tuple[int, list[str], list[tuple[int, list[str]]]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words:
            continue
        if raw[0].isspace():
            if current is None or words[0] != "nexthop":
                if current is not None:
                    # An error in the route's own line comes first, so the route is yielded before this error is raised.
                    yield current
                raise ParseError(source, number, f"unexpected indented line {raw.strip()[:60]!r}: expected 'nexthop ...' after a route")
            current[2].append((number, words))
            continue
        if current is not None:
            yield current
        current = (number, words, [])
    if current is not None:
        yield current


def _nexthop_from_words(source: str, line: int, words: list[str], family: int) -> NextHop:
    gateway: str | None = None
    dev: str | None = None
    weight = 1
    flags = 0
    position = 1
    while position < len(words):
        word = words[position]
        argument = words[position + 1] if position + 1 < len(words) else None
        if word in ("via", "dev", "weight", "realms", "realm", "encap") and argument is None:
            raise ParseError(source, line, f"'{word}' without a value in a nexthop")
        if word == "via":
            assert argument is not None
            if argument in ("inet", "inet6"):
                raise ParseError(source, line, "a next hop of the other address family (RFC 5549) is not supported")
            _ip(source, line, argument, family)
            gateway = argument
            position += 2
        elif word == "dev":
            dev = argument
            position += 2
        elif word == "weight":
            assert argument is not None
            weight = _number(source, line, "weight", argument)
            if not 1 <= weight <= 256:
                # The kernel stores a next hop's weight less one in a byte.
                raise ParseError(source, line, f"invalid weight {_quoted(argument)}: expected 1 to 256")
            position += 2
        elif word in ("realms", "realm"):
            position += 2
        elif word in _ROUTE_FLAG_BITS:
            flags |= _ROUTE_FLAG_BITS[word]
            position += 1
        elif word in _ROUTE_SKIP_FLAGS:
            position += 1
        else:
            raise ParseError(source, line, f"unknown word {_quoted(word)} in a nexthop line")
    return NextHop(gateway, dev, weight, flags)


#: Fields read from the words after a route's destination: the gateway as written, the device, table, protocol,
#: scope, metric, next-hop id, MTU, flags, the preferred source as written, and whether an IPv6-only keyword
#: (``pref``) was seen.
_RouteTail = tuple["str | None", "str | None", int, str, int, int, int, int, int, "str | None", bool]


def _route_head(source: str, line: int, words: list[str]) -> tuple[int, str, str]:
    """Return the position of the word after the destination, the route type and the destination."""
    position = 0
    route_type = "unicast"
    if words[0] in ROUTE_TYPES:
        route_type = words[0]
        position = 1
    if position >= len(words):
        raise ParseError(source, line, f"'{route_type}' without a destination")
    return position + 1, route_type, words[position]


def _route_tail(source: str, line: int, words: list[str], position: int,
                table_names: Mapping[str, int] | None) -> _RouteTail:
    """Return the fields that the keywords of a route line give, from ``position`` on."""
    table, protocol, scope, metric, flags, nhid, mtu = ROUTE_TABLES["main"], "boot", 0, 0, 0, 0, 0
    gateway: str | None = None
    prefsrc: str | None = None
    dev: str | None = None
    seen_ipv6_only = False
    while position < len(words):
        word = words[position]
        argument = words[position + 1] if position + 1 < len(words) else None
        if word in _ROUTE_FLAG_BITS:
            flags |= _ROUTE_FLAG_BITS[word]
            position += 1
            continue
        if word in _ROUTE_SKIP_FLAGS:
            position += 1
            continue
        if argument is None:
            raise ParseError(source, line, f"'{word}' is not a route keyword or lacks its value")
        if word == "via":
            if argument in ("inet", "inet6"):
                raise ParseError(source, line, "a gateway of the other address family (RFC 5549) is not supported")
            gateway = argument
        elif word == "dev":
            dev = argument
        elif word == "table":
            table = table_number(source, line, argument, table_names)
        elif word == "proto":
            protocol = protocol_text(argument)
        elif word == "scope":
            scope = scope_number(source, line, argument)
        elif word == "src":
            prefsrc = argument
        elif word == "metric":
            metric = _number(source, line, "metric", argument)
        elif word == "nhid":
            nhid = _number(source, line, "nhid", argument)
        elif word == "mtu":
            if argument == "lock":
                if position + 2 >= len(words):
                    raise ParseError(source, line, "'mtu lock' without a value")
                position += 1
                argument = words[position + 1]
            mtu = _number(source, line, "MTU", argument)
        elif word in _ROUTE_SKIP_WITH_VALUE:
            if word == "pref":
                seen_ipv6_only = True
            if argument == "lock":
                position += 1
        elif word == "encap":
            raise ParseError(source, line, "lightweight tunnel routes ('encap') are not supported")
        else:
            raise ParseError(source, line, f"unknown route keyword {_quoted(word)}")
        position += 2
    return gateway, dev, table, protocol, scope, metric, nhid, mtu, flags, prefsrc, seen_ipv6_only


def _route_row(source: str, line: int, route_type: str, destination: str, tail: _RouteTail,
               family: int | None) -> tuple[Any, ...]:
    """Return the fields of a route without next hops, in :class:`Route` order."""
    gateway, dev, table, protocol, scope, metric, nhid, mtu, flags, prefsrc, seen_ipv6_only = tail
    if family is None:
        if ":" in destination or (gateway and ":" in gateway) or (prefsrc and ":" in prefsrc) or seen_ipv6_only:
            family = AF_INET6
        else:
            family = AF_INET
    try:
        parsed_family, dst, dst_len = _cached_prefix(destination, family)
    except AddressError as error:
        raise ParseError(source, line, f"invalid destination: {error}") from None
    return (parsed_family, table, dst, dst_len, ROUTE_TYPES[route_type], protocol, scope, metric,
            _ip(source, line, gateway, parsed_family)[1] if gateway else 0, dev or "",
            _ip(source, line, prefsrc, parsed_family)[1] if prefsrc else 0, flags, nhid, mtu, ())


def _route_from_words(
    source: str, line: int, words: list[str], hops: list[tuple[int, list[str]]],
    family: int | None, table_names: Mapping[str, int] | None, checked: bool = True,
) -> Route:
    """Build the route of one route line and its ``nexthop`` lines, each error naming the line it is on.

    With ``checked``, the numbers of the route line are checked against the
    table's columns before the ``nexthop`` lines are read, so that an error
    names the first invalid line.
    """
    position, route_type, destination = _route_head(source, line, words)
    row = _route_row(source, line, route_type, destination, _route_tail(source, line, words, position, table_names),
                     family)
    if checked:
        _in_range(source, line, RouteTable, row)
    return Route._make((*row[:-1], tuple(_nexthop_from_words(source, number, hop, row[0]) for number, hop in hops)))


def _route_rows(text: str, source: str, family: int | None, table_names: Mapping[str, int] | None) -> list[Any]:
    """Return the fields of every route in ``text``, as :func:`_route_from_words` reads them, without range checks.

    Most routes of a table share the words after their destination and
    gateway: every route of one routing daemon over one device has the same
    ``dev``, ``proto`` and flags. Those words are read once per distinct
    sequence and kept for the routes that repeat them.
    """
    tails: dict[tuple[str, ...], _RouteTail] = {}
    rows: list[Any] = []
    for line, words, hops in _logical_route_lines(text, source):
        if hops:
            rows.append(_route_from_words(source, line, words, hops, family, table_names, checked=False))
            continue
        position, route_type, destination = _route_head(source, line, words)
        gateway = None
        if len(words) > position + 1 and words[position] == "via" and words[position + 1] not in ("inet", "inet6"):
            gateway = words[position + 1]
            position += 2
        key = tuple(words[position:])
        tail = tails.get(key)
        if tail is None:
            tail = tails[key] = _route_tail(source, line, words, position, table_names)
        if gateway is not None and tail[0] is None:
            # A later 'via' in the line overrides this one, as _route_tail reads it.
            tail = (gateway, *tail[1:])
        rows.append(_route_row(source, line, route_type, destination, tail, family))
    return rows


def _in_range(source: str, line: int | None, table: type[Table[Any]], row: _Row) -> _Row:
    """Return ``row`` unless one of its numbers does not fit the table's column."""
    problem = table.out_of_range(row)
    if problem is not None:
        raise ParseError(source, line, problem)
    return row


def parse_ip_route(
    text: str, source: str, *, family: int | None = None, table_names: Mapping[str, int] | None = None
) -> RouteTable:
    """Parse ``ip route``, ``ip route show table all`` or ``ip -6 route`` text into a route table.

    ``family`` is the address family of the capture (4 or 6). When it is None,
    each route's family comes from its addresses, and a bare ``default`` with
    no address and no IPv6-only keyword (``pref``) is taken as IPv4.
    ``table_names`` maps ``rt_tables`` names other than main, local and default.
    """
    with gc_paused():
        # The table's typed arrays range-check every number in one pass. Only when one does
        # not fit, or a later line is invalid, are the lines checked one by one, to name the first bad line.
        try:
            rows = _route_rows(text, source, family, table_names)
        except ParseError as error:
            _check_ranges(text, source, family, table_names, error.line)
            raise
        try:
            table: RouteTable = RouteTable.from_tuples(rows)
        except OverflowError:
            _check_ranges(text, source, family, table_names, None)
            raise
        return table


def _check_ranges(text: str, source: str, family: int | None, table_names: Mapping[str, int] | None,
                  before: int | None) -> None:
    """Raise :class:`ParseError` for the first route that starts before line ``before`` and has an error.

    The error is a number that does not fit the table or, for the route whose
    ``nexthop`` line is ``before``, that line's own error.
    """
    for line, words, hops in _logical_route_lines(text, source):
        if before is not None and line >= before:
            return
        _route_from_words(source, line, words, hops, family, table_names)


# ---------------------------------------------------------------------------
# ip -j route


def _json_route(source: str, where: str, item: dict[str, Any], table_names: Mapping[str, int] | None) -> Route:
    try:
        destination = item["dst"]
    except KeyError:
        raise ParseError(source, None, f"{where}: no 'dst'") from None
    if not isinstance(destination, str):
        raise ParseError(source, None, f"{where}: 'dst' is {json.dumps(destination)}, expected a prefix such as "
                                       "\"10.244.1.0/24\" or \"default\"")
    route_type = _json_text(source, where, item, "type", "unicast") or "unicast"
    if route_type not in ROUTE_TYPES:
        raise ParseError(source, None, f"{where}: unknown route type {_quoted(route_type)}")
    gateway = _json_text(source, where, item, "gateway")
    if gateway is None and isinstance(item.get("via"), dict):
        raise ParseError(source, None, f"{where}: a gateway of the other address family (RFC 5549) is not supported")
    prefsrc = _json_text(source, where, item, "prefsrc")
    family = AF_INET6 if ":" in destination or (gateway and ":" in gateway) or "pref" in item else AF_INET
    try:
        family, dst, dst_len = parse_prefix(destination, family)
    except AddressError as error:
        raise ParseError(source, None, f"{where}: invalid destination: {error}") from None
    flags = 0
    for flag in _json_words(source, where, item, "flags"):
        flags |= _ROUTE_FLAG_BITS.get(flag, 0)
    mtu = 0
    for metric in _json_objects(source, where, item, "metrics"):
        if "mtu" in metric:
            mtu = _json_number(source, f"{where}, metrics", metric, "mtu")
    nexthops = tuple(
        NextHop(
            _json_gateway(source, f"{where}, next hop {n}", hop, family), _json_text(source, f"{where}, next hop {n}", hop, "dev"),
            _json_number(source, f"{where}, next hop {n}", hop, "weight", 1, low=1, high=256),
            sum(_ROUTE_FLAG_BITS.get(flag, 0) for flag in _json_words(source, f"{where}, next hop {n}", hop, "flags")),
        )
        for n, hop in enumerate(_json_objects(source, where, item, "nexthops"))
    )
    scope = _json_text(source, where, item, "scope", "global", number=True) or "global"
    route = Route(
        family=family,
        table=table_number(source, None, _json_text(source, where, item, "table", "main", number=True) or "main",
                           table_names),
        dst=dst,
        dst_len=dst_len,
        type=ROUTE_TYPES[route_type],
        protocol=protocol_text(_json_text(source, where, item, "protocol", "boot", number=True) or "boot"),
        scope=scope_number(source, None, scope),
        metric=_json_number(source, where, item, "metric", 0),
        gateway=_ip(source, None, gateway, family)[1] if gateway else 0,
        dev=_json_text(source, where, item, "dev", "") or "",
        prefsrc=_ip(source, None, prefsrc, family)[1] if prefsrc else 0,
        flags=flags,
        nhid=_json_number(source, where, item, "nhid", 0),
        mtu=mtu,
        nexthops=nexthops,
    )
    return _in_range(source, None, RouteTable, route)


def _json_route_rows(
    source: str, items: list[dict[str, Any]], table_names: Mapping[str, int] | None
) -> list[tuple[Any, ...]]:
    """Convert ``ip -j route`` entries to plain row tuples with the values :func:`_json_route` gives.

    Entries without ``via``, ``metrics`` and ``nexthops`` are converted here,
    with IPv4 destinations parsed inline and the text of tables, protocols,
    scopes and gateways looked up once per distinct value. The others, and
    entries whose ``dev`` is not a string, go through :func:`_json_route`.
    Nothing is range-checked here, and an invalid
    value may raise any exception: the caller then reruns :func:`_json_route`
    on every entry, which raises the error of the first invalid entry.
    """
    tables: dict[str, int] = {}
    protocols: dict[str, str] = {}
    scopes: dict[str, int] = {}
    addresses: dict[int, dict[str, int]] = {AF_INET: {}, AF_INET6: {}}
    route_types = ROUTE_TYPES
    flag_bits = _ROUTE_FLAG_BITS
    from_bytes = int.from_bytes
    rows: list[tuple[Any, ...]] = []
    append = rows.append

    for item in items:
        get = item.get
        dev = get("dev", "")
        # Metrics and next hops are rare, and read as _json_route reads them.
        if "via" in item or "metrics" in item or "nexthops" in item or type(dev) is not str:
            # An error raised here is raised again, with the entry's position, by the caller's rerun.
            append(_json_route(source, "route entry", item, table_names))
            continue

        destination = item["dst"]
        gateway, prefsrc = get("gateway"), get("prefsrc")
        if (gateway is not None and gateway.__class__ is not str) or (prefsrc is not None and prefsrc.__class__ is not str):
            raise TypeError("gateway")
        if ":" in destination or (gateway and ":" in gateway) or "pref" in item:
            family, dst, dst_len = parse_prefix(destination, AF_INET6)
        else:
            network, slash, length = destination.partition("/")
            if slash:
                # The IPv4 case of parse_prefix, inline, as strict as parse_ip.
                family, dst, dst_len = AF_INET, from_bytes(inet_pton(SOCKET_AF_INET, network), "big"), int(length)
                if not 0 <= dst_len <= 32 or not (length.isdigit() and length.isascii()):
                    raise ValueError(destination)
            else:
                family, dst, dst_len = parse_prefix(destination, AF_INET)

        known = addresses[family]
        gateway_value = 0
        if gateway:
            gateway_value = known.get(gateway, -1)
            if gateway_value < 0:
                gateway_value = known[gateway] = _ip(source, None, gateway, family)[1]
        prefsrc_value = 0
        if prefsrc:
            prefsrc_value = known.get(prefsrc, -1)
            if prefsrc_value < 0:
                prefsrc_value = known[prefsrc] = _ip(source, None, prefsrc, family)[1]

        table = get("table", "main")
        table_id = tables.get(table)
        if table_id is None:
            table_id = tables[table] = table_number(source, None, table, table_names)
        protocol = get("protocol", "boot")
        protocol_label = protocols.get(protocol)
        if protocol_label is None:
            protocol_label = protocols[protocol] = protocol_text(protocol)
        scope = get("scope", "global")
        scope_id = scopes.get(scope)
        if scope_id is None:
            scope_id = scopes[scope] = scope_number(source, None, scope)
        flags = 0
        route_flags = get("flags", ())
        if route_flags != ():
            if route_flags.__class__ is not list:
                raise TypeError("flags")
            for flag in route_flags:
                if flag.__class__ is not str:
                    raise TypeError("flags")
                flags |= flag_bits.get(flag, 0)
        metric, nhid = get("metric", 0), get("nhid", 0)
        if metric.__class__ is not int or nhid.__class__ is not int or not 0 <= metric <= _U32_MAX:
            raise TypeError("metric")

        append((
            family, table_id, dst, dst_len, route_types[get("type", "unicast")], protocol_label, scope_id,
            metric, gateway_value, dev, prefsrc_value, flags, nhid, 0, (),
        ))
    return rows


def parse_ip_route_json(text: str, source: str, *, table_names: Mapping[str, int] | None = None) -> RouteTable:
    """Parse ``ip -j [-d] [-6] route show table all`` output into a route table.

    The entries are converted to plain tuples, and the table is built column by
    column (:meth:`~netdoctor.model.table.Table.from_tuples`) with the garbage
    collector paused. On the 111,000 routes of ``benchmarks/bench_collect.py``
    this took 0.6 s of CPU time, ``json.loads`` included, against 1.7 s for one
    :class:`Route` per entry. When the fast path raises, every entry is parsed
    again one :class:`Route` at a time, so the error names the first invalid
    entry exactly as that slower path does.
    """
    with gc_paused():
        items = _load_json(text, source)
        try:
            return RouteTable.from_tuples(_json_route_rows(source, items, table_names))
        except (ParseError, KeyError, ValueError, TypeError, AttributeError, OverflowError, OSError):
            pass
        routes = []
        for position, item in enumerate(items):
            try:
                routes.append(_json_route(source, f"route entry {position}", item, table_names))
            except ParseError as error:
                raise _named(error, source, f"route entry {position}") from None
        return RouteTable.from_rows(routes)


# ---------------------------------------------------------------------------
# ip neigh


def _neighbour(
    source: str, line: int | None, dst: str, dev: str | None, lladdr: str | None, states: list[str], router: bool
) -> Neighbour:
    family, value = _ip(source, line, dst)
    if dev is None:
        raise ParseError(source, line, f"neighbour {dst} without 'dev'")
    state = 0
    for name in states:
        if name not in NUD_STATES:
            raise ParseError(source, line, f"unknown neighbour state {_quoted(name)}")
        state |= NUD_STATES[name]
    mac = 0
    if lladdr:
        try:
            mac = parse_mac(lladdr)
        except AddressError:
            # Tunnel neighbours (ipip, gre) carry an IPv4 link-layer address, which the model does not keep.
            mac = 0
    neighbour = Neighbour(family=family, dst=value, dev=dev, lladdr=mac, state=state, router=int(router))
    return _in_range(source, line, NeighbourTable, neighbour)


def parse_ip_neigh(text: str, source: str) -> NeighbourTable:
    """Parse ``ip neigh`` text (best captured as ``ip neigh show nud all``) into a neighbour table."""
    rows: list[Neighbour] = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words:
            continue
        dev: str | None = None
        lladdr: str | None = None
        router = False
        states: list[str] = []
        position = 1
        while position < len(words):
            word = words[position]
            if word in ("dev", "lladdr", "proto", "probes", "used", "vni", "nhid"):
                if position + 1 >= len(words):
                    raise ParseError(source, number, f"'{word}' without a value")
                if word == "dev":
                    dev = words[position + 1]
                elif word == "lladdr":
                    lladdr = words[position + 1]
                position += 2
            elif word == "router":
                router = True
                position += 1
            elif word in ("proxy", "extern_learn", "offload", "managed", "protocol"):
                position += 1
            elif word in NUD_STATES:
                states.append(word)
                position += 1
            else:
                raise ParseError(source, number, f"unknown word {_quoted(word)} in a neighbour entry")
        rows.append(_neighbour(source, number, words[0], dev, lladdr, states, router))
    return NeighbourTable.from_rows(rows)


def parse_ip_neigh_json(text: str, source: str) -> NeighbourTable:
    """Parse ``ip -j neigh`` output into a neighbour table."""
    rows: list[Neighbour] = []
    for position, item in enumerate(_load_json(text, source)):
        where = f"neighbour entry {position}"
        destination = _json_text(source, where, item, "dst")
        if destination is None:
            raise ParseError(source, None, f"{where}: no 'dst'")
        try:
            rows.append(_neighbour(
                source, None, destination, _json_text(source, where, item, "dev"),
                _json_text(source, where, item, "lladdr"), _json_words(source, where, item, "state"), "router" in item,
            ))
        except ParseError as error:
            raise _named(error, source, where) from None
    return NeighbourTable.from_rows(rows)


# ---------------------------------------------------------------------------
# bridge fdb

#: ``bridge fdb`` state words. A learned entry in NUD_REACHABLE prints no word.
_FDB_STATES = {"permanent": NUD_STATES["PERMANENT"], "static": NUD_STATES["NOARP"], "stale": NUD_STATES["STALE"]}
_FDB_VALUE_WORDS = ("dev", "dst", "vlan", "vni", "port", "master", "src_vni", "via", "nhid", "used", "updated")


def _fdb_entry(source: str, line: int | None, values: dict[str, str], flags: int, state: int) -> FdbEntry:
    try:
        mac = parse_mac(values["mac"])
    except AddressError as error:
        raise ParseError(source, line, str(error)) from None
    if "dev" not in values:
        raise ParseError(source, line, f"FDB entry {values['mac']} without 'dev'")
    family, dst = _ip(source, line, values["dst"]) if "dst" in values else (0, 0)
    entry = FdbEntry(
        mac=mac, dev=values["dev"], master=values.get("master", ""), family=family, dst=dst,
        vlan=_number(source, line, "VLAN", values["vlan"]) if "vlan" in values else 0,
        vni=_number(source, line, "VNI", values["vni"]) if "vni" in values else 0,
        port=_number(source, line, "port", values["port"]) if "port" in values else 0,
        state=state, flags=flags,
    )
    return _in_range(source, line, FdbTable, entry)


def parse_bridge_fdb(text: str, source: str) -> FdbTable:
    """Parse ``bridge fdb`` text into an FDB table.

    An entry without a state word is a learned entry in ``NUD_REACHABLE``.
    """
    rows: list[FdbEntry] = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words:
            continue
        values = {"mac": words[0]}
        flags = 0
        state: int | None = None
        position = 1
        while position < len(words):
            word = words[position]
            following = words[position + 1] if position + 1 < len(words) else None
            if word == "master" and (following is None or following in FDB_FLAGS or following in _FDB_STATES):
                # A bare ``master`` is the NTF_MASTER flag, not the bridge name.
                flags |= NTF_MASTER
                position += 1
            elif word in _FDB_VALUE_WORDS:
                if following is None:
                    raise ParseError(source, number, f"'{word}' without a value")
                values[word] = following
                position += 2
            elif word in FDB_FLAGS:
                flags |= FDB_FLAGS[word]
                position += 1
            elif word in _FDB_STATES:
                state = (state or 0) | _FDB_STATES[word]
                position += 1
            elif word.startswith("state="):
                state = _number(source, number, "state", word[6:])
                position += 1
            else:
                raise ParseError(source, number, f"unknown word {_quoted(word)} in an FDB entry")
        rows.append(_fdb_entry(source, number, values, flags, NUD_STATES["REACHABLE"] if state is None else state))
    return FdbTable.from_rows(rows)


def parse_bridge_fdb_json(text: str, source: str) -> FdbTable:
    """Parse ``bridge -j fdb`` output into an FDB table."""
    rows: list[FdbEntry] = []
    for position, item in enumerate(_load_json(text, source)):
        where = f"FDB entry {position}"
        mac, device = _json_text(source, where, item, "mac"), _json_text(source, where, item, "ifname")
        if mac is None or device is None:
            raise ParseError(source, None, f"{where}: expected 'mac' and 'ifname'")
        values = {"mac": mac, "dev": device}
        for key in ("dst", "vlan", "vni", "port", "master"):
            value = _json_text(source, where, item, key, number=key in ("vlan", "vni", "port"))
            if value is not None:
                values[key] = value
        flags = 0
        for flag in _json_words(source, where, item, "flags"):
            flags |= FDB_FLAGS.get(flag, 0)
        state_text = _json_text(source, where, item, "state", "") or ""
        if not state_text:
            state = NUD_STATES["REACHABLE"]
        elif state_text in _FDB_STATES:
            state = _FDB_STATES[state_text]
        elif state_text.startswith("state="):
            state = _number(source, None, "state", state_text[6:])
        else:
            raise ParseError(source, None, f"FDB entry {position}: unknown state {_quoted(state_text)}")
        try:
            rows.append(_fdb_entry(source, None, values, flags, state))
        except ParseError as error:
            raise _named(error, source, where) from None
    return FdbTable.from_rows(rows)


__all__ = [
    "ADDRESS_FLAGS", "FDB_FLAGS", "ROUTE_PROTOCOLS", "parse_bridge_fdb", "parse_bridge_fdb_json",
    "parse_ip_addr", "parse_ip_addr_json", "parse_ip_neigh", "parse_ip_neigh_json", "parse_ip_route",
    "parse_ip_route_json", "protocol_text", "scope_name", "scope_number", "table_number",
]
