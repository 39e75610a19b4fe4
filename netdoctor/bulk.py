"""Vectorised forms of the route index's cluster-wide lookups, for clusters large enough to repay numpy.

Every node's route index resolves every pod subnet of the cluster, which is
N² lookups for N nodes. The pure-Python path in :mod:`netdoctor.facts` does
them with ``map`` and ``compress``, at about a tenth of a microsecond per
pair and pass. numpy takes a few nanoseconds, but importing it takes about
70 ms (measured on a 2-vCPU VM). The facts use this module only when the pairs reach
:data:`netdoctor.facts.BULK_MIN_PAIRS`, so small snapshots never import it.

The functions here give exactly the results of the pure-Python path; the
tests compare both on the same tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: Buffer formats of the integer columns of tables (the struct codes ``array`` uses).
_INTEGER_FORMATS = frozenset("bBhHiIlLqQ")

#: Greater than every ``network << 8 | length`` key of an IPv4 prefix.
_PAST_LAST = np.uint64(1 << 41)

#: A numpy.ndarray of an integer or boolean dtype.
IntArray = Any


def column(values: Sequence[Any]) -> IntArray | None:
    """Return a table column as a numpy array that shares its memory, or None when it is not a typed array.

    IP columns of tables with IPv6 routes are lists of Python integers, so
    those are left to the pure-Python path.
    """
    try:
        view = memoryview(values)  # type: ignore[arg-type]
    except TypeError:
        return None
    if view.ndim != 1 or view.format not in _INTEGER_FORMATS:
        return None
    if not len(view):
        return np.zeros(0, dtype=view.format)
    return np.frombuffer(view, dtype=view.format)


def primed_arrays(networks: Sequence[int], lengths: Sequence[int]) -> tuple[IntArray, IntArray, IntArray]:
    """Return the networks, lengths and ``network << 8 | length`` keys of the primed prefixes as arrays."""
    nets = np.array(networks, dtype=np.uint64)
    lens = np.array(lengths, dtype=np.uint64)
    return nets, lens, (nets << np.uint64(8)) | lens


def best_rows(dst: IntArray, dst_len: IntArray, low: int, high: int, route_lengths: Iterable[int],
              primed: tuple[IntArray, IntArray, IntArray]) -> tuple[IntArray, IntArray]:
    """Return the best main-table row of each primed prefix (-1 for none) and the rows that repeat a key.

    Rows ``low`` to ``high`` are the main table's IPv4 routes, sorted by
    destination and then length, so their ``destination << 8 | length`` keys
    ascend and one binary search per prefix finds the first row of a key. A
    prefix without a route of its own length takes, for each route length in
    ``route_lengths`` (longest first) that is not longer than the prefix, its
    network masked to that length. The second array contains every row whose key
    the next row repeats, as :meth:`RouteIndex.prime` records them.
    """
    nets, lens, keys = primed
    count = high - low
    if count == 0 or len(keys) == 0:
        return np.full(len(keys), -1, dtype=np.int32), np.zeros(0, dtype=np.int64)
    # One key past the last route, larger than any prefix's key, so that every search result can be read.
    route_keys = np.empty(count + 1, dtype=np.uint64)
    route_keys[count] = _PAST_LAST
    body = route_keys[:count]
    np.left_shift(dst[low:high], 8, out=body, dtype=np.uint64)
    body |= dst_len[low:high]
    shared = np.flatnonzero(body[:-1] == body[1:]) + low
    # An exact route is the most specific one there can be.
    found = route_keys.searchsorted(keys)
    hit = route_keys[found] == keys
    best = np.where(hit, found + low, -1).astype(np.int32)
    pending = np.flatnonzero(~hit)
    for length in route_lengths:
        if not len(pending):
            break
        chosen = pending[lens[pending] >= length]
        mask = np.uint64((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF)
        covering = ((nets[chosen] & mask) << np.uint64(8)) | np.uint64(length)
        found = route_keys.searchsorted(covering)
        hit = route_keys[found] == covering
        best[chosen[hit]] = found[hit] + low
        pending = np.setdiff1d(pending, chosen[hit], assume_unique=True)
    return best, shared


def rows_in(wanted: Iterable[int], values: IntArray, safe: IntArray) -> IntArray:
    """Return, per primed position, whether the best row's value in column ``values`` is one of ``wanted``.

    ``safe`` contains the best rows with 0 for a missing one. The wanted values
    become a lookup table indexed by the value, which is cheaper than a search
    per position.
    """
    chosen = [value for value in wanted if value >= 0]
    if values.dtype.itemsize == 1:
        largest = 255
    else:
        largest = int(values.max()) if len(values) else 0
    size = max(largest + 1, max(chosen, default=-1) + 1)
    table = np.zeros(size, dtype=bool)
    table[[value for value in chosen if value < size]] = True
    result: IntArray = table[values[safe]]
    return result


def positions(flags: IntArray, missing: IntArray, unrouted: bool) -> set[int]:
    """Return the positions set in ``flags`` and not ``missing``, and the missing ones too when ``unrouted``."""
    chosen = flags | missing if unrouted else flags & ~missing
    return set(np.flatnonzero(chosen).tolist())


#: Stands for "no address" among 32-bit addresses held in 64-bit arrays.
_NO_ADDRESS = (1 << 64) - 1


def owner_codes(addresses: dict[int, str], names: Sequence[str | None]) -> tuple[IntArray, ...]:
    """Number the owners for :func:`owner_mismatch`.

    Returns the sorted addresses, each address's owner code, each primed
    position's owner code, and one address of each position's owner. A code is the position of a name in the sorted names, and -1 means
    no owner (an address no node has, or a subnet several nodes claim).
    """
    ordered = sorted({name for name in addresses.values()} | {name for name in names if name is not None})
    code = {name: number for number, name in enumerate(ordered)}
    keys = sorted(addresses)
    first_address: dict[str, int] = {}
    for key in keys:
        first_address.setdefault(addresses[key], key)
    sorted_addresses = np.array(keys, dtype=np.uint64)
    address_owner = np.array([code[addresses[key]] for key in keys], dtype=np.int64)
    expected = np.array([-1 if name is None else code[name] for name in names], dtype=np.int64)
    # No gateway of an IPv4 column equals the largest 64-bit value, so a position without an owner address is searched.
    usual = np.array([first_address.get(name, _NO_ADDRESS) if name is not None else _NO_ADDRESS for name in names],
                     dtype=np.uint64)
    return sorted_addresses, address_owner, expected, usual


def owner_mismatch(safe: IntArray, gateways: IntArray, owners: tuple[IntArray, ...]) -> IntArray:
    """Return, per primed position, whether the best row's gateway belongs to another owner than the subnet's.

    ``safe`` contains the best rows with 0 for a missing one. Callers drop
    missing positions. A gateway that is the owner's first address matches
    without a search, and only the other positions look up their gateway's owner.
    """
    sorted_addresses, address_owner, expected, usual = owners
    gateway = gateways[safe].astype(np.uint64)
    result: IntArray = gateway != usual
    others = np.flatnonzero(result)
    if not len(others):
        return result
    gateway = gateway[others]
    if len(sorted_addresses):
        found: IntArray = np.searchsorted(sorted_addresses, gateway)
        inside = np.minimum(found, len(sorted_addresses) - 1)
        hit = (found < len(sorted_addresses)) & (sorted_addresses[inside] == gateway)
        owner = np.where(hit, address_owner[inside], -1)
    else:
        owner = np.full(len(others), -1, dtype=np.int64)
    result[others] = owner != expected[others]
    return result
