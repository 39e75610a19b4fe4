"""Network facts derived from a snapshot and shared by the checks.

Each check needs the same few facts: which interfaces carry the underlay,
which bridges hold pods, which pod subnet belongs to which node, what the pod
network is. They are computed once per snapshot by :func:`cluster_facts` and
cached, because the snapshot is immutable. Nothing here does I/O.

The facts cover IPv4: flannel, Calico IPIP and the OVS/Docker designs netdoctor
diagnoses route pods over IPv4.
"""

from __future__ import annotations

import json
import sys
from _thread import allocate_lock
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress, islice, repeat
from operator import eq, lshift, ne, or_
from typing import Any

from netdoctor.log import get_logger
from netdoctor.model import ClusterSnapshot, Interface, KubeNode, NodeSnapshot, Route, RouteTable
from netdoctor.model.addr import (
    AF_INET,
    AddressError,
    format_prefix,
    network_of,
    parse_ip,
    parse_prefix,
)
from netdoctor.model.record import field, record, replace
from netdoctor.model.routes import ROUTE_TABLES, ROUTE_TYPES

logger = get_logger(__name__)

#: A prefix as ``(family, network, length)`` with the host bits cleared.
Prefix = tuple[int, int, int]

#: Route types that discard packets instead of forwarding them.
DISCARD_TYPES = frozenset({ROUTE_TYPES["blackhole"], ROUTE_TYPES["unreachable"], ROUTE_TYPES["prohibit"]})

#: Bridges that Docker, the CNI bridge plugin and kubenet create for pods.
POD_BRIDGE_NAMES = frozenset({"docker0", "cni0", "cbr0", "kbr0"})

#: Interface kinds that are tunnels or virtual switches, never the underlay.
OVERLAY_KINDS = frozenset({"vxlan", "gre", "gretap", "ipip", "sit", "geneve", "ip6tnl", "ip6gre", "openvswitch"})

#: OVS interface types that carry a tunnel; a bridge with one of them is an overlay bridge.
_OVS_TUNNEL_TYPES = frozenset({"gre", "vxlan", "geneve", "stt"})

#: Interface kinds that are neither overlay nor underlay: VPN and point-to-point links.
VPN_KINDS = frozenset({"tun", "tap", "wireguard", "ppp"})

#: Rows searched one by one in a node's best rows before a full scan is cheaper.
_INDEX_SEARCH_LIMIT = 16

#: Node × IPv4 pod subnet pairs from which the route indexes resolve them with numpy
#: (:mod:`netdoctor.bulk`). Below this, importing numpy would cost more than it saves.
BULK_MIN_PAIRS = 150_000

#: Calico's smallest inferred pool: blocks scattered wider than a /8 are not treated as one pool.
MIN_POOL_LENGTH = 8


def make_prefix(text: str) -> Prefix:
    """Parse ``ADDR/LEN`` into a prefix with the host bits cleared."""
    family, value, length = parse_prefix(text)
    return family, network_of(family, value, length), length


def prefix_text(prefix: Prefix) -> str:
    """Format a prefix as ``ADDR/LEN``."""
    return format_prefix(*prefix)


def prefix_contains(outer: Prefix, inner: Prefix) -> bool:
    """Tell whether ``outer`` contains ``inner`` (equal prefixes count)."""
    family, net, length = outer
    return family == inner[0] and inner[2] >= length and network_of(family, inner[1], length) == net


def prefixes_overlap(first: Prefix, second: Prefix) -> bool:
    """Tell whether two prefixes share an address. Two prefixes either nest or are disjoint."""
    return prefix_contains(first, second) or prefix_contains(second, first)


def address_prefix(interface: Interface, family: int = AF_INET) -> list[tuple[Prefix, str]]:
    """Return the connected prefixes of an interface's global addresses with their ``ADDR/LEN`` text."""
    result = []
    for address in interface.addresses:
        if address.family != family or address.scope not in ("global", "universe"):
            continue
        result.append((address.network, address.cidr))
    return result


def common_supernet(prefixes: list[Prefix]) -> Prefix | None:
    """Return the longest prefix that contains every prefix given (all of one family)."""
    if not prefixes:
        return None
    family = prefixes[0][0]
    if any(prefix[0] != family for prefix in prefixes):
        return None
    bits = 32 if family == AF_INET else 128
    low = min(prefix[1] for prefix in prefixes)
    high = max(prefix[1] | ((1 << (bits - prefix[2])) - 1) for prefix in prefixes)
    length = min(prefix[2] for prefix in prefixes)
    while length > 0 and network_of(family, low, length) != network_of(family, high, length):
        length -= 1
    return family, network_of(family, low, length), length


def is_overlay_interface(interface: Interface) -> bool:
    """Tell whether an interface is a tunnel, an OVS device or a Calico workload veth."""
    name = interface.name
    if interface.kind in OVERLAY_KINDS:
        return True
    if name in ("flannel0", "tunl0", "vxlan.calico", "ovs-system") or name.startswith(("flannel.", "cali")):
        return True
    return name.startswith(("gre_sys", "vxlan_sys", "genev_sys", "gre0", "gretap0"))


def is_bridge_like(node: NodeSnapshot, interface: Interface) -> bool:
    """Tell whether an interface is a Linux bridge (by kind, by a known name, or because it has ports)."""
    if interface.kind == "bridge" or interface.name in POD_BRIDGE_NAMES:
        return True
    if interface.kind == "openvswitch":
        return False
    return bool(node.ports_of(interface.name))


def _distinct_lengths(lengths: Sequence[int], low: int, high: int, bits: int) -> list[int]:
    """Return the distinct prefix lengths of rows ``low`` to ``high``, longest first.

    A column of bytes is searched once per possible length, which costs less
    than building a set of every row's length.
    """
    try:
        view = memoryview(lengths)  # type: ignore[arg-type]
    except TypeError:
        view = None
    if view is None or view.format != "B":
        return sorted(set(lengths[low:high]), reverse=True)
    raw = view[low:high].tobytes()
    if raw.translate(None, _VALID_LENGTHS[bits]):  # a length beyond the family's bits, as a corrupt capture may hold
        return sorted(set(raw), reverse=True)
    return [length for length in range(bits, -1, -1) if raw.find(length) != -1]


#: The valid prefix lengths of each address size, as bytes to delete with ``bytes.translate``.
_VALID_LENGTHS = {bits: bytes(range(bits + 1)) for bits in (32, 128)}


