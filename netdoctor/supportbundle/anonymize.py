"""Replace IP addresses, MAC addresses and host names in bundle text, consistently and reversibly.

IP addresses go through a keyed prefix-preserving map in the manner of
Crypto-PAn (Xu, Fan, Ammar and Moon, 2002): bit ``i`` of the output is bit ``i``
of the input XOR one pseudo-random bit computed from the key and the input's
first ``i`` bits. Two addresses that share their first ``n`` bits therefore
share the first ``n`` bits of their images, for every ``n``, so overlaps,
routes, leases and "is this address inside that subnet" all diagnose alike.
The pseudo-random bit is the first bit of a keyed BLAKE2b digest.

Three rules keep addresses meaningful:

* Special ranges keep their value: 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16,
  224.0.0.0/4 (multicast), 240.0.0.0/4 (255.255.255.255 and netmasks), and
  ::/127, ::ffff:0:0/96 (whose IPv4 part is mapped as IPv4 when written dotted)
  and ff00::/8. Fe80::/10 keeps its first 64 bits. No flip happens at a
  tree node above a special range, so an ordinary address never maps into one.
* The last 8 bits of every address pass through unchanged. A network address
  written without its length (flannel's ``172.16.1.0/32`` on ``flannel.1`` for
  the lease ``172.16.1.0-24``) so stays the network address of its image. An
  address written with a length (``/24``, or ``-24`` in etcd keys) has its host
  bits cleared after mapping.

MAC addresses map to stable locally administered unicast addresses;
multicast and broadcast MACs are kept. Host and node names map to tokens
``host-<8 hex digits>``. MAC and name maps are one-way hashes, so
:meth:`Anonymizer.mapping` returns them for the owner to keep beside the bundle.
IP addresses are reversed with the key alone.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Bytes of a generated key.
KEY_BYTES = 32

#: Trailing bits of an address that pass through unchanged (see the module docstring).
PASSTHROUGH_BITS = 8


@dataclass(frozen=True, slots=True)
class _Range:
    """An address range whose first ``length`` bits are kept; bits from ``free_from`` on may still change."""

    network: int
    length: int
    free_from: int


def _ranges(bits: int, items: Iterable[tuple[str, int | None]]) -> tuple[_Range, ...]:
    ranges = []
    for text, free_from in items:
        network = ipaddress.ip_network(text)
        ranges.append(_Range(int(network.network_address), network.prefixlen, bits if free_from is None else free_from))
    return tuple(ranges)


_IPV4_RANGES = _ranges(32, [
    ("0.0.0.0/8", None), ("127.0.0.0/8", None), ("169.254.0.0/16", None),
    ("224.0.0.0/4", None), ("240.0.0.0/4", None),
])  # fmt: skip
_IPV6_RANGES = _ranges(128, [("::/127", None), ("::ffff:0:0/96", None), ("ff00::/8", None), ("fe80::/10", 64)])

# An IPv4 address with one separator used throughout: dotted, dashed (ip-10-0-0-52, etcd's
# 172.16.1.0-24) or underscored (BIRD's Mesh_10_0_0_52), and an optional /len or -len after it.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(
    rf"(?<![\d.])(?P<a>{_OCTET})(?P<sep>[._-])(?P<b>{_OCTET})(?P=sep)(?P<c>{_OCTET})(?P=sep)(?P<d>{_OCTET})"
    r"(?![\d]|\.\d)(?:(?P<lensep>[/-])(?P<len>3[0-2]|[12]?\d)(?![\d.]))?"
)
_IPV6 = re.compile(
    r"(?<![0-9A-Fa-f:.])(?P<addr>[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![0-9A-Fa-f:.])"
    r"(?:/(?P<len>12[0-8]|1[01]\d|[1-9]?\d)(?!\d))?"
)
_MAC = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:])")
_TOKEN = re.compile(r"host-[0-9a-f]{8}")


class AnonymizeError(ValueError):
    """An invalid key or mapping file; the message names the value and what to do."""


def new_key() -> str:
    """Return a random key as hex text."""
    return secrets.token_hex(KEY_BYTES)


def parse_key(text: str) -> bytes:
    """Decode a hex key; raise :class:`AnonymizeError` for anything else."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise AnonymizeError("the anonymization key must be hex digits, as printed by 'netdoctor bundle --anonymize'") from None
    if len(key) < 16:
        raise AnonymizeError(f"the anonymization key has {len(key)} bytes; give at least 16 (32 hex digits)")
    return key


