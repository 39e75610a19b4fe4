"""The route index: the search for positions by best row, and the bulk resolution of primed prefixes."""

from __future__ import annotations

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st
from route_strategies import routes

from netdoctor.facts import PrimedPrefixes, RouteIndex, _distinct_lengths, marked_rows, rows_with
from netdoctor.model.addr import AF_INET, network_of
from netdoctor.model.record import replace
from netdoctor.model.routes import Route, RouteTable

# Row numbers whose bytes repeat inside their neighbours' bytes (0, 1, 256, 65536, -1)
# come up often, so that unaligned matches of a row's encoding are exercised.
ROWS = st.sampled_from([-1, 0, 1, 256, 257, 65536, 16777216, 16777217]) | st.integers(-1, 1 << 20)


@given(best=st.lists(ROWS, max_size=60), wanted=st.lists(ROWS, max_size=8))
def test_row_search_matches_plain_search(best: list[int], wanted: list[int]) -> None:
    index = RouteIndex(RouteTable.from_rows([]))
    index._best_rows = array("i", best)
    index._best_bytes = None
    expected = {position for position, row in enumerate(best) if row in wanted}
    assert index._positions_of_rows(wanted) == expected


def test_row_search_skips_unaligned_match() -> None:
    index = RouteIndex(RouteTable.from_rows([]))
    # In either byte order, the bytes of 65536 followed by 16777216 contain the encoding of 1 or 256
    # across the boundary between the two entries.
    index._best_rows = array("i", [256, 1, 65536, 16777216])
    assert index._positions_of_rows([1]) == {1}
    assert index._positions_of_rows([256]) == {0}
    assert index._positions_of_rows([16777216, 65536]) == {2, 3}


@given(rows=st.lists(routes(), max_size=40), networks=st.lists(st.integers(0, (1 << 32) - 1), min_size=2, max_size=12),
       lengths=st.lists(st.integers(0, 32), min_size=12, max_size=12))
def test_prime_matches_covering_search(rows: list[Route], networks: list[int], lengths: list[int]) -> None:
    # Each prefix is masked to its length, as a pod subnet is.
    prefixes = list(dict.fromkeys(
        (AF_INET, network_of(AF_INET, network, length), length) for network, length in zip(networks, lengths)))
    if len(prefixes) < 2:
        return
    index = RouteIndex(RouteTable.from_rows(rows))
    primed = PrimedPrefixes(prefixes, {prefix: at for at, prefix in enumerate(prefixes)},
                            [prefix[1] for prefix in prefixes], [prefix[2] for prefix in prefixes],
                            [prefix[1] << 8 | prefix[2] for prefix in prefixes])

    index.prime(primed)

    for prefix in prefixes:
        assert index.best_row(prefix) == next(index.covering_rows(prefix), None), prefix


def _primed(prefixes: list[tuple[int, int, int]], *, vectorised: bool) -> PrimedPrefixes:
    primed = PrimedPrefixes(prefixes, {prefix: at for at, prefix in enumerate(prefixes)},
                            [prefix[1] for prefix in prefixes], [prefix[2] for prefix in prefixes],
                            [prefix[1] << 8 | prefix[2] for prefix in prefixes])
    if vectorised:
        from netdoctor import bulk

        primed = replace(primed, arrays=bulk.primed_arrays(primed.networks, primed.lengths))
    return primed


# Destinations drawn from a few networks, so that prefixes, routes and gateways often coincide.
NEAR = st.sampled_from([0x0A000000, 0x0A000100, 0x0A000180, 0x0A0001C0, 0x0A010000, 0xC0A80000, 0])


@given(rows=st.lists(routes(), max_size=40), networks=st.lists(NEAR | st.integers(0, (1 << 32) - 1), min_size=2,
                                                                max_size=12),
       lengths=st.lists(st.sampled_from([0, 8, 16, 24, 25, 26, 32]), min_size=12, max_size=12),
       owners=st.dictionaries(NEAR, st.sampled_from(["a", "b", "c"]), max_size=4),
       names=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=12, max_size=12), ipv4_only=st.booleans())
