"""IP and MAC address helpers shared by the model, the parsers and the checks.

Addresses are kept as ``(family, int)`` pairs inside the columnar tables, because
integers compare, sort and mask cheaply; they are formatted back to the text that
iproute2 prints when a row is materialized or written to JSON.
"""

from __future__ import annotations

# The C functions that the socket module re-exports: importing socket itself builds its enum
# classes, which costs more than the rest of this package's model.
from _socket import AF_INET as _SOCKET_AF_INET
from _socket import AF_INET6 as _SOCKET_AF_INET6
from _socket import inet_ntoa, inet_ntop, inet_pton
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ipaddress

AF_INET = 4
AF_INET6 = 6

_WIDTH = {AF_INET: 32, AF_INET6: 128}


#: Maximum length of a value that error messages quote whole. A longer value is cut, and its length given.
QUOTED_LIMIT = 40


class AddressError(ValueError):
    """An IP address, prefix or MAC address that cannot be parsed."""


def quoted_text(text: str, limit: int = QUOTED_LIMIT) -> str:
    """Return ``text`` quoted for a message, cut after ``limit`` characters with its full length given."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def width(family: int) -> int:
    """Return the address width in bits of an address family (4 or 6)."""
    return _WIDTH[family]


def _v6(text: str) -> int:
    try:
        return int.from_bytes(inet_pton(_SOCKET_AF_INET6, text), "big")
    except (OSError, ValueError):
        raise AddressError(f"invalid IP address {quoted_text(text)}") from None


def parse_ip(text: str) -> tuple[int, int]:
    """Parse an IPv4 or IPv6 address into ``(family, value)``.

    An IPv4 address is four decimal numbers and nothing else, as iproute2 prints
    it. ``inet_aton`` would also read ``10.4`` as 10.0.0.4, ``010.0.0.1`` as
    8.0.0.1 (octal) and ``167772161`` as 10.0.0.1, so a typing error in a
    capture or a snapshot would become another address instead of an error.
    """
    if ":" in text:
        return AF_INET6, _v6(text)
    try:
        return AF_INET, int.from_bytes(inet_pton(_SOCKET_AF_INET, text), "big")
    except (OSError, ValueError):
        raise AddressError(f"invalid IP address {quoted_text(text)}") from None


def parse_prefix(text: str, family: int | None = None) -> tuple[int, int, int]:
    """Parse ``ADDR[/LEN]`` or ``default`` into ``(family, network, prefix length)``.

    A bare address is a host prefix (/32 or /128). Host bits are kept as written,
    because ``ip route`` shows the destination as the kernel stores it.
    """
    if text in ("default", "any", "all"):
        fam = family or AF_INET
        return fam, 0, 0
    addr, sep, length = text.partition("/")
    fam, value = parse_ip(addr)
    if family is not None and fam != family:
        raise AddressError(f"{quoted_text(text)} is not an IPv{family} prefix")
    if not sep:
        return fam, value, _WIDTH[fam]
    # int() would also take spaces, a sign, underscores and non-ASCII digits.
    if not (length.isdigit() and length.isascii()):
        raise AddressError(f"invalid prefix length in {quoted_text(text)}")
    plen = int(length)
    if not 0 <= plen <= _WIDTH[fam]:
        raise AddressError(f"prefix length out of range in {quoted_text(text)}")
    return fam, value, plen


def masked_address(text: str) -> tuple[int, int, int] | None:
    """Return ``(family, network, mask)`` of ``ADDRESS/MASK`` with a mask written as an address, else None.

    iptables-save writes a mask that is no prefix length, such as
    ``10.0.0.0/255.0.255.0``, that way.
    """
    address, slash, mask = text.partition("/")
    if not slash or ("." not in mask and ":" not in mask):
        return None
    try:
        family, network = parse_ip(address)
        mask_family, mask_value = parse_ip(mask)
    except AddressError:
        return None
    return (family, network & mask_value, mask_value) if family == mask_family else None


def check_rule_address(text: str) -> None:
    """Raise :class:`AddressError` unless ``text`` is an iptables ``-s`` or ``-d`` value.

    Each comma-separated part, as iptables-restore takes them, must be a
    prefix, an address, or an address with a mask (:func:`masked_address`).
    """
    for part in text.split(","):
        try:
            parse_prefix(part)
        except AddressError:
            if masked_address(part) is None:
                raise


@lru_cache(maxsize=65536)
def format_ip(family: int, value: int) -> str:
    """Format an address as iproute2 prints it."""
    if family == AF_INET:
        return inet_ntoa(value.to_bytes(4, "big"))
    return inet_ntop(_SOCKET_AF_INET6, value.to_bytes(16, "big"))


def format_prefix(family: int, value: int, plen: int) -> str:
    """Format a prefix as ``ADDR/LEN``; a host prefix keeps its length too."""
    return f"{format_ip(family, value)}/{plen}"


def network_of(family: int, value: int, plen: int) -> int:
    """Return the network address of ``value`` with the host bits cleared."""
    bits = _WIDTH[family]
    return value >> (bits - plen) << (bits - plen) if plen else 0


def last_of(family: int, value: int, plen: int) -> int:
    """Return the last address of the prefix that contains ``value``."""
    bits = _WIDTH[family]
    return network_of(family, value, plen) | ((1 << (bits - plen)) - 1)


def contains(family: int, net: int, plen: int, other_family: int, other: int, other_plen: int) -> bool:
    """Tell whether prefix ``net/plen`` contains prefix ``other/other_plen``."""
    if family != other_family or other_plen < plen:
        return False
    return network_of(family, other, plen) == network_of(family, net, plen)


def overlaps(family: int, a: int, alen: int, other_family: int, b: int, blen: int) -> bool:
    """Tell whether two prefixes share at least one address."""
    if family != other_family:
        return False
    shorter = min(alen, blen)
    return network_of(family, a, shorter) == network_of(family, b, shorter)


def parse_mac(text: str) -> int:
    """Parse a colon-separated MAC address into a 48-bit integer."""
    parts = text.split(":")
    if len(parts) != 6:
        raise AddressError(f"invalid MAC address {quoted_text(text)}")
    try:
        value = 0
        for part in parts:
            octet = int(part, 16)
            if not 0 <= octet <= 255 or not 1 <= len(part) <= 2:
                raise ValueError
            value = value << 8 | octet
    except ValueError:
        raise AddressError(f"invalid MAC address {quoted_text(text)}") from None
    return value


def format_mac(value: int) -> str:
    """Format a 48-bit MAC address as lower-case colon-separated hex."""
    raw = value.to_bytes(6, "big")
    return ":".join(f"{octet:02x}" for octet in raw)


def ip_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse a CIDR leniently (host bits allowed), for configuration values such as leases."""
    import ipaddress  # few snapshots need it, and importing it takes about 1 ms

    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise AddressError(f"invalid CIDR {quoted_text(text)}") from None
