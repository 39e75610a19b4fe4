"""Routes, neighbours and bridge FDB entries: the per-node collections that grow with the cluster."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from netdoctor.model.addr import (
    AF_INET,
    AddressError,
    format_ip,
    format_mac,
    format_prefix,
    parse_ip,
)
from netdoctor.model.table import Column, SchemaError, Table, decimal_value, number_text

#: Route types as rtnetlink numbers them (``RTN_*``), by the names iproute2 prints.
ROUTE_TYPES = {
    "unspec": 0, "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5,
    "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9, "nat": 10, "xresolve": 11,
}
ROUTE_TYPE_NAMES = {number: name for name, number in ROUTE_TYPES.items()}

#: Route protocols (``RTPROT_*``) as iproute2's ``rt_protos`` names them. A protocol
#: number with no name here is kept as its decimal string.
ROUTE_PROTOCOLS = {
    "unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9,
    "mrt": 10, "zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15, "dhcp": 16,
    "keepalived": 18, "babel": 42, "openr": 99, "bgp": 186, "isis": 187, "ospf": 188,
    "rip": 189, "eigrp": 192,
}
ROUTE_PROTOCOL_NAMES = {number: name for name, number in ROUTE_PROTOCOLS.items()}

#: Route scopes (``RT_SCOPE_*``).
ROUTE_SCOPES = {"universe": 0, "global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
ROUTE_SCOPE_NAMES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

#: Routing table ids by name.
ROUTE_TABLES = {"unspec": 0, "default": 253, "main": 254, "local": 255}
ROUTE_TABLE_NAMES = {number: name for name, number in ROUTE_TABLES.items()}

#: Next-hop flags (``RTNH_F_*``) that the checks read.
RTNH_F_DEAD = 1
RTNH_F_PERVASIVE = 2
RTNH_F_ONLINK = 4
RTNH_F_LINKDOWN = 16
NEXTHOP_FLAG_NAMES = {RTNH_F_DEAD: "dead", RTNH_F_PERVASIVE: "pervasive", RTNH_F_ONLINK: "onlink", RTNH_F_LINKDOWN: "linkdown"}


def protocol_name(number: int) -> str:
    """Return the ``rt_protos`` name of a protocol number, or the number as text."""
    return ROUTE_PROTOCOL_NAMES.get(number, str(number))


def protocol_number(name: str) -> int:
    """Return the number of a protocol name or decimal string; raise ``KeyError`` if unknown."""
    number = decimal_value(name)
    return ROUTE_PROTOCOLS[name] if number is None else number


class NextHop(NamedTuple):
    """One path of a multipath route (``nexthop via ... dev ... weight ...``)."""

    gateway: str | None
    dev: str | None
    weight: int = 1
    flags: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"gateway": self.gateway, "dev": self.dev, "weight": self.weight, "flags": self.flags}

    @classmethod
    def from_json(cls, data: Any) -> NextHop:
        """Read a next hop's JSON object; raise TypeError or ValueError naming the field that is invalid."""
        if not isinstance(data, dict):
            raise TypeError(f"expected a next hop object with {', '.join(cls._fields)}, got {_kind(data)}")
        unknown = sorted(map(str, set(data) - set(cls._fields)))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)} in a next hop; expected {', '.join(cls._fields)}")
        missing = [name for name in cls._fields if name not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)} in a next hop")
        gateway, dev, weight, flags = (data[name] for name in cls._fields)
        for name, value in (("gateway", gateway), ("dev", dev)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name}: expected a string or null, got {_kind(value)}")
        if gateway is not None:
            try:
                parse_ip(gateway)
            except AddressError:
                raise ValueError(f"gateway: expected an IPv4 or IPv6 address, got {_kind(gateway)}") from None
        # The kernel keeps a next hop's weight from 1 to 256, as 'ip route' prints it.
        if weight.__class__ is not int or not 1 <= weight <= 256:
            raise ValueError(f"weight: expected an integer from 1 to 256, got {_kind(weight)}")
        if flags.__class__ is not int or not 0 <= flags <= 0xFFFFFFFF:
            raise ValueError(f"flags: expected an integer from 0 to {0xFFFFFFFF}, got {_kind(flags)}")
        return cls(gateway, dev, weight, flags)


