"""The route index's search for the positions whose best row is one of a few rows."""

from __future__ import annotations

from array import array

from hypothesis import given
from hypothesis import strategies as st

from netdoctor.facts import RouteIndex
from netdoctor.model.routes import RouteTable

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