class _PrefixMap:
    """The prefix-preserving map of one address family."""

    def __init__(self, key: bytes, family: bytes, bits: int, ranges: tuple[_Range, ...]) -> None:
        self._key = hashlib.blake2b(key=key[:64], digest_size=32, person=b"netdoctor-ip" + family).digest()
        self._bits = bits
        self._ranges = ranges
        self._flips: dict[tuple[int, int], int] = {}
        self._forward: dict[int, int] = {}

    def _fixed_depth(self, depth: int, prefix: int) -> bool:
        """Tell whether the bit after ``prefix`` (``depth`` bits long) must not flip."""
        if depth >= self._bits - PASSTHROUGH_BITS:
            return True
        for item in self._ranges:
            if depth < item.length:
                # An ancestor of a special range: flipping here could move an address into or out of it.
                if prefix == item.network >> (self._bits - depth):
                    return True
            elif prefix >> (depth - item.length) == item.network >> (self._bits - item.length):
                return depth < item.free_from
        return False

    def _flip(self, depth: int, prefix: int) -> int:
        cached = self._flips.get((depth, prefix))
        if cached is not None:
            return cached
        if self._fixed_depth(depth, prefix):
            bit = 0
        else:
            digest = hashlib.blake2b(
                depth.to_bytes(1, "big") + prefix.to_bytes(self._bits // 8, "big"), key=self._key, digest_size=1
            ).digest()
            bit = digest[0] >> 7
        self._flips[(depth, prefix)] = bit
        return bit

    def forward(self, value: int) -> int:
        """Map one address (as an integer)."""
        cached = self._forward.get(value)
        if cached is not None:
            return cached
        result = 0
        for depth in range(self._bits):
            shift = self._bits - 1 - depth
            bit = (value >> shift) & 1
            result = (result << 1) | (bit ^ self._flip(depth, value >> (shift + 1)))
        self._forward[value] = result
        return result

    def reverse(self, value: int) -> int:
        """Undo :meth:`forward`: each flip depends only on the original bits already recovered."""
        original = 0
        for depth in range(self._bits):
            shift = self._bits - 1 - depth
            bit = (value >> shift) & 1
            original = (original << 1) | (bit ^ self._flip(depth, original))
        return original


class Anonymizer:
    """Maps addresses and names in text, the same way in every file of one bundle."""

    def __init__(self, key: bytes, names: Iterable[str] = ()) -> None:
        self._key = key
        self._ipv4 = _PrefixMap(key, b"4", 32, _IPV4_RANGES)
        self._ipv6 = _PrefixMap(key, b"6", 128, _IPV6_RANGES)
        self._macs: dict[str, str] = {}
        self._mac_images: set[str] = set()
        self._names: dict[str, str] = {}
        self._name_pattern: re.Pattern[str] | None = None
        for name in names:
            self.add_name(name)

    # -- names

    def add_name(self, name: str) -> str:
        """Register a host or node name and return its token."""
        if not name:
            return name
        token = self._names.get(name)
        if token is None:
            digest = hashlib.blake2b(name.encode(), key=self._key[:64], digest_size=4, person=b"netdoctor-name").hexdigest()
            token = f"host-{digest}"
            self._names[name] = token
            self._name_pattern = None
        return token

    def map_name(self, name: str) -> str:
        """Return the token of a registered name, or the name unchanged when it is not registered."""
        return self._names.get(name, name)

    def _names_regex(self) -> re.Pattern[str] | None:
        if not self._names:
            return None
        if self._name_pattern is None:
            alternatives = "|".join(re.escape(name) for name in sorted(self._names, key=len, reverse=True))
            self._name_pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")
        return self._name_pattern

    # -- addresses

    def map_ipv4(self, address: str) -> str:
        """Map one dotted IPv4 address."""
        return str(ipaddress.IPv4Address(self._ipv4.forward(int(ipaddress.IPv4Address(address)))))

    def map_ipv6(self, address: str) -> str:
        """Map one IPv6 address; an embedded dotted IPv4 tail is mapped as IPv4 by :meth:`text`."""
        return str(ipaddress.IPv6Address(self._ipv6.forward(int(ipaddress.IPv6Address(address)))))

    def map_mac(self, mac: str) -> str:
        """Map one colon-separated MAC to a stable locally administered unicast MAC."""
        lower = mac.lower()
        first = int(lower[:2], 16)
        if first & 1 or lower in ("00:00:00:00:00:00",):
            return mac  # multicast, broadcast and the zero MAC carry no identity
        cached = self._macs.get(lower)
        if cached is not None:
            return cached
        counter = 0
        while True:
            digest = hashlib.blake2b(
                lower.encode() + counter.to_bytes(2, "big"), key=self._key[:64], digest_size=6, person=b"netdoctor-mac"
            ).digest()
            image = ":".join(f"{byte:02x}" for byte in bytes([(digest[0] & 0xFC) | 0x02]) + digest[1:])
            if image not in self._mac_images and image != lower:
                break
            counter += 1
        self._macs[lower] = image
        self._mac_images.add(image)
        return image

    # -- text

    def text(self, text: str) -> str:
        """Replace every registered name, MAC and IP address in ``text``."""
        names = self._names_regex()
        if names is not None:
            text = names.sub(lambda match: self._names[match.group(0)], text)
        text = _MAC.sub(lambda match: self.map_mac(match.group(0)), text)
        text = _IPV6.sub(self._replace_ipv6, text)
        return _IPV4.sub(self._replace_ipv4, text)

    def _replace_ipv4(self, match: re.Match[str]) -> str:
        separator = match.group("sep")
        value = int(ipaddress.IPv4Address(".".join(match.group(part) for part in "abcd")))
        image = self._ipv4.forward(value)
        length = match.group("len")
        # After a dashed address a -NN is another word (ip-10-0-0-52-24), not a length.
        if length is not None and not (separator == "-" and match.group("lensep") == "-"):
            image = _keep_network(value, image, int(length), 32)
        octets = str(ipaddress.IPv4Address(image)).split(".")
        suffix = f"{match.group('lensep')}{length}" if length is not None else ""
        return separator.join(octets) + suffix

    def _replace_ipv6(self, match: re.Match[str]) -> str:
        text = match.group("addr")
        if text.count(":") < 2 or "::" not in text and text.count(":") != 7:
            return match.group(0)
        try:
            value = int(ipaddress.IPv6Address(text))
        except ValueError:
            return match.group(0)
        image = self._ipv6.forward(value)
        length = match.group("len")
        if length is not None:
            image = _keep_network(value, image, int(length), 128)
            return f"{ipaddress.IPv6Address(image)}/{length}"
        return str(ipaddress.IPv6Address(image))

    # -- mapping beside the bundle, and reveal

    def mapping(self) -> dict[str, dict[str, str]]:
        """Return the one-way parts of the map (names and MACs) for the mapping file beside the bundle."""
        return {"names": dict(sorted(self._names.items())), "macs": dict(sorted(self._macs.items()))}

    def reveal(self, text: str, mapping: dict[str, dict[str, str]]) -> str:
        """Map anonymized text back: names and MACs through ``mapping``, IP addresses through the key."""
        names = {token: name for name, token in mapping.get("names", {}).items()}
        macs = {image: mac for mac, image in mapping.get("macs", {}).items()}
        text = _TOKEN.sub(lambda match: names.get(match.group(0), match.group(0)), text)
        text = _MAC.sub(lambda match: macs.get(match.group(0).lower(), match.group(0)), text)
        text = _IPV6.sub(lambda match: _reverse_v6(self._ipv6, match), text)
        return _IPV4.sub(lambda match: _reverse_v4(self._ipv4, match), text)


def _keep_network(value: int, image: int, length: int, bits: int) -> int:
    """Clear the host bits of ``image`` when ``value`` is a network address (its host bits are zero).

    The map keeps the first ``length`` bits shared, so the cleared image is the
    network of every mapped host in it. An interface address such as
    ``10.0.0.11/24`` keeps its host bits.
    """
    host_mask = (1 << (bits - length)) - 1
    if value & host_mask:
        return image
    return image & ~host_mask


def _reverse_v4(prefix_map: _PrefixMap, match: re.Match[str]) -> str:
    separator = match.group("sep")
    value = int(ipaddress.IPv4Address(".".join(match.group(part) for part in "abcd")))
    original = prefix_map.reverse(value)
    separator_length = match.group("len")
    if separator_length is not None and not (separator == "-" and match.group("lensep") == "-"):
        original = _keep_network(value, original, int(separator_length), 32)
    octets = str(ipaddress.IPv4Address(original)).split(".")
    suffix = f"{match.group('lensep')}{match.group('len')}" if match.group("len") is not None else ""
    return separator.join(octets) + suffix


def _reverse_v6(prefix_map: _PrefixMap, match: re.Match[str]) -> str:
    text = match.group("addr")
    try:
        value = int(ipaddress.IPv6Address(text))
    except ValueError:
        return match.group(0)
    original = prefix_map.reverse(value)
    suffix = ""
    if match.group("len") is not None:
        original = _keep_network(value, original, int(match.group("len")), 128)
        suffix = f"/{match.group('len')}"
    return f"{ipaddress.IPv6Address(original)}{suffix}"


def map_paths(anonymizer: Anonymizer) -> Callable[[str], str]:
    """Return a function that anonymizes a member path part by part, keeping ``/`` as the separator."""

    def convert(path: str) -> str:
        return "/".join(anonymizer.text(part) for part in path.split("/"))

    return convert