def _kind(value: Any) -> str:
    """Return a JSON value for an error message: a number or a string as written, another value by its type."""
    if value.__class__ is int:
        return number_text(value)
    if isinstance(value, str | float):
        return repr(value)[:40]
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _nexthops_to_json(value: tuple[NextHop, ...]) -> list[dict[str, Any]]:
    return [hop.to_json() for hop in value]


def _nexthops_from_json(value: Any) -> tuple[NextHop, ...]:
    """Read a route's next hops; an error names the hop by its position in the list."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list of next hop objects, got {_kind(value)}")
    hops = []
    for number, hop in enumerate(value):
        try:
            hops.append(NextHop.from_json(hop))
        except (TypeError, ValueError) as error:
            raise type(error)(f"next hop {number}: {error}") from None
    return tuple(hops)


class Route(NamedTuple):
    """One route of any table, as the kernel holds it.

    Addresses are stored as integers with the family; the properties give the
    text that ``ip route`` prints. A gateway or preferred source of 0 means none,
    an empty ``dev`` means no device, ``nhid`` 0 means no nexthop object and
    ``mtu`` 0 means the route sets no MTU.
    """

    family: int
    table: int
    dst: int
    dst_len: int
    type: int
    protocol: str
    scope: int
    metric: int
    gateway: int
    dev: str
    prefsrc: int
    flags: int
    nhid: int
    mtu: int
    nexthops: tuple[NextHop, ...] = ()

    @property
    def destination(self) -> str:
        """The destination as ``ADDR/LEN``."""
        return format_prefix(self.family, self.dst, self.dst_len)

    @property
    def via(self) -> str | None:
        """The gateway address, or None for a directly connected or typed route."""
        return format_ip(self.family, self.gateway) if self.gateway else None

    @property
    def type_name(self) -> str:
        """The route type as iproute2 names it (``unicast``, ``blackhole``, ...)."""
        return ROUTE_TYPE_NAMES.get(self.type, str(self.type))

    @property
    def table_name(self) -> str:
        """The table as iproute2 names it (``main``, ``local``, or its number)."""
        return ROUTE_TABLE_NAMES.get(self.table, str(self.table))

    @property
    def onlink(self) -> bool:
        """Whether the gateway is used as on-link without a covering connected route."""
        return bool(self.flags & RTNH_F_ONLINK)

    @property
    def linkdown(self) -> bool:
        """Whether the kernel marks the route's device as down."""
        return bool(self.flags & RTNH_F_LINKDOWN)

    def describe(self) -> str:
        """Render the route roughly as ``ip route show table all`` prints it, for evidence."""
        parts: list[str] = []
        if self.type_name != "unicast":
            parts.append(self.type_name)
        parts.append("default" if self.dst_len == 0 else self.destination)
        if self.nhid:
            parts += ["nhid", str(self.nhid)]
        if self.gateway:
            parts += ["via", format_ip(self.family, self.gateway)]
        if self.dev:
            parts += ["dev", self.dev]
        if self.table != ROUTE_TABLES["main"]:
            parts += ["table", self.table_name]
        if self.protocol not in ("boot", "unspec"):
            parts += ["proto", self.protocol]
        if self.scope:
            parts += ["scope", ROUTE_SCOPE_NAMES.get(self.scope, str(self.scope))]
        if self.prefsrc:
            parts += ["src", format_ip(self.family, self.prefsrc)]
        if self.metric:
            parts += ["metric", str(self.metric)]
        if self.onlink:
            parts.append("onlink")
        if self.linkdown:
            parts.append("linkdown")
        if self.mtu:
            parts += ["mtu", str(self.mtu)]
        for hop in self.nexthops:
            parts.append("nexthop")
            if hop.gateway:
                parts += ["via", hop.gateway]
            if hop.dev:
                parts += ["dev", hop.dev]
            parts += ["weight", str(hop.weight)]
        return " ".join(parts)

    @classmethod
    def make(
        cls,
        destination: str,
        *,
        type: str = "unicast",
        table: int = ROUTE_TABLES["main"],
        gateway: str | None = None,
        dev: str | None = None,
        protocol: str = "boot",
        scope: int = 0,
        metric: int = 0,
        prefsrc: str | None = None,
        flags: int = 0,
        nhid: int = 0,
        mtu: int = 0,
        nexthops: tuple[NextHop, ...] = (),
    ) -> Route:
        """Build a route from text values, as parsers and tests write them."""
        from netdoctor.model.addr import parse_prefix

        family, dst, dst_len = parse_prefix(destination)
        return cls(
            family=family,
            table=table,
            dst=dst,
            dst_len=dst_len,
            type=ROUTE_TYPES[type],
            protocol=protocol,
            scope=scope,
            metric=metric,
            gateway=parse_ip(gateway)[1] if gateway else 0,
            dev=dev or "",
            prefsrc=parse_ip(prefsrc)[1] if prefsrc else 0,
            flags=flags,
            nhid=nhid,
            mtu=mtu,
            nexthops=nexthops,
        )