class RouteIndex:
    """Longest-prefix lookups over the main table of one node, read from the table's columns.

    Rows are stored sorted by family, table, destination and length, so the
    main-table rows of a family form one range in which destinations ascend.
    A lookup bisects that range for each distinct prefix length, and no
    per-route structure is kept: a node with 25,000 routes costs a few
    integers here. :meth:`prime` resolves many prefixes at once (every peer's
    pod subnets) and keeps only the resulting row numbers.
    """

    def __init__(self, table: RouteTable) -> None:
        self._table = table
        #: Columns of the route table read so far, by name.
        self._cells: dict[str, Sequence[Any]] = {}
        #: The same columns as numpy arrays, for the vectorised path; None for a column that is not a typed array.
        self._bulk_columns: dict[str, Any] = {}
        #: The result of :meth:`default_device`, once computed (a list, since None is a possible result).
        self._default_device: list[str | None] = []
        # Decoding a whole column of 5,000 rows costs about as much as reading two of its rows alone.
        families, tables = table.cells("family"), table.cells("table")
        self._dst = table.cells("dst")
        self._dst_len = table.cells("dst_len")
        self._types = table.cells("type")
        #: family -> (first row, end row) of the main table.
        self._range: dict[int, tuple[int, int]] = {}
        #: family -> distinct prefix lengths in the main table, longest first.
        self._lengths: dict[int, list[int]] = {}
        count = len(table)
        main = ROUTE_TABLES["main"]
        family_start = 0
        while family_start < count:
            family = families[family_start]
            family_end = bisect_right(families, family, family_start, count)
            low = bisect_left(tables, main, family_start, family_end)
            high = bisect_right(tables, main, low, family_end)
            if low < high:
                self._range[family] = (low, high)
                self._lengths[family] = _distinct_lengths(self._dst_len, low, high, 32 if family == AF_INET else 128)
            family_start = family_end
        #: Best rows of the prefixes given to :meth:`prime`, by position in ``_primed``; -1 means no route.
        self._primed: dict[Prefix, int] = {}
        self._best_rows = array("i")
        #: ``_best_rows`` as bytes, made on the first search for rows.
        self._best_bytes: bytes | None = None
        self._primed_lengths: list[int] = []
        #: Rows whose destination and length another main-table row repeats.
        self._shared_rows: set[int] = set()
        #: With the vectorised path (:mod:`netdoctor.bulk`): ``_best_rows`` and ``_shared_rows`` as numpy arrays.
        self._bulk_rows: Any = None
        self._bulk_shared: Any = None
        self._bulk_lengths: Any = None
        self._bulk_missing: Any = None
        self._bulk_safe: Any = None
        #: Flags by primed position, per query of :meth:`_positions_bulk`.
        self._bulk_flags: dict[tuple[Any, ...], Any] = {}

    def _rows(self, family: int, net: int, length: int) -> Iterator[int]:
        """Yield the main-table rows whose destination is exactly ``net/length``, in table order."""
        low, high = self._range[family]
        row = bisect_left(self._dst, net, low, high)
        while row < high and self._dst[row] == net:
            if self._dst_len[row] == length:
                yield row
            elif self._dst_len[row] > length:
                return
            row += 1

    def covering_rows(self, prefix: Prefix) -> Iterator[int]:
        """Yield the main-table rows whose destination contains ``prefix``, most specific first."""
        family, net, length = prefix
        for route_length in self._lengths.get(family, ()):
            if route_length <= length:
                yield from self._rows(family, network_of(family, net, route_length), route_length)

    def covering(self, prefix: Prefix) -> Iterator[Route]:
        """Yield the main-table routes whose destination contains ``prefix``, most specific first."""
        for row in self.covering_rows(prefix):
            yield self._table[row]

    def forwards(self, prefix: Prefix) -> bool:
        """Tell whether a main-table route other than the default and discard routes contains ``prefix``."""
        row = self.best_row(prefix)
        if row is None:
            return False
        if self._types[row] not in DISCARD_TYPES:
            return self._dst_len[row] > 0
        # The most specific route discards; a less specific one may still forward.
        return any(
            self._types[row] not in DISCARD_TYPES and self._dst_len[row] > 0 for row in self.covering_rows(prefix)
        )

    def best_row(self, prefix: Prefix, *, skip_default: bool = False) -> int | None:
        """Return the row of the most specific main-table route that contains ``prefix``, if any."""
        position = self._primed.get(prefix)
        if position is not None:
            row: int | None = self._best_rows[position]
            if row == -1:
                row = None
        else:
            row = next(self.covering_rows(prefix), None)
        if row is not None and skip_default and self._dst_len[row] == 0:
            return None
        return row

    def preferred_row(self, prefix: Prefix) -> int | None:
        """Return the row of the route the kernel uses for ``prefix``: the most specific, then the lowest metric."""
        row = self.best_row(prefix)
        if row is None:
            return None
        end = row + 1
        high = self._range[prefix[0]][1]
        while end < high and self._dst[end] == self._dst[row] and self._dst_len[end] == self._dst_len[row]:
            end += 1
        if end == row + 1:
            return row
        metrics = self._table.cells("metric")
        return min(range(row, end), key=metrics.__getitem__)

    def rows_on_devices(self, family: int, wanted: Callable[[str], bool]) -> list[int]:
        """Return the main-table rows of ``family`` whose device name passes ``wanted``, in table order."""
        return self.rows_where("dev", family, wanted)

    def rows_where(self, name: str, family: int, wanted: Callable[[str], bool]) -> list[int]:
        """Return the main-table rows of ``family`` whose string column ``name`` passes ``wanted``.

        Strings are interned per column, so ``wanted`` runs once per distinct
        value and the rows are picked from the index column without a Python loop.
        """
        if family not in self._range:
            return []
        low, high = self._range[family]
        values, index = self._table.interned(name)
        codes = {code for code, value in enumerate(values) if wanted(value)}
        if not codes:
            return []
        return rows_with(index, codes, low, high)

    def best(self, prefix: Prefix, *, skip_default: bool = False) -> Route | None:
        """Return the most specific main-table route that contains ``prefix``, if any."""
        row = self.best_row(prefix, skip_default=skip_default)
        return None if row is None else self._table[row]

    def default_device(self) -> str | None:
        """Return the device of the IPv4 default route the kernel prefers, if there is one (computed once)."""
        if not self._default_device:
            row = self.best_row((AF_INET, 0, 0))
            values, index = self._table.interned("dev")
            self._default_device.append(None if row is None else values[index[row]])
        return self._default_device[0]

    def route(self, row: int) -> Route:
        """Return the route of one row."""
        return self._table[row]

    def prefix(self, row: int) -> Prefix:
        """Return the destination of one row as a prefix, without reading the row's other columns."""
        return self.cells("family")[row], self._dst[row], self._dst_len[row]

    def cells(self, name: str) -> Sequence[Any]:
        """Return one column of the node's route table, indexable by the row numbers this index returns."""
        column = self._cells.get(name)
        if column is None:
            column = self._cells[name] = self._table.cells(name)
        return column

    def inside_range(self, prefix: Prefix) -> range:
        """Return the main-table rows whose destination address lies inside ``prefix``, of any length."""
        family, net, length = prefix
        if family not in self._range:
            return range(0)
        low, high = self._range[family]
        bits = 32 if family == AF_INET else 128
        first = bisect_left(self._dst, net, low, high)
        return range(first, bisect_left(self._dst, net + (1 << (bits - length)), first, high))

    def inside_rows(self, prefix: Prefix) -> list[int]:
        """Return the main-table rows whose destination lies inside ``prefix`` (equal included), in table order."""
        rows = self.inside_range(prefix)
        return list(compress(rows, map(prefix[2].__le__, self._dst_len[rows.start:rows.stop])))

    def interned(self, name: str) -> tuple[list[str], array]:
        """Return a string column of the route table as its distinct values and one position per row."""
        return self._table.interned(name)

    def text_codes(self, name: str, wanted: Callable[[str], bool]) -> set[int]:
        """Return the codes of the interned values of string column ``name`` that pass ``wanted``.

        A row passes when its position in :meth:`interned` is in the result,
        which ``map()`` can test for many rows without a Python step per row.
        """
        values, _ = self._table.interned(name)
        return {code for code, value in enumerate(values) if wanted(value)}

    def inside(self, prefix: Prefix) -> Iterator[Route]:
        """Yield the main-table routes whose destination lies inside ``prefix`` (equal included)."""
        for row in self.inside_rows(prefix):
            yield self._table[row]

    def families(self) -> list[int]:
        """Return the address families that have main-table routes."""
        return sorted(self._range)

    def prime(self, primed: PrimedPrefixes) -> None:
        """Resolve the best route of many IPv4 prefixes at once and remember the rows.

        Every node's index shares ``primed``, so a node keeps only one row number
        per prefix. An exact match is the most specific route there can be, so
        one dict built from the main table's destination column resolves most
        prefixes, and only the rest take the bisecting path.
        """
        self._bulk_rows = self._bulk_shared = None
        if primed.arrays is not None and AF_INET in self._range and self._prime_bulk(primed):
            return
        best = array("i", [-1]) * len(primed.prefixes)
        if AF_INET in self._range:
            low, high = self._range[AF_INET]
            destinations = self._dst[low:high]
            # Reversed, so that the first row of a destination is the one kept.
            first = dict(zip(reversed(destinations), range(high - 1, low - 1, -1)))
            if len(first) == high - low:
                best = array("i", map(first.get, primed.networks, repeat(-1)))
                # A row found by its address alone must also have the prefix's length.
                lengths = map(self._dst_len.__getitem__, best)
                unresolved = set(compress(range(len(best)), map(ne, lengths, primed.lengths)))
            else:
                # Some destination has several rows (other lengths, metrics or types): key by both.
                keys = list(map(or_, map(lshift, destinations, repeat(8)), self._dst_len[low:high]))
                by_key = dict(zip(reversed(keys), range(high - 1, low - 1, -1)))
                if len(by_key) < len(keys):
                    # Equal keys sit next to each other; each group's first row is among these.
                    self._shared_rows = set(compress(range(low, high - 1), map(eq, keys, keys[1:])))
                del keys
                best = array("i", map(by_key.get, primed.keys, repeat(-1)))
                unresolved = set()
            unresolved.update(compress(range(len(best)), map((-1).__eq__, best)))
            if unresolved:
                self._resolve_covering(primed, best, sorted(unresolved), low, high)
        self._primed = primed.positions
        self._primed_lengths = primed.lengths
        self._best_rows = best
        self._best_bytes = None

    def _prime_bulk(self, primed: PrimedPrefixes) -> bool:
        """Do :meth:`prime` with numpy; return False when a column is not a typed array (IPv6 routes)."""
        from netdoctor import bulk

        dst, dst_len = bulk.column(self._dst), bulk.column(self._dst_len)
        if dst is None or dst_len is None:
            return False
        low, high = self._range[AF_INET]
        rows, shared = bulk.best_rows(dst, dst_len, low, high, self._lengths.get(AF_INET, ()), primed.arrays)
        self._bulk_rows, self._bulk_shared, self._bulk_lengths = rows, shared, primed.arrays[1]
        self._bulk_missing = rows == -1
        self._bulk_safe = rows.clip(0)
        self._bulk_flags = {}
        self._shared_rows = set(shared.tolist())
        self._primed = primed.positions
        self._primed_lengths = primed.lengths
        self._best_rows = array("i", rows.tobytes())
        self._best_bytes = None
        return True

    def bulk_rows(self) -> Any:
        """Return :meth:`primed_rows` as a numpy array when :meth:`prime` used numpy, else None."""
        return self._bulk_rows

    def shared_rows(self) -> set[int]:
        """Return the main-table rows whose destination and length the next row repeats (the metric decides)."""
        return self._shared_rows

    def positions_of_rows(self, rows: Iterable[int]) -> set[int]:
        """Return the primed positions whose best row is one of ``rows``."""
        return self._positions_of_rows(rows)

    def bulk_column(self, name: str) -> Any:
        """Return a column as a numpy array (see :func:`netdoctor.bulk.column`), made once."""
        from netdoctor import bulk

        if name not in self._bulk_columns:
            source = self._table.interned(name)[1] if name in ("dev", "protocol") else self.cells(name)
            self._bulk_columns[name] = bulk.column(source)
        return self._bulk_columns[name]

    def gateway_owner_differs(self, node_by_address: dict[int, str], owner_names: list[str | None],
                              owner_codes: Callable[[], Any]) -> set[int]:
        """Return the primed positions whose best route is exactly the prefix and not via the subnet's owner.

        ``owner_names`` gives the owner of each position (None when several
        nodes claim it) and ``node_by_address`` the owner of each gateway. A
        position whose gateway has no owner and whose subnet has none is not
        returned. ``owner_codes`` returns both as arrays for the vectorised
        path (:func:`netdoctor.bulk.owner_codes`). Unrouted positions are left out.
        """
        rows = self._best_rows
        if self._bulk_rows is not None:
            from netdoctor import bulk

            gateways, lengths = self.bulk_column("gateway"), self.bulk_column("dst_len")
            if gateways is not None:
                exact = lengths[self._bulk_safe] == self._bulk_lengths
                differs = bulk.owner_mismatch(self._bulk_safe, gateways, owner_codes()) & exact & ~self._bulk_missing
                return set(bulk.np.flatnonzero(differs).tolist())
        missing = self._positions_of_rows([-1])
        if len(missing) == len(rows):
            return set()
        every = range(len(rows))
        # A row of -1 reads the table's last row here; those positions are dropped at the end.
        gateway_cells, length_cells = self._table.cells("gateway"), self._dst_len
        owners = map(node_by_address.get, map(gateway_cells.__getitem__, rows))
        found = set(compress(every, map(ne, owners, owner_names)))
        # Only a route exactly for the subnet is judged.
        found.intersection_update(compress(every, map(eq, map(length_cells.__getitem__, rows), self._primed_lengths)))
        return found - missing

    def _resolve_covering(self, primed: PrimedPrefixes, best: array, positions: list[int], low: int,
                          high: int) -> None:
        """Set the best row of each primed position in ``positions`` to the most specific route that contains it.

        This is :meth:`covering_rows` for many prefixes at once: for each route
        length, longest first, one dict maps the destinations of that length
        to their first row, and the prefixes still unresolved look up their own
        network masked to that length. Prefixes that no route contains get -1.
        """
        networks, lengths = primed.networks, primed.lengths
        destinations, route_lengths = self._dst[low:high], self._dst_len[low:high]
        for length in self._lengths.get(AF_INET, ()):
            if not positions:
                break
            rows = list(compress(range(low, high), map(length.__eq__, route_lengths)))
            # Reversed, so that the first row of a destination is the one kept.
            first = {destinations[row - low]: row for row in reversed(rows)}
            mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
            pending: list[int] = []
            for position in positions:
                row = first.get(networks[position] & mask) if lengths[position] >= length else None
                if row is None:
                    pending.append(position)
                else:
                    best[position] = row
            positions = pending
        for position in positions:
            best[position] = -1

    def primed_lengths(self) -> list[int]:
        """Return the prefix length of each primed prefix, by position."""
        return self._primed_lengths

    def primed_rows(self) -> array | None:
        """Return the best row of each primed prefix by position (-1 for none), or None before :meth:`prime`."""
        return self._best_rows if self._primed else None

    def positions_where(self, unusual: Callable[[int], bool] | None = None, *, unrouted: bool = True,
                        discard: bool = False, default: bool = False, shared: bool = False,
                        text: tuple[str, set[int]] | None = None) -> set[int]:
        """Return the primed positions whose best row is unusual, scanning the rows in bulk.

        Each option selects positions:

        * ``unrouted``: no route covers the prefix;
        * ``discard``: the best route is a discard route;
        * ``default``: the best route is a default route;
        * ``shared``: another row has the best route's destination, so the lowest metric decides;
        * ``text`` as ``(column, codes)``: the best route's string column has one of
          the codes from :meth:`text_codes`;
        * ``unusual``: called on every row, for a check's own test.
        """
        rows = self._best_rows
        if self._bulk_rows is not None and unusual is None:
            vectorised = self._positions_bulk(unrouted, discard, default, shared, text)
            if vectorised is not None:
                return vectorised
        every = range(len(rows))
        missing = self._positions_of_rows([-1])
        if len(missing) == len(rows):
            return missing if unrouted else set()
        low, high = self._range.get(AF_INET, (0, 0))
        flagged: set[int] = set()
        if discard:
            discarded = set(DISCARD_TYPES)
            flagged |= self._positions_of_rows(
                compress(range(low, high), map(discarded.__contains__, self._types[low:high])),
                lambda: map(discarded.__contains__, map(self._types.__getitem__, rows)),
            )
        if default:
            flagged |= self._positions_of_rows(
                list(self._rows(AF_INET, 0, 0)) if low < high else [],
                lambda: map((0).__eq__, map(self._dst_len.__getitem__, rows)),
            )
        if shared and self._shared_rows:
            flagged |= self._positions_of_rows(self._shared_rows, lambda: map(self._shared_rows.__contains__, rows))
        if text is not None:
            _, index = self._table.interned(text[0])
            codes = text[1]
            flagged |= self._positions_of_rows(
                compress(range(low, high), map(codes.__contains__, index[low:high])),
                lambda: map(codes.__contains__, map(index.__getitem__, rows)),
            )
        if unusual is not None:
            flagged.update(compress(every, map(unusual, rows)))
        # A row of -1 reads the table's last row in the scans above, so those positions are dropped there.
        flagged -= missing
        return flagged | missing if unrouted else flagged

    def _positions_bulk(self, unrouted: bool, discard: bool, default: bool, shared: bool,
                        text: tuple[str, set[int]] | None) -> set[int] | None:
        """Do :meth:`positions_where` with numpy; return None when a column is not a typed array.

        The flags of each option are computed once per index, since several checks ask for the same ones.
        """
        from netdoctor import bulk

        wanted: list[tuple[Any, ...]] = []
        if discard:
            wanted.append(("type", DISCARD_TYPES))
        if default:
            wanted.append(("dst_len", frozenset({0})))
        if shared and self._shared_rows:
            wanted.append(("shared",))
        if text is not None:
            wanted.append((text[0], frozenset(text[1])))
        flags = bulk.np.zeros(len(self._best_rows), dtype=bool)
        for key in wanted:
            found = self._bulk_flags.get(key)
            if found is None:
                if key[0] == "shared":
                    found = bulk.np.zeros(len(self._best_rows), dtype=bool)
                    found[list(self._positions_of_rows(self._shared_rows))] = True
                else:
                    column = self.bulk_column(key[0])
                    if column is None:
                        return None
                    found = bulk.rows_in(key[1], column, self._bulk_safe)
                self._bulk_flags[key] = found
            flags |= found
        return bulk.positions(flags, self._bulk_missing, unrouted)

    def _positions_of_rows(self, wanted: Iterable[int], scan: Callable[[], Iterator[bool]] | None = None) -> set[int]:
        """Return the primed positions whose best row is one of ``wanted``.

        A few wanted rows are found by searching the row array's bytes for each
        row's machine encoding, a C search that builds no Python integers. For
        more rows, ``scan`` (one bool per position) is used instead, or the
        positions are collected row by row when no scan is given.
        """
        rows = self._best_rows
        chosen = list(islice(wanted, _INDEX_SEARCH_LIMIT + 1))
        if len(chosen) > _INDEX_SEARCH_LIMIT and scan is not None:
            return set(compress(range(len(rows)), scan()))
        found: set[int] = set()
        if not chosen:
            return found
        raw = self._best_bytes
        if raw is None:
            raw = self._best_bytes = rows.tobytes()
        size = rows.itemsize
        for row in chosen:
            pattern = array("i", (row,)).tobytes()
            at = raw.find(pattern)
            while at != -1:
                # A match that straddles two entries is not a row number.
                if at % size:
                    at = raw.find(pattern, at + 1)
                    continue
                found.add(at // size)
                at = raw.find(pattern, at + size)
        return found


@record
class PodBridge:
    """A bridge that contains (or is meant to contain) the node's pods."""

    node: str
    name: str
    prefix: Prefix
    #: The bridge address as ``ip addr`` prints it (``172.16.10.1/24``).
    cidr: str
    mtu: int
    ports: tuple[str, ...]
    #: Why it counts as a pod bridge: ``ports``, ``overlay subnet``, ``podCIDR``, ``peer routes``.
    reason: str

    @property
    def subnet(self) -> str:
        """The bridge's connected subnet as ``ADDR/LEN``."""
        return prefix_text(self.prefix)


@record
class PodSubnet:
    """A pod subnet that belongs to one node, with where that fact comes from."""

    node: str
    prefix: Prefix
    #: ``FLANNEL_SUBNET``, ``flannel lease``, ``podCIDR``, ``bridge docker0``, ``Calico block``.
    source: str

    @property
    def text(self) -> str:
        return prefix_text(self.prefix)


@record
class PodNetwork:
    """A cluster-wide pod network with its source (``FLANNEL_NETWORK``, ``etcd config``, ``Calico pool``)."""

    prefix: Prefix
    source: str
    #: The node whose data gave it, or None for etcd or an inference across nodes.
    node: str | None = None
    #: False for a network inferred as the common supernet of the nodes' subnets, which may hold
    #: addresses that no node owns.
    configured: bool = True

    @property
    def text(self) -> str:
        return prefix_text(self.prefix)


@record(frozen=False, slots=False)
class NodeFacts:
    """Derived facts about one node. Lists are empty when the part they come from was not captured."""

    name: str
    node: NodeSnapshot
    routes: RouteIndex | None
    #: Interfaces that carry the node's own traffic between hosts.
    underlay: list[Interface] = field(default_factory=list)
    #: ``(prefix, "ADDR/LEN", interface name)`` of every underlay address.
    underlay_subnets: list[tuple[Prefix, str, str]] = field(default_factory=list)
    #: Every global IPv4 address of the node, as integers.
    addresses: set[int] = field(default_factory=set)
    pod_bridges: list[PodBridge] = field(default_factory=list)
    #: The subnet the overlay assigned to this node, with its source.
    overlay_subnet: PodSubnet | None = None
    #: Calico blocks this node owns: discard routes with its pods or its tunnel address inside.
    calico_blocks: list[PodSubnet] = field(default_factory=list)
    #: Rows of the node's route table that hold discard routes (blackhole, unreachable, prohibit) in the main table.
    #: Routes are read from their rows only when a check needs more than the prefix (:meth:`RouteIndex.prefix`).
    discard_rows: list[int] = field(default_factory=list)
    #: Rows of the node's route table that hold ``/32`` routes to Calico workload interfaces (``cali*``).
    workload_rows: list[int] = field(default_factory=list)
    #: Values that checks derive from these facts alone, computed by the first check that needs one
    #: and shared with the others, by name.
    memo: dict[str, Any] = field(default_factory=dict, repr=False)
    #: One dictionary for every node of the snapshot, for values that nodes with equal parts share,
    #: such as compiled iptables tables.
    shared: dict[Any, Any] = field(default_factory=dict, repr=False)
    #: ``pod_subnets()`` once computed; the facts are complete before any check reads them.
    _pod_subnets: list[PodSubnet] | None = field(default=None, repr=False)

    def pod_subnets(self) -> list[PodSubnet]:
        """Return every pod subnet known to belong to this node, without duplicates."""
        if self._pod_subnets is not None:
            return self._pod_subnets
        result: list[PodSubnet] = []
        seen: set[Prefix] = set()
        candidates = ([self.overlay_subnet] if self.overlay_subnet else []) + [
            PodSubnet(self.name, bridge.prefix, f"bridge {bridge.name}") for bridge in self.pod_bridges
        ] + self.calico_blocks
        for subnet in candidates:
            if subnet.prefix not in seen:
                seen.add(subnet.prefix)
                result.append(subnet)
        self._pod_subnets = result
        return result

    def underlay_mtu(self) -> tuple[int, str] | None:
        """Return the MTU and name of the interface that carries the default route, or the first underlay one."""
        if not self.underlay:
            return None
        default_dev = self.routes.default_device() if self.routes is not None else None
        for interface in self.underlay:
            if interface.name == default_dev:
                return interface.mtu, interface.name
        return self.underlay[0].mtu, self.underlay[0].name


@record(frozen=False, slots=False)
class ClusterFacts:
    """Derived facts about the whole snapshot."""

    nodes: dict[str, NodeFacts]
    #: Underlay address -> node name.
    node_by_address: dict[int, str]
    pod_networks: list[PodNetwork]
    #: Flannel leases from etcd: ``(prefix, public IP text, node name or None)``.
    flannel_leases: list[tuple[Prefix, str, str | None]]
    #: The ``Backend.Type`` of the flannel network config in etcd, lower case, if captured.
    flannel_backend: str | None
    #: Values derived from these facts alone (such as the detected backends), by name, computed once.
    memo: dict[str, Any] = field(default_factory=dict, repr=False)
    #: By primed position: ``(node, index in its pod_subnets(), subnet)`` of every subnet with that prefix.
    subnet_owners: list[list[tuple[NodeFacts, int, PodSubnet]]] = field(default_factory=list, repr=False)
    #: Pod subnets that were not primed (not IPv4), with the same fields.
    unprimed_subnets: list[tuple[NodeFacts, int, PodSubnet]] = field(default_factory=list, repr=False)

    def peer_subnets(self, name: str, positions: Iterable[int] | None = None, *,
                     unprimed: bool = True) -> list[tuple[NodeFacts, PodSubnet]]:
        """Return ``(peer, subnet)`` for every pod subnet of every other node, in the order of :meth:`peers`.

        With ``positions`` (from :meth:`RouteIndex.positions_where` on this node's
        routes), only the IPv4 subnets at those positions are returned, with every
        subnet that was not primed (IPv6). A check then visits only the pairs whose
        routes need its attention, not all N² of them. With ``unprimed`` False, the
        subnets that were not primed are left out.
        """
        if positions is None or not self.subnet_owners or self.nodes[name].routes is None:
            return [(peer, subnet) for peer in self.peers(name) for subnet in peer.pod_subnets()]
        selected: list[tuple[str, int, NodeFacts, PodSubnet]] = []
        for position in positions:
            for owner, order, subnet in self.subnet_owners[position]:
                if owner.name != name:
                    selected.append((owner.name, order, owner, subnet))
        for owner, order, subnet in self.unprimed_subnets if unprimed else ():
            if owner.name != name:
                selected.append((owner.name, order, owner, subnet))
        selected.sort(key=lambda item: (item[0], item[1]))
        return [(owner, subnet) for _, _, owner, subnet in selected]

    def any_peer_subnet(self, name: str, positions: Iterable[int] | None,
                        test: Callable[[NodeFacts, PodSubnet], bool]) -> bool:
        """Tell whether ``test`` accepts some ``(peer, subnet)`` that :meth:`peer_subnets` returns.

        The pairs are tested as they are found, not sorted first, so a test
        that accepts an early pair reads few of the N² pairs.
        """
        if positions is None or not self.subnet_owners or self.nodes[name].routes is None:
            return any(test(peer, subnet) for peer, subnet in self.peer_subnets(name))
        for position in positions:
            for owner, _, subnet in self.subnet_owners[position]:
                if owner.name != name and test(owner, subnet):
                    return True
        return any(test(owner, subnet) for owner, _, subnet in self.unprimed_subnets if owner.name != name)

    def shared_positions(self) -> set[int]:
        """Return the primed positions of subnets that more than one node claims."""
        shared: set[int] | None = self.memo.get("shared positions")
        if shared is None:
            shared = self.memo["shared positions"] = {
                position for position, owners in enumerate(self.subnet_owners) if len(owners) > 1
            }
        return shared

    def first_peer_subnet(self, name: str, positions: Iterable[int]) -> tuple[NodeFacts, PodSubnet] | None:
        """Return the first ``(peer, subnet)`` in the order of :meth:`peer_subnets` among primed ``positions``.

        Positions are numbered in the order of node names, so the lowest position
        with an owner other than ``name`` contains the first pair. A subnet that
        several nodes claim can put a later owner earlier, so those few are compared too.
        """
        ordered = sorted(positions)
        candidates: list[tuple[str, int, NodeFacts, PodSubnet]] = []
        for position in ordered:
            owners = [item for item in self.subnet_owners[position] if item[0].name != name]
            if owners:
                candidates.append((owners[0][0].name, owners[0][1], owners[0][0], owners[0][2]))
                break
        for position in self.shared_positions().intersection(ordered):
            candidates += [(owner.name, order, owner, subnet) for owner, order, subnet in self.subnet_owners[position]
                           if owner.name != name]
        if not candidates:
            return None
        _, _, owner, subnet = min(candidates, key=lambda item: (item[0], item[1]))
        return owner, subnet

    def owner_names(self) -> list[str | None]:
        """Return, by primed position, the node that owns the subnet, or None when several nodes claim it."""
        names: list[str | None] | None = self.memo.get("owner names")
        if names is None:
            names = [owners[0][0].name if len(owners) == 1 else None for owners in self.subnet_owners]
            self.memo["owner names"] = names
        return names

    def owner_codes(self) -> Any:
        """Return :meth:`owner_names` and :attr:`node_by_address` numbered for :mod:`netdoctor.bulk`, made once."""
        codes = self.memo.get("owner codes")
        if codes is None:
            from netdoctor import bulk

            codes = self.memo["owner codes"] = bulk.owner_codes(self.node_by_address, self.owner_names())
        return codes

    def peers(self, name: str) -> list[NodeFacts]:
        """Return the facts of every other node, by name."""
        return list(self.iter_peers(name))

    def iter_peers(self, name: str) -> Iterator[NodeFacts]:
        """Yield the facts of every other node, by name; cheaper than :meth:`peers` for a search that stops early."""
        ordered: list[tuple[str, NodeFacts]] | None = self.memo.get("sorted nodes")
        if ordered is None:
            ordered = self.memo["sorted nodes"] = sorted(self.nodes.items())
        return (facts for other, facts in ordered if other != name)


_CACHE: list[tuple[ClusterSnapshot, ClusterFacts]] = []
_CACHE_SIZE = 4
# threading.Lock is this function; importing threading would slow down every check.
_CACHE_LOCK = allocate_lock()


def cluster_facts(snapshot: ClusterSnapshot) -> ClusterFacts:
    """Return the facts of a snapshot, computing them on first use."""
    with _CACHE_LOCK:
        for cached, facts in _CACHE:
            if cached is snapshot:
                return facts
    facts = _compute(snapshot)
    with _CACHE_LOCK:
        _CACHE.append((snapshot, facts))
        del _CACHE[:-_CACHE_SIZE]
    return facts


def _compute(snapshot: ClusterSnapshot) -> ClusterFacts:
    shared: dict[Any, Any] = {}
    nodes = {node.name: _base_facts(node, shared) for node in snapshot.nodes}
    kube = {item.name: item for item in snapshot.kube_nodes or ()}
    network_config, backend, leases_raw = _read_flannel_etcd(snapshot)

    # Underlay addresses: everything global that is not an overlay device or a docker-style bridge.
    for facts in nodes.values():
        for interface in facts.node.interfaces or ():
            if interface.kind == "loopback" or interface.name == "lo" or is_overlay_interface(interface):
                continue
            for prefix, cidr in address_prefix(interface):
                facts.addresses.add(parse_ip(cidr.partition("/")[0])[1])
    node_by_address: dict[int, str] = {}
    for facts in nodes.values():
        for interface in facts.node.interfaces or ():
            if is_overlay_interface(interface) or interface.kind in VPN_KINDS or is_bridge_like(facts.node, interface):
                continue
            for _, cidr in address_prefix(interface):
                node_by_address.setdefault(parse_ip(cidr.partition("/")[0])[1], facts.name)

    leases: list[tuple[Prefix, str, str | None]] = []
    for prefix, public_ip in leases_raw:
        owner = None
        try:
            owner = _owner_of_address(nodes, parse_ip(public_ip)[1])
        except AddressError:
            logger.warning("etcd: flannel lease %s has an invalid PublicIP %r", prefix_text(prefix), public_ip)
        leases.append((prefix, public_ip, owner))

    for facts in nodes.values():
        facts.overlay_subnet = _overlay_subnet(facts, kube.get(facts.name), leases)
    routed = _peer_routed_prefixes(nodes)
    for facts in nodes.values():
        _find_pod_bridges(facts, routed)
        _find_underlay(facts)
        facts.calico_blocks = _own_calico_blocks(facts)
    owners, unprimed = _prime_pod_subnets(nodes)

    pod_networks = _pod_networks(snapshot, nodes, network_config)
    return ClusterFacts(nodes, node_by_address, pod_networks, leases, backend,
                        subnet_owners=owners, unprimed_subnets=unprimed)


Owners = list[list[tuple["NodeFacts", int, PodSubnet]]]


@record(slots=False)
class PrimedPrefixes:
    """The IPv4 pod subnets of a cluster that every node's route index resolves at once, by position."""

    prefixes: list[Prefix]
    positions: dict[Prefix, int]
    networks: list[int]
    lengths: list[int]
    #: ``network << 8 | length`` of each prefix.
    keys: list[int]
    #: Networks, lengths and keys as numpy arrays when the vectorised path is used, else None.
    arrays: Any = None


def _prime_pod_subnets(nodes: dict[str, NodeFacts]) -> tuple[Owners, list[tuple[NodeFacts, int, PodSubnet]]]:
    """Resolve every node's route to every IPv4 pod subnet of the cluster in one pass per node.

    Most checks look up each peer's pod subnets in each node's routes, which
    is N² lookups for N nodes. Resolving them in bulk here keeps those checks
    linear in the size of the snapshot. Returns the subnets by primed
    position and the subnets that were not primed.
    """
    positions: dict[Prefix, int] = {}
    owners: Owners = []
    unprimed: list[tuple[NodeFacts, int, PodSubnet]] = []
    # Positions follow the order of node names, as ClusterFacts.first_peer_subnet relies on.
    for _, facts in sorted(nodes.items()):
        for order, subnet in enumerate(facts.pod_subnets()):
            if subnet.prefix[0] != AF_INET:
                unprimed.append((facts, order, subnet))
                continue
            position = positions.setdefault(subnet.prefix, len(positions))
            if position == len(owners):
                owners.append([])
            owners[position].append((facts, order, subnet))
    if len(positions) < 2:
        return [], []
    prefixes = list(positions)
    primed = PrimedPrefixes(
        prefixes, positions, [network for _, network, _ in prefixes], [length for _, _, length in prefixes],
        [network << 8 | length for _, network, length in prefixes],
    )
    indexes = [facts.routes for facts in nodes.values() if facts.routes is not None]
    if len(prefixes) * len(indexes) >= BULK_MIN_PAIRS:
        from netdoctor import bulk

        primed = replace(primed, arrays=bulk.primed_arrays(primed.networks, primed.lengths))
    for index in indexes:
        index.prime(primed)
    return owners, unprimed



def _base_facts(node: NodeSnapshot, shared: dict[Any, Any]) -> NodeFacts:
    index = RouteIndex(node.routes) if node.routes is not None else None
    facts = NodeFacts(node.name, node, index, shared=shared)
    if node.routes is None or index is None or AF_INET not in index._range:
        return facts
    low, high = index._range[AF_INET]
    types = node.routes.cells("type")
    devices = node.routes.cells("dev")
    facts.discard_rows = rows_with(types, DISCARD_TYPES, low, high)
    facts.workload_rows = [
        row for row in rows_with(node.routes.cells("dst_len"), _HOST_LENGTH, low, high)
        if types[row] not in DISCARD_TYPES and devices[row].startswith("cali")
    ]
    return facts


_HOST_LENGTH = frozenset({32})


def marked_rows(marks: bytes, first: int) -> list[int]:
    """Return ``first`` plus the position of every byte 1 in ``marks``, which contains only bytes 0 and 1.

    Marks are found by ``bytes.find`` in C while they are few. After one
    mark in 16 bytes, the rest are listed by ``compress``. On a 2-vCPU VM,
    ``compress`` took about 30 ns a byte whatever the marks, and ``find``
    about 300 ns a mark.
    """
    rows: list[int] = []
    at = marks.find(1)
    budget = len(marks) >> 4
    while at != -1:
        rows.append(first + at)
        budget -= 1
        if budget < 0:
            rows += compress(range(first + at + 1, first + len(marks)), marks[at + 1 :])
            break
        at = marks.find(1, at + 1)
    return rows


def rows_with(column: Sequence[int], wanted: frozenset[int] | set[int], low: int, high: int) -> list[int]:
    """Return the rows from ``low`` to ``high`` whose value in ``column`` is one of ``wanted``, in order.

    Typed columns are searched as bytes, a C scan that costs a few
    microseconds for a thousand rows when few rows match. A column of bytes
    (route types, prefix lengths) is translated to a mark per row, and so is a
    wider column (string codes) whose values in the range are all below 256,
    through its low bytes. In other wide columns, each wanted value's encoding
    is searched at the row boundaries.
    """
    try:
        view = memoryview(column)  # type: ignore[arg-type]
    except TypeError:
        view = None
    if view is None or view.ndim != 1 or view.format not in _SEARCHED_FORMATS:
        return list(compress(range(low, high), map(wanted.__contains__, column[low:high])))
    raw = view[low:high].tobytes()
    size = view.itemsize
    # When every row's value is below 256, its high bytes are zero and its low byte alone is the value.
    if (size > 1 and sys.byteorder == "little" and all(value < 256 for value in wanted)
            and all(raw[offset::size] == bytes(len(raw) // size) for offset in range(1, size))):
        raw, size = raw[0::size], 1
    if size > 1 and len(wanted) > _INDEX_SEARCH_LIMIT:
        return list(compress(range(low, high), map(wanted.__contains__, column[low:high])))
    if size == 1:
        key = frozenset(wanted)
        table = _MARKS.get(key)
        if table is None:
            table = _MARKS[key] = bytes(1 if value in key else 0 for value in range(256))
        return marked_rows(raw.translate(table), low)
    found: list[int] = []
    for value in wanted:
        try:
            pattern = array(view.format, (value,)).tobytes()
        except OverflowError:
            continue  # no row can hold a value the column's type cannot
        at = raw.find(pattern)
        while at != -1:
            if at % size:  # a match across two rows
                at = raw.find(pattern, at + 1)
                continue
            found.append(low + at // size)
            at = raw.find(pattern, at + size)
    if len(wanted) > 1:
        found.sort()
    return found


#: Buffer formats of unsigned integer columns, which :func:`rows_with` searches as bytes.
_SEARCHED_FORMATS = frozenset("BHILQ")

#: Translation tables of :func:`rows_with`, by wanted values.
_MARKS: dict[frozenset[int], bytes] = {}


def _owner_of_address(nodes: dict[str, NodeFacts], value: int) -> str | None:
    for facts in nodes.values():
        if value in facts.addresses:
            return facts.name
    return None


def _read_flannel_etcd(snapshot: ClusterSnapshot) -> tuple[PodNetwork | None, str | None, list[tuple[Prefix, str]]]:
    """Read flannel's network config and subnet leases from captured etcd keys."""
    if snapshot.etcd is None:
        return None, None, []
    network: PodNetwork | None = None
    backend: str | None = None
    leases: list[tuple[Prefix, str]] = []
    for key, value in snapshot.etcd.keys:
        if key.endswith("/network/config"):
            try:
                config = json.loads(value)
                network = PodNetwork(make_prefix(str(config["Network"])), f"etcd {key}")
                backend_type = (config.get("Backend") or {}).get("Type")
                backend = str(backend_type).lower() if backend_type else "udp"
            except (ValueError, KeyError, TypeError, AttributeError, AddressError) as error:
                logger.warning("etcd: cannot read flannel network config %s: %s", key, error)
        elif "/network/subnets/" in key:
            name = key.rsplit("/", 1)[-1]
            try:
                prefix = make_prefix(name.replace("-", "/"))
                public_ip = str(json.loads(value).get("PublicIP", ""))
            except (ValueError, AttributeError, AddressError) as error:
                logger.warning("etcd: cannot read flannel lease %s: %s", key, error)
                continue
            leases.append((prefix, public_ip))
    return network, backend, leases


def _overlay_subnet(facts: NodeFacts, kube: KubeNode | None, leases: list[tuple[Prefix, str, str | None]]) -> PodSubnet | None:
    env = facts.node.flannel_env
    if env is not None and env.subnet:
        try:
            return PodSubnet(facts.name, make_prefix(env.subnet), "FLANNEL_SUBNET")
        except AddressError:
            logger.warning("%s: subnet.env: invalid FLANNEL_SUBNET %r", facts.name, env.subnet)
    for prefix, _, owner in leases:
        if owner == facts.name:
            return PodSubnet(facts.name, prefix, "flannel lease")
    for cidr in kube.pod_cidrs if kube is not None else ():
        try:
            prefix = make_prefix(cidr)
        except AddressError:
            continue
        if prefix[0] == AF_INET:
            return PodSubnet(facts.name, prefix, "podCIDR")
    return None


def _peer_routed_prefixes(nodes: dict[str, NodeFacts]) -> dict[Prefix, set[str]]:
    """Map each candidate bridge subnet to the nodes that route it through a gateway or overlay device.

    Only the subnets of bridges without ports are looked up, so one pass over every
    node's routes is enough.
    """
    candidates: dict[Prefix, set[str]] = {}
    for facts in nodes.values():
        for interface in facts.node.interfaces or ():
            if is_bridge_like(facts.node, interface) and not facts.node.ports_of(interface.name):
                for prefix, _ in address_prefix(interface):
                    candidates.setdefault(prefix, set())
    if not candidates:
        return candidates
    for facts in nodes.values():
        if facts.node.routes is None:
            continue
        for route in facts.node.routes:
            if route.table != ROUTE_TABLES["main"] or route.protocol == "kernel" or route.type in DISCARD_TYPES:
                continue
            prefix = (route.family, route.dst, route.dst_len)
            if prefix in candidates and (route.gateway or route.dev.startswith(("flannel", "tunl0"))):
                candidates[prefix].add(facts.name)
    return candidates


def _find_pod_bridges(facts: NodeFacts, routed: dict[Prefix, set[str]]) -> None:
    node = facts.node
    default_dev = facts.routes.default_device() if facts.routes is not None else None
    for interface in node.interfaces or ():
        if not is_bridge_like(node, interface) or interface.name == default_dev:
            continue
        ports = tuple(sorted(port.name for port in node.ports_of(interface.name)))
        for prefix, cidr in address_prefix(interface):
            reason = None
            if ports:
                reason = "ports"
            elif facts.overlay_subnet is not None and prefix_contains(facts.overlay_subnet.prefix, prefix):
                reason = facts.overlay_subnet.source
            elif routed.get(prefix, set()) - {facts.name}:
                reason = "peer routes"
            if reason is not None:
                facts.pod_bridges.append(PodBridge(facts.name, interface.name, prefix, cidr, interface.mtu, ports, reason))


def _find_underlay(facts: NodeFacts) -> None:
    bridges = {bridge.name for bridge in facts.pod_bridges}
    uplinks = _ovs_uplink_bridges(facts.node)
    for interface in facts.node.interfaces or ():
        if interface.name in uplinks and address_prefix(interface):
            facts.underlay.append(interface)
            facts.underlay_subnets.extend((prefix, cidr, interface.name) for prefix, cidr in address_prefix(interface))
            continue
        if interface.kind == "loopback" or interface.name == "lo" or is_overlay_interface(interface):
            continue
        if interface.name in bridges or interface.name in POD_BRIDGE_NAMES or interface.kind in VPN_KINDS:
            continue
        subnets = address_prefix(interface)
        if not subnets:
            continue
        facts.underlay.append(interface)
        facts.underlay_subnets.extend((prefix, cidr, interface.name) for prefix, cidr in subnets)


def _ovs_uplink_bridges(node: NodeSnapshot) -> set[str]:
    """Return the OVS bridges that hold a physical NIC and no tunnel port, such as ``br-phy`` or ``br-ex``.

    The host moves its underlay address onto such a bridge, so the bridge's
    device is the underlay although its kind is ``openvswitch`` (or ``tun``
    on the userspace datapath).
    """
    uplinks = set()
    for bridge in node.ovs or ():
        types = {interface.type for port in bridge.ports for interface in port.interfaces if interface.name != bridge.name}
        if types & _OVS_TUNNEL_TYPES:
            continue
        if "" in types or "system" in types:
            uplinks.add(bridge.name)
    return uplinks


def _own_calico_blocks(facts: NodeFacts) -> list[PodSubnet]:
    """Return the discard routes that contain this node's workloads or its tunnel address."""
    if facts.routes is None:
        return []
    tunnel_addresses = []
    for name in ("tunl0", "vxlan.calico"):
        interface = facts.node.interface(name)
        if interface is not None:
            tunnel_addresses += [prefix for prefix, _ in address_prefix(interface)]
            tunnel_addresses += [(AF_INET, parse_ip(cidr.partition("/")[0])[1], 32) for _, cidr in address_prefix(interface)]
    workloads = [facts.routes.prefix(row) for row in facts.workload_rows]
    blocks = []
    for row in facts.discard_rows:
        block = facts.routes.prefix(row)
        if block[2] == 0:
            continue
        if any(prefix_contains(block, item) for item in workloads + tunnel_addresses):
            blocks.append(PodSubnet(facts.name, block, "Calico block"))
    return blocks


def _pod_networks(snapshot: ClusterSnapshot, nodes: dict[str, NodeFacts], config: PodNetwork | None) -> list[PodNetwork]:
    networks: list[PodNetwork] = []
    if config is not None:
        networks.append(config)
    for facts in nodes.values():
        env = facts.node.flannel_env
        if env is None or not env.network:
            continue
        try:
            prefix = make_prefix(env.network)
        except AddressError:
            logger.warning("%s: subnet.env: invalid FLANNEL_NETWORK %r", facts.name, env.network)
            continue
        if all(network.prefix != prefix for network in networks):
            networks.append(PodNetwork(prefix, "FLANNEL_NETWORK", facts.name))
    blocks = [block.prefix for facts in nodes.values() for block in facts.calico_blocks]
    pool = common_supernet(blocks)
    if pool is not None and pool[2] >= MIN_POOL_LENGTH and not any(prefix_contains(n.prefix, pool) for n in networks):
        networks.append(PodNetwork(pool, "Calico pool inferred from the nodes' blocks", configured=False))
    return networks