def test_vectorised_prime_matches_python(rows: list[Route], networks: list[int], lengths: list[int],
                                         owners: dict[int, str], names: list[str | None], ipv4_only: bool) -> None:
    if ipv4_only:
        # An IPv6 route makes the destination column a list, which only the Python path reads.
        rows = [row for row in rows if row.family == AF_INET]
    prefixes = list(dict.fromkeys(
        (AF_INET, network_of(AF_INET, network, length), length) for network, length in zip(networks, lengths)))
    if len(prefixes) < 2:
        return
    from netdoctor import bulk

    table = RouteTable.from_rows(rows)
    python, vectorised = RouteIndex(table), RouteIndex(table)
    python.prime(_primed(prefixes, vectorised=False))
    vectorised.prime(_primed(prefixes, vectorised=True))
    if ipv4_only and any(row.table == 254 for row in rows):
        assert vectorised._bulk_rows is not None

    assert vectorised._best_rows == python._best_rows
    assert vectorised._shared_rows == python._shared_rows
    dev_codes = {code for code, name in enumerate(table.interned("dev")[0]) if name.startswith("e")}
    for unrouted in (False, True):
        for discard in (False, True):
            for default in (False, True):
                for shared in (False, True):
                    for text in (None, ("dev", dev_codes)):
                        options = {"unrouted": unrouted, "discard": discard, "default": default, "shared": shared,
                                   "text": text}
                        assert vectorised.positions_where(**options) == python.positions_where(**options), options
    owner_names = names[:len(prefixes)]
    codes = bulk.owner_codes(owners, owner_names)
    assert (vectorised.gateway_owner_differs(owners, owner_names, lambda: codes)
            == python.gateway_owner_differs(owners, owner_names, lambda: codes))


@given(values=st.lists(st.sampled_from([0, 1, 32, 255, 256, 65536, 16777216]) | st.integers(0, (1 << 32) - 1),
                       max_size=50),
       wanted=st.sets(st.sampled_from([0, 1, 32, 255, 256, 65536, 16777216, 1 << 40]), max_size=20),
       typecode=st.sampled_from(["B", "H", "I", "Q"]), bounds=st.tuples(st.integers(0, 50), st.integers(0, 50)))
def test_rows_with_matches_plain_scan(values: list[int], wanted: set[int], typecode: str,
                                      bounds: tuple[int, int]) -> None:
    limit = 1 << (8 * array(typecode).itemsize)
    column = array(typecode, [value % limit for value in values])
    low, high = min(bounds), max(bounds)
    expected = [row for row in range(low, min(high, len(column))) if column[row] in wanted]
    assert rows_with(column, wanted, low, high) == expected
    assert rows_with(list(column), wanted, low, high) == expected


@given(lengths=st.lists(st.integers(0, 32) | st.integers(0, 255), max_size=40), bits=st.sampled_from([32, 128]),
       bounds=st.tuples(st.integers(0, 40), st.integers(0, 40)))
def test_distinct_lengths_match_set(lengths: list[int], bits: int, bounds: tuple[int, int]) -> None:
    low, high = min(bounds), max(bounds)
    expected = sorted(set(lengths[low:high]), reverse=True)
    assert _distinct_lengths(array("B", lengths), low, high, bits) == expected
    assert _distinct_lengths(lengths, low, high, bits) == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.sets(st.integers(0, 399)), st.integers(0, 1000))
def test_marked_rows_at_any_density(length: int, positions: set[int], first: int) -> None:
    # Up to one mark in 16 bytes, marks are found one by one, and beyond that the rest are listed in bulk.
    marks = bytes(position in positions for position in range(length))

    assert marked_rows(marks, first) == [first + position for position in sorted(positions) if position < length]
