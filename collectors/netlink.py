"""Collect interfaces, routes, neighbours and bridge FDB entries from the kernel.

Two paths read the same netlink state:

* ``ip -j`` commands run through :meth:`Target.run` and are parsed by
  :mod:`netdoctor.capture.iproute`. This is the default whenever the program
  is installed, because it is much faster on large route tables and works for
  any target that can run a command:

  - ``ip -j -d addr show``
  - ``ip -4 -j route show table all`` and ``ip -6 -j route show table all``,
    run at the same time
  - ``ip -j neigh show nud all``
  - ``bridge -j fdb show``

  The route dumps leave out ``-d``: it only adds the type, table, protocol and
  scope of routes that have the default value, which the parser assumes, and
  makes the output 40 % larger. An iproute2 older than 4.13 has no ``-j``; the
  same command without ``-j`` is then run and parsed by the text parser.
* pyroute2 (:func:`read_with_pyroute2`), used for a part when its program is
  not installed, for a target that is the local host or a named network
  namespace. pyroute2 is imported only on this path.

Measured on this project's test VM (Firecracker, kernel 6.18, iproute2 6.1,
pyroute2 0.9.7) by ``tests/test_collect_netlink.py::test_large_route_table_reads_alike``,
which prints the durations and never asserts them: reading all four parts of a
namespace holding 10,000 ``blackhole ... proto bird`` routes took 0.13 s through
``ip -j`` and 0.65 to 0.76 s through pyroute2. pyroute2 decodes every netlink
message in Python, so the ``ip`` path is preferred. ``benchmarks/bench_collect.py``
times the routes of a node with 100,000 routes against ``ip -j`` plus ``json.loads``.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from netdoctor.capture import ParseError
from netdoctor.capture.iproute import (
    ADDRESS_FLAGS,
    FDB_FLAGS,
    infer_kind,
    mac_or_none,
    parse_bridge_fdb,
    parse_bridge_fdb_json,
    parse_ip_addr,
    parse_ip_addr_json,
    parse_ip_neigh,
    parse_ip_neigh_json,
    parse_ip_route,
    parse_ip_route_json,
    scope_name,
)
from netdoctor.collect import Part
from netdoctor.model import Address, Interface, Provenance, TunnelInfo, VxlanInfo
from netdoctor.model.addr import AF_INET, AF_INET6, parse_ip, parse_mac
from netdoctor.model.routes import (
    NEXTHOP_FLAG_NAMES,
    NUD_STATES,
    FdbEntry,
    FdbTable,
    Neighbour,
    NeighbourTable,
    NextHop,
    Route,
    RouteTable,
    protocol_name,
)
from netdoctor.target import CollectionError, CommandResult, Target

logger = logging.getLogger(__name__)

#: The snapshot fields this collector fills, in the order it reads them.
PARTS = ("interfaces", "routes", "neighbours", "fdb")

#: Where ``ip netns add`` keeps the namespace handles.
NETNS_DIR = "/run/netns"


@dataclass(frozen=True)
class _Command:
    """One ``ip -j`` command, its text fallback and the parsers of both."""

    json_argv: tuple[str, ...]
    json_parser: Callable[[str, str], Any]
    text_argv: tuple[str, ...]
    text_parser: Callable[[str, str], Any]


def _route_text(family: int) -> Callable[[str, str], RouteTable]:
    def parse(text: str, source: str) -> RouteTable:
        return parse_ip_route(text, source, family=family)

    return parse


_COMMANDS: dict[str, tuple[_Command, ...]] = {
    "interfaces": (
        _Command(("ip", "-j", "-d", "addr", "show"), parse_ip_addr_json, ("ip", "-d", "addr", "show"), parse_ip_addr),
    ),
    "routes": (
        _Command(("ip", "-4", "-j", "route", "show", "table", "all"), parse_ip_route_json,
                 ("ip", "-4", "route", "show", "table", "all"), _route_text(AF_INET)),
        _Command(("ip", "-6", "-j", "route", "show", "table", "all"), parse_ip_route_json,
                 ("ip", "-6", "route", "show", "table", "all"), _route_text(AF_INET6)),
    ),
    "neighbours": (
        _Command(("ip", "-j", "neigh", "show", "nud", "all"), parse_ip_neigh_json,
                 ("ip", "neigh", "show", "nud", "all"), parse_ip_neigh),
    ),
    "fdb": (
        _Command(("bridge", "-j", "fdb", "show"), parse_bridge_fdb_json, ("bridge", "fdb", "show"), parse_bridge_fdb),
    ),
}


def collect(target: Target, parts: Iterable[str] = PARTS) -> Part:
    """Read interfaces, routes, neighbours and the FDB of one target; record a gap for each part that fails.

    ``parts`` limits the read to some of :data:`PARTS`, in that order. Raise
    ``ValueError`` for a name that is not one of them.
    """
    wanted = set(parts)
    unknown = sorted(wanted - set(PARTS))
    if unknown:
        raise ValueError(f"unknown netlink part {', '.join(unknown)}: expected some of {', '.join(PARTS)}")
    names = [name for name in PARTS if name in wanted]
    part = Part()
    if target.netns is not None and not os.path.exists(os.path.join(NETNS_DIR, target.netns)):
        for name in names:
            part.gap(target, name, f"network namespace {target.netns!r} does not exist (no {NETNS_DIR}/{target.netns})")
        return part

    fallback: list[str] = []
    for name in names:
        commands = _COMMANDS[name]
        programs = {command.json_argv[0] for command in commands}
        if target.netns is not None:
            programs.add("ip")
        if all(target.which(program) is not None for program in programs):
            _read_with_commands(target, name, commands, part)
        else:
            fallback.append(name)

    if fallback:
        _read_fallback(target, fallback, part)
    return part


def _run_one(target: Target, command: _Command) -> tuple[Any, CommandResult]:
    """Run the JSON form of a command, or its text form when ``-j`` is not supported."""
    result = target.run(command.json_argv)
    if result.returncode == 0 and result.stdout.lstrip().startswith(("[", "{")) or (
        result.returncode == 0 and not result.stdout.strip()
    ):
        return command.json_parser(result.stdout, result.command), result
    if result.returncode != 0 and "-j" not in result.stderr and "json" not in result.stderr.lower():
        raise CollectionError(f"{result.command} exited with status {result.returncode}: {result.stderr.strip()[:200]}")
    logger.info("%s: %s gave no JSON, reading the text form", target.name, result.command)
    result = target.run(command.text_argv)
    if result.returncode != 0:
        raise CollectionError(f"{result.command} exited with status {result.returncode}: {result.stderr.strip()[:200]}")
    return command.text_parser(result.stdout, result.command), result


def _run_all(target: Target, name: str, commands: tuple[_Command, ...]) -> Iterator[tuple[Any, CommandResult]]:
    """Run and parse ``commands`` concurrently, and yield their outcomes in order.

    The first failure in that order is raised.

    The IPv4 and IPv6 route dumps take most of their time in the kernel and in
    ``ip``, so the first output to arrive is parsed while the other dump runs.
    """
    if len(commands) == 1:
        yield _run_one(target, commands[0])
        return
    with ThreadPoolExecutor(max_workers=len(commands), thread_name_prefix=f"netlink-{name}") as pool:
        futures = [pool.submit(_run_one, target, command) for command in commands]
        for future in futures:
            yield future.result()


def _read_with_commands(target: Target, name: str, commands: tuple[_Command, ...], part: Part) -> None:
    values: list[Any] = []
    origins: list[str] = []
    try:
        for value, result in _run_all(target, name, commands):
            if result.truncated:
                raise CollectionError(f"{result.command} printed more than the {target.output_cap}-byte cap")
            values.append(value)
            origins.append(result.command)
    except (CollectionError, ParseError) as error:
        part.gap(target, name, str(error))
        return
    if name == "routes":
        part.values[name] = RouteTable.concat(values)
    else:
        part.values[name] = values[0]
    part.provenance.append(Provenance(name, "; ".join(origins)))


def _read_fallback(target: Target, names: list[str], part: Part) -> None:
    try:
        values = read_with_pyroute2(target.netns)
    except ImportError as error:
        for name in names:
            part.gap(target, name, f"neither iproute2 nor pyroute2 is available ({error})")
        return
    except OSError as error:
        for name in names:
            part.gap(target, name, f"netlink dump with pyroute2 failed: {error}")
        return
    origin = "netlink (pyroute2)" + (f" in network namespace {target.netns}" if target.netns else "")
    for name in names:
        part.values[name] = values[name]
        part.provenance.append(Provenance(name, origin))


# ---------------------------------------------------------------------------
# pyroute2: netlink messages to model parts

#: ``IFF_*`` flag bits in the order ``ip link`` prints their names.
_LINK_FLAGS = (
    ("LOOPBACK", 0x8), ("BROADCAST", 0x2), ("POINTOPOINT", 0x10), ("MULTICAST", 0x1000),
    ("NOARP", 0x80), ("ALLMULTI", 0x200), ("PROMISC", 0x100), ("MASTER", 0x400), ("SLAVE", 0x800),
    ("DEBUG", 0x4), ("DYNAMIC", 0x8000), ("AUTOMEDIA", 0x4000), ("PORTSEL", 0x2000),
    ("NOTRAILERS", 0x20), ("UP", 0x1), ("LOWER_UP", 0x10000), ("DORMANT", 0x20000), ("ECHO", 0x40000),
)
_IFF_UP = 0x1
_IFF_RUNNING = 0x40

#: ``IFA_F_*`` bits by the names in :data:`ADDRESS_FLAGS`; ``dynamic`` is the absence of IFA_F_PERMANENT.
_ADDRESS_FLAG_BITS = {
    "secondary": 0x01, "temporary": 0x01, "nodad": 0x02, "optimistic": 0x04, "dadfailed": 0x08,
    "home": 0x10, "deprecated": 0x20, "tentative": 0x40, "mngtmpaddr": 0x100,
    "noprefixroute": 0x200, "autojoin": 0x400, "stable-privacy": 0x800,
}
_IFA_F_PERMANENT = 0x80

#: ``ARPHRD_*`` device types by the ``link/TYPE`` name ``ip link`` prints.
_ARPHRD_NAMES = {1: "ether", 772: "loopback", 768: "ipip", 776: "sit", 778: "gre", 823: "gre6", 769: "tunnel6", 0xFFFE: "none"}

_NEXTHOP_FLAG_MASK = sum(NEXTHOP_FLAG_NAMES)
_FDB_FLAG_MASK = sum(set(FDB_FLAGS.values()))
_NTF_ROUTER = 0x80
_RTAX_MTU = "RTAX_MTU"


def _family(number: int) -> int:
    return AF_INET if number == socket.AF_INET else AF_INET6


def _link_flags(flags: int, lower_down: bool) -> tuple[str, ...]:
    """Name the ``IFF_*`` bits as ``ip link`` does, with NO-CARRIER and M-DOWN."""
    names = ["NO-CARRIER"] if flags & _IFF_UP and not flags & _IFF_RUNNING else []
    names += [name for name, bit in _LINK_FLAGS if flags & bit]
    if lower_down:
        names.append("M-DOWN")
    return tuple(names)


def _address_flags(family: int, flags: int) -> tuple[str, ...]:
    names: list[str] = []
    for name in ADDRESS_FLAGS:
        if name == "dynamic":
            if not flags & _IFA_F_PERMANENT:
                names.append(name)
        elif name == "secondary" and family == AF_INET6 or name == "temporary" and family == AF_INET:
            continue
        elif flags & _ADDRESS_FLAG_BITS[name]:
            names.append(name)
    return tuple(names)


def _address(message: Any) -> tuple[int, Address]:
    family = _family(message["family"])
    local = message.get_attr("IFA_LOCAL")
    address = message.get_attr("IFA_ADDRESS")
    flags = message.get_attr("IFA_FLAGS")
    return message["index"], Address(
        family=family,
        address=local or address,
        prefixlen=message["prefixlen"],
        scope=scope_name(message["scope"]),
        peer=address if local and address and address != local else None,
        broadcast=message.get_attr("IFA_BROADCAST"),
        label=message.get_attr("IFA_LABEL") if family == AF_INET else None,
        flags=_address_flags(family, flags if flags is not None else message["flags"]),
    )


def _interface(message: Any, names: dict[int, str], flags_by_index: dict[int, int], addresses: tuple[Address, ...]) -> Interface:
    index = message["index"]
    name = message.get_attr("IFLA_IFNAME")
    flags = message["flags"]
    link = message.get_attr("IFLA_LINK") or None
    netnsid = message.get_attr("IFLA_LINK_NETNSID")
    lower_down = link is not None and netnsid is None and not flags_by_index.get(link, _IFF_UP) & _IFF_UP
    names_of_flags = _link_flags(flags, lower_down)
    master = message.get_attr("IFLA_MASTER")

    kind: str | None = None
    vxlan: VxlanInfo | None = None
    tunnel: TunnelInfo | None = None
    linkinfo = message.get_attr("IFLA_LINKINFO")
    if linkinfo is not None:
        kind = linkinfo.get_attr("IFLA_INFO_KIND")
        data = linkinfo.get_attr("IFLA_INFO_DATA")
        if kind == "vxlan" and data is not None:
            device = data.get_attr("IFLA_VXLAN_LINK")
            learning = data.get_attr("IFLA_VXLAN_LEARNING")
            vxlan = VxlanInfo(
                vni=data.get_attr("IFLA_VXLAN_ID"),
                local=data.get_attr("IFLA_VXLAN_LOCAL") or data.get_attr("IFLA_VXLAN_LOCAL6"),
                remote=data.get_attr("IFLA_VXLAN_GROUP") or data.get_attr("IFLA_VXLAN_GROUP6"),
                port=data.get_attr("IFLA_VXLAN_PORT"),
                dev=names.get(device) if device else None,
                learning=bool(learning) if learning is not None else None,
            )
        elif kind in ("gre", "gretap", "ip6gre", "ip6gretap") and data is not None:
            # NOTE: not checked against the kernel: this test VM has no GRE module.
            key = data.get_attr("IFLA_GRE_IKEY")
            tunnel = TunnelInfo(
                local=data.get_attr("IFLA_GRE_LOCAL"), remote=data.get_attr("IFLA_GRE_REMOTE"),
                ttl=data.get_attr("IFLA_GRE_TTL"),
                key=socket.inet_ntoa(int(key).to_bytes(4, "big")) if key else None,
            )
        elif kind in ("ipip", "sit", "ip6tnl") and data is not None:
            tunnel = TunnelInfo(
                local=data.get_attr("IFLA_IPTUN_LOCAL"), remote=data.get_attr("IFLA_IPTUN_REMOTE"),
                ttl=data.get_attr("IFLA_IPTUN_TTL"),
            )

    return Interface(
        name=name,
        index=index,
        kind=kind or infer_kind(name, _ARPHRD_NAMES.get(message["ifi_type"], "other"), names_of_flags),
        state=str(message.get_attr("IFLA_OPERSTATE") or "UNKNOWN"),
        mtu=message.get_attr("IFLA_MTU"),
        flags=names_of_flags,
        mac=mac_or_none(message.get_attr("IFLA_ADDRESS")),
        master=names.get(master) if master else None,
        link_index=link,
        link_netns=str(netnsid) if netnsid is not None else None,
        addresses=addresses,
        vxlan=vxlan,
        tunnel=tunnel,
    )


def _ip_value(text: str | None) -> int:
    return parse_ip(text)[1] if text else 0


_RTA_NH_ID = 30


def _nexthop_id(message: Any) -> int:
    """Return a route's RTA_NH_ID, or 0.

    pyroute2 0.9.7 has no name for attribute 30 and keeps it as an ``UNKNOWN``
    attribute whose payload stays in the message buffer, so it is read from there.
    """
    named = message.get_attr("RTA_NH_ID")
    if named is not None:
        return int(named)
    for name, value in message["attrs"]:
        if name == "UNKNOWN" and value["header"]["type"] == _RTA_NH_ID:
            return int(struct.unpack_from("=I", value.data, value.offset + 4)[0])
    return 0


def _route(message: Any, names: dict[int, str]) -> Route:
    family = _family(message["family"])
    metrics = message.get_attr("RTA_METRICS")
    mtu = metrics.get_attr(_RTAX_MTU) if metrics is not None else None
    oif = message.get_attr("RTA_OIF")
    hops = tuple(
        NextHop(
            hop.get_attr("RTA_GATEWAY"), names.get(hop["oif"]) if hop["oif"] else None,
            hop["hops"] + 1, hop["flags"] & _NEXTHOP_FLAG_MASK,
        )
        for hop in message.get_attr("RTA_MULTIPATH") or ()
    )
    table = message.get_attr("RTA_TABLE")
    return Route(
        family=family,
        table=table if table is not None else message["table"],
        dst=_ip_value(message.get_attr("RTA_DST")),
        dst_len=message["dst_len"],
        type=message["type"],
        protocol=protocol_name(message["proto"]),
        scope=message["scope"],
        metric=message.get_attr("RTA_PRIORITY") or 0,
        gateway=_ip_value(message.get_attr("RTA_GATEWAY")),
        dev=names.get(oif, "") if oif else "",
        prefsrc=_ip_value(message.get_attr("RTA_PREFSRC")),
        flags=message["flags"] & _NEXTHOP_FLAG_MASK,
        nhid=_nexthop_id(message),
        mtu=mtu or 0,
        nexthops=hops,
    )


def _neighbour(message: Any, names: dict[int, str]) -> Neighbour:
    lladdr = mac_or_none(message.get_attr("NDA_LLADDR"))
    return Neighbour(
        family=_family(message["family"]),
        dst=_ip_value(message.get_attr("NDA_DST")),
        dev=names.get(message["ifindex"], str(message["ifindex"])),
        lladdr=_mac_value(lladdr),
        state=message["state"],
        router=1 if message["flags"] & _NTF_ROUTER else 0,
    )


def _mac_value(text: str | None) -> int:
    return parse_mac(text) if text else 0


def _fdb_state(state: int) -> int:
    """Reduce an FDB entry's ``NUD_*`` bits to the one state ``bridge fdb`` prints.

    The kernel sets several bits on VXLAN entries (PERMANENT with NOARP or
    REACHABLE), but ``bridge fdb`` prints only the first of permanent, static
    (NOARP), stale and a learned entry, so the model keeps that one bit and a
    captured text output compares equal to a live read.
    """
    for bit in (NUD_STATES["PERMANENT"], NUD_STATES["NOARP"], NUD_STATES["STALE"]):
        if state & bit:
            return bit
    return NUD_STATES["REACHABLE"] if state & NUD_STATES["REACHABLE"] or not state else state


def _fdb_entry(message: Any, names: dict[int, str]) -> FdbEntry:
    dst = message.get_attr("NDA_DST")
    master = message.get_attr("NDA_MASTER")
    family, dst_value = parse_ip(dst) if dst else (0, 0)
    return FdbEntry(
        mac=_mac_value(message.get_attr("NDA_LLADDR")),
        dev=names.get(message["ifindex"], str(message["ifindex"])),
        master=names.get(master, "") if master else "",
        family=family,
        dst=dst_value,
        vlan=message.get_attr("NDA_VLAN") or 0,
        vni=message.get_attr("NDA_VNI") or 0,
        port=message.get_attr("NDA_PORT") or 0,
        state=_fdb_state(message["state"]),
        flags=message["flags"] & _FDB_FLAG_MASK,
    )


def read_with_pyroute2(netns: str | None) -> dict[str, Any]:
    """Dump interfaces, routes, neighbours and the FDB over netlink with pyroute2.

    ``netns`` names a namespace under ``/run/netns`` (None: the caller's own).
    The namespace must exist: it is opened without ``O_CREAT``. Raise
    ``ImportError`` when pyroute2 is not installed and ``OSError`` (pyroute2's
    ``NetlinkError`` is one) when a dump fails.
    """
    from pyroute2 import IPRoute, NetNS

    if netns is not None and not os.path.exists(os.path.join(NETNS_DIR, netns)):
        raise FileNotFoundError(f"network namespace {netns!r} does not exist")
    handle = NetNS(netns, flags=0) if netns is not None else IPRoute()
    try:
        links = list(handle.get_links())
        address_messages = list(handle.get_addr())
        route_messages = list(handle.get_routes(family=socket.AF_INET)) + list(handle.get_routes(family=socket.AF_INET6))
        neighbour_messages = list(handle.get_neighbours(family=socket.AF_INET)) + list(
            handle.get_neighbours(family=socket.AF_INET6)
        )
        fdb_messages = list(handle.get_neighbours(family=socket.AF_BRIDGE))
    finally:
        handle.close()

    names = {message["index"]: message.get_attr("IFLA_IFNAME") for message in links}
    flags_by_index = {message["index"]: message["flags"] for message in links}
    addresses: dict[int, list[Address]] = {}
    for message in address_messages:
        index, address = _address(message)
        addresses.setdefault(index, []).append(address)
    interfaces = tuple(
        _interface(message, names, flags_by_index, tuple(addresses.get(message["index"], ())))
        for message in sorted(links, key=lambda message: message["index"])
    )
    return {
        "interfaces": interfaces,
        "routes": RouteTable.from_rows(_route(message, names) for message in route_messages),
        "neighbours": NeighbourTable.from_rows(_neighbour(message, names) for message in neighbour_messages),
        "fdb": FdbTable.from_rows(_fdb_entry(message, names) for message in fdb_messages),
    }