#: The prefix lengths an IPv4 route may have, as bytes to delete with ``bytes.translate``.
_IPV4_LENGTHS = bytes(range(33))
#: Marks prefix lengths above 32 with 1 and the others with 0, through ``bytes.translate``.
_LONG_LENGTH_MARKS = bytes(int(length > 32) for length in range(256))


class RouteTable(Table[Route]):
    """All routes of one node, from every routing table, in canonical order."""

    ROW = Route
    COLUMNS = (
        Column("family", "u8"),
        Column("table", "u32"),
        Column("dst", "ip"),
        Column("dst_len", "u8"),
        Column("type", "u8"),
        Column("protocol", "str"),
        Column("scope", "u8"),
        Column("metric", "u32"),
        Column("gateway", "ip"),
        Column("dev", "str"),
        Column("prefsrc", "ip"),
        Column("flags", "u8"),
        Column("nhid", "u32"),
        Column("mtu", "u32"),
    )
    EXTRAS: ClassVar[dict[str, tuple[Any, Callable[[Any], Any], Callable[[Any], Any]]]] = {
        "nexthops": ((), _nexthops_to_json, _nexthops_from_json),
    }

    def _check_values(self, where: str) -> None:
        """Reject address families other than 4 and 6, next hops of the other family, and prefix lengths beyond
        the family's address size.

        The columns are scanned as bytes, and only rows whose length exceeds 32
        are read one by one.
        """
        from netdoctor.model.table import SchemaError

        families = memoryview(self.cells("family")).tobytes()  # type: ignore[arg-type]
        stray = families.translate(None, b"\x04\x06")
        if stray:
            row = next(row for row, family in enumerate(families) if family not in (4, 6))
            raise SchemaError(f"{where}.family: {stray[0]} in row {row} is not 4 (IPv4) or 6 (IPv6)")
        for row, hops in sorted(self._extras["nexthops"].items()):
            for number, hop in enumerate(hops):
                if hop.gateway is not None and parse_ip(hop.gateway)[0] != families[row]:
                    raise SchemaError(f"{where}.extras.nexthops: next hop {number} of row {row}: gateway "
                                      f"{hop.gateway!r} is not an IPv{families[row]} address like the route's")
        lengths = memoryview(self.cells("dst_len")).tobytes()  # type: ignore[arg-type]
        if not lengths.translate(None, _IPV4_LENGTHS):
            return
        marks = lengths.translate(_LONG_LENGTH_MARKS)
        row = marks.find(1)
        while row != -1:
            bits = 32 if families[row] == AF_INET else 128
            if lengths[row] > bits:
                raise SchemaError(f"{where}.dst_len: {lengths[row]} in row {row} is out of range for IPv{families[row]}"
                                  f" (0 to {bits})")
            row = marks.find(1, row + 1)

    def main(self, family: int = AF_INET) -> list[Route]:
        """Return the routes of the main table for one address family."""
        return [route for route in self if route.table == ROUTE_TABLES["main"] and route.family == family]


#: Neighbour states (``NUD_*``).
NUD_STATES = {
    "INCOMPLETE": 0x01, "REACHABLE": 0x02, "STALE": 0x04, "DELAY": 0x08, "PROBE": 0x10,
    "FAILED": 0x20, "NOARP": 0x40, "PERMANENT": 0x80, "NONE": 0x00,
}


def nud_names(state: int) -> tuple[str, ...]:
    """Return the names of the ``NUD_*`` bits set in ``state``."""
    return tuple(name for name, bit in NUD_STATES.items() if bit and state & bit)


