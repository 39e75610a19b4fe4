"""Parser of net-tools ``ifconfig`` output, for nodes where iproute2 output was not captured.

``ifconfig`` reports less than ``ip addr``, so some fields are approximations:

* ``index`` is 0, because ifconfig does not print interface indexes;
* ``state`` is ``UP`` when the RUNNING flag is set and ``DOWN`` otherwise,
  because ifconfig does not print the operstate;
* the flags are renamed to ``ip link`` names: RUNNING becomes LOWER_UP, and an
  interface that is UP but not RUNNING also gets NO-CARRIER;
* the kind is ``loopback``, ``ethernet``, ``tun`` (only for ``flannelN`` and
  ``tunN`` devices without a hardware address) or ``unknown``.
"""

from __future__ import annotations

import logging
import re

from netdoctor.capture import ParseError
from netdoctor.capture.iproute import infer_kind, mac_or_none
from netdoctor.model.addr import AF_INET, AF_INET6, AddressError, parse_ip
from netdoctor.model.node import Address, Interface
from netdoctor.model.table import decimal_value

logger = logging.getLogger(__name__)

_NEW_HEADER = re.compile(r"^(\S+?):\s+flags=\d+<([^>]*)>\s+mtu\s+(\d+)")
_OLD_HEADER = re.compile(r"^(\S+)\s+Link encap:(.*?)(?:\s+HWaddr\s+(\S+))?\s*$")
_OLD_FLAGS = re.compile(r"^((?:[A-Z]+\s+)*[A-Z]+)\s+MTU:(\d+)")


def _netmask_length(source: str, line: int, mask: str) -> int:
    try:
        family, value = parse_ip(mask)
    except AddressError:
        raise ParseError(source, line, f"invalid netmask {mask!r}: expected a dotted quad such as 255.255.255.0") from None
    bits = f"{value:032b}"
    if family != AF_INET or "01" in bits:
        raise ParseError(source, line, f"invalid netmask {mask!r}: the one bits must be contiguous")
    return bits.count("1")


def _ip_flags(names: list[str]) -> tuple[str, ...]:
    flags = [name for name in names if name != "RUNNING"]
    if "RUNNING" in names:
        flags.append("LOWER_UP")
    elif "UP" in names:
        flags.insert(0, "NO-CARRIER")
    return tuple(flags)


def _after(words: list[str], key: str) -> str | None:
    """Return the word after ``key`` or the value of ``key:value``."""
    for position, word in enumerate(words):
        if word == key and position + 1 < len(words):
            return words[position + 1]
        if word.startswith(key + ":") and len(word) > len(key) + 1:
            return word[len(key) + 1:]
    return None


def _address(source: str, line: int, words: list[str], ifname: str) -> Address | None:
    """Parse one ``inet``/``inet6`` line of either format; None for a line without an address."""
    family = AF_INET if words[0] == "inet" else AF_INET6
    if family == AF_INET:
        local = _after(words, "addr") or (words[1] if len(words) > 1 and ":" not in words[1] else None)
        if local is None:
            raise ParseError(source, line, f"'inet' without an address on {ifname}")
        mask = _after(words, "Mask") or _after(words, "netmask")
        broadcast = _after(words, "Bcast") or _after(words, "broadcast")
        peer = _after(words, "P-t-P") or _after(words, "destination")
        plen = _netmask_length(source, line, mask) if mask else 32
    else:
        text = _after(words, "addr:") if "addr:" in words else words[1] if len(words) > 1 else None
        if text is None:
            raise ParseError(source, line, f"'inet6' without an address on {ifname}")
        local, slash, length = text.partition("/")
        length = length if slash else (_after(words, "prefixlen") or "128")
        length_value = decimal_value(length)
        if length_value is None:
            raise ParseError(source, line, f"invalid IPv6 prefix length {length!r} on {ifname}")
        plen = length_value
        broadcast = peer = None
    try:
        parsed_family, _ = parse_ip(local)
    except AddressError as error:
        raise ParseError(source, line, str(error)) from None
    if parsed_family != family:
        raise ParseError(source, line, f"{local!r} is not an IPv{family} address")
    if not 0 <= plen <= (32 if family == AF_INET else 128):
        raise ParseError(source, line, f"prefix length {plen} of {local!r} on {ifname} is out of range (0 to "
                                       f"{32 if family == AF_INET else 128})")
    for name, value in (("broadcast", broadcast), ("peer", peer)):
        try:
            if value is not None and parse_ip(value)[0] != family:
                raise AddressError(f"{value!r} is not an IPv{family} address")
        except AddressError as error:
            raise ParseError(source, line, f"{name} address of {ifname}: {error}") from None
    scope_text = (_after(words, "Scope") or _after(words, "scopeid") or "global").lower()
    scope = "link" if "link" in scope_text else "host" if "host" in scope_text else "site" if "site" in scope_text else "global"
    return Address(
        family=family, address=local, prefixlen=plen, scope=scope, peer=peer,
        broadcast=broadcast, label=ifname if family == AF_INET else None,
    )


def parse_ifconfig(text: str, source: str) -> tuple[Interface, ...]:
    """Parse ``ifconfig -a`` output, old (``inet addr:``) or new (``inet ... netmask``) format."""
    interfaces: list[Interface] = []
    current: dict[str, object] | None = None
    addresses: list[Address] = []

    def finish() -> None:
        if current is None:
            return
        if "mtu" not in current:
            raise ParseError(source, int(str(current["line"])), f"no MTU for {current['name']}")
        flags = _ip_flags(list(current.get("flags", [])))  # type: ignore[call-overload]
        name = str(current["name"])
        mac = mac_or_none(current.get("mac"))  # type: ignore[arg-type]
        link_type = "ether" if mac else "none"
        interfaces.append(Interface(
            name=name, index=0, kind=infer_kind(name, link_type, flags),
            state="UP" if "LOWER_UP" in flags else "DOWN", mtu=int(str(current["mtu"])), flags=flags,
            mac=mac, addresses=tuple(addresses),
        ))

    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        if not raw[0].isspace():
            finish()
            addresses = []
            new = _NEW_HEADER.match(raw)
            old = _OLD_HEADER.match(raw)
            if new:
                current = {"line": number, "name": new.group(1), "flags": new.group(2).split(","), "mtu": new.group(3)}
            elif old:
                current = {"line": number, "name": old.group(1), "mac": old.group(3)}
            else:
                raise ParseError(source, number, f"invalid interface line {raw[:60]!r}: expected 'NAME: flags=...' or 'NAME Link encap:...'")
            continue
        if current is None:
            raise ParseError(source, number, "indented line before the first interface")
        words = raw.split()
        old_flags = _OLD_FLAGS.match(raw.strip())
        if words[0] in ("inet", "inet6"):
            address = _address(source, number, words, str(current["name"]))
            if address is not None:
                addresses.append(address)
        elif words[0] == "ether":
            current["mac"] = words[1] if len(words) > 1 else None
        elif old_flags:
            current["flags"] = old_flags.group(1).split()
            current["mtu"] = old_flags.group(2)
    finish()
    return tuple(interfaces)