class Neighbour(NamedTuple):
    """An ARP or NDP entry (``ip neigh``). A link-layer address of 0 means none."""

    family: int
    dst: int
    dev: str
    lladdr: int
    state: int
    router: int

    @property
    def address(self) -> str:
        """The neighbour's IP address."""
        return format_ip(self.family, self.dst)

    @property
    def mac(self) -> str | None:
        """The link-layer address, if the entry has one."""
        return format_mac(self.lladdr) if self.lladdr else None

    def describe(self) -> str:
        """Render the entry as ``ip neigh`` prints it, for evidence."""
        parts = [self.address, "dev", self.dev]
        if self.lladdr:
            parts += ["lladdr", format_mac(self.lladdr)]
        if self.router:
            parts.append("router")
        parts += list(nud_names(self.state))
        return " ".join(parts)


class NeighbourTable(Table[Neighbour]):
    """The neighbour entries of one node."""

    ROW = Neighbour
    COLUMNS = (
        Column("family", "u8"),
        Column("dst", "ip"),
        Column("dev", "str"),
        Column("lladdr", "u64"),
        Column("state", "u16"),
        Column("router", "u8"),
    )

    def _check_values(self, where: str) -> None:
        _check_macs(self, "lladdr", where)


#: The largest 48-bit MAC address.
_MAX_MAC = (1 << 48) - 1
#: Offsets, in each 8-byte value of a u64 column, of the two bytes above a 48-bit MAC address.
_MAC_HIGH_BYTES = (6, 7) if sys.byteorder == "little" else (0, 1)


def _check_macs(table: Table[Any], name: str, where: str) -> None:
    """Raise :class:`SchemaError` for a value of a MAC column above 48 bits, which no MAC address has.

    The two high bytes of every value are tested in C, and rows are read one by
    one only to name the first bad row.
    """
    values = table.cells(name)
    raw = memoryview(values).tobytes()  # type: ignore[arg-type]
    if not any(raw[offset::8].strip(b"\x00") for offset in _MAC_HIGH_BYTES):
        return
    row, value = next((row, value) for row, value in enumerate(values) if value > _MAX_MAC)
    raise SchemaError(f"{where}.{name}: {number_text(value)} in row {row} is out of range for a MAC address "
                      f"(0 to {_MAX_MAC})")


#: FDB entry flags (``NTF_*``) that iproute2 prints by name.
NTF_SELF = 0x02
NTF_MASTER = 0x04
NTF_EXT_LEARNED = 0x10
NTF_STICKY = 0x40


class FdbEntry(NamedTuple):
    """A bridge or VXLAN forwarding entry (``bridge fdb``).

    ``dst`` is the remote VTEP of a VXLAN entry, and ``family`` its family; both
    are 0 when the entry has no remote. ``vlan`` and ``vni`` are 0 when unset.
    ``master`` is the bridge for entries learned or set on a bridge port.
    """

    mac: int
    dev: str
    master: str
    family: int
    dst: int
    vlan: int
    vni: int
    port: int
    state: int
    flags: int

    @property
    def lladdr(self) -> str:
        """The MAC address as text."""
        return format_mac(self.mac)

    @property
    def remote(self) -> str | None:
        """The remote VTEP address, if the entry has one."""
        return format_ip(self.family, self.dst) if self.dst else None

    def describe(self) -> str:
        """Render the entry as ``bridge fdb`` prints it, for evidence."""
        parts = [format_mac(self.mac), "dev", self.dev]
        if self.dst:
            parts += ["dst", format_ip(self.family, self.dst)]
        if self.vlan:
            parts += ["vlan", str(self.vlan)]
        if self.vni:
            parts += ["vni", str(self.vni)]
        if self.master:
            parts += ["master", self.master]
        if self.flags & NTF_SELF:
            parts.append("self")
        if self.state & NUD_STATES["PERMANENT"]:
            parts.append("permanent")
        elif self.state & NUD_STATES["NOARP"]:
            parts.append("static")
        return " ".join(parts)


class FdbTable(Table[FdbEntry]):
    """The bridge and VXLAN FDB entries of one node."""

    ROW = FdbEntry
    COLUMNS = (
        Column("mac", "u64"),
        Column("dev", "str"),
        Column("master", "str"),
        Column("family", "u8"),
        Column("dst", "ip"),
        Column("vlan", "u16"),
        Column("vni", "u32"),
        Column("port", "u16"),
        Column("state", "u16"),
        Column("flags", "u8"),
    )

    def _check_values(self, where: str) -> None:
        _check_macs(self, "mac", where)
