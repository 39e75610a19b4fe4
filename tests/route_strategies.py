"""Hypothesis strategies for route rows, shared by the model and table builder tests."""

from __future__ import annotations

from hypothesis import strategies as st

from netdoctor.model.routes import NextHop, Route

IPV4 = st.integers(min_value=0, max_value=(1 << 32) - 1)
IPV6 = st.integers(min_value=0, max_value=(1 << 128) - 1)


@st.composite
def routes(draw: st.DrawFn) -> Route:
    """Draw a route of either family. Small values come up often, so that rows tie on
    leading fields and their order depends on later ones (None next hops among them).
    """
    family = draw(st.sampled_from([4, 6]))
    address = IPV4 if family == 4 else IPV6
    # A next hop's gateway has the route's family, as the parsers and the snapshot loader require.
    gateway = "192.0.2.9" if family == 4 else "2001:db8::9"
    hops = draw(st.lists(st.builds(NextHop, st.sampled_from([None, gateway]), st.sampled_from([None, "eth1"]),
                                   st.integers(1, 256), st.integers(0, 16)), max_size=2))
    return Route(
        family=family,
        table=draw(st.sampled_from([254, 255, 100])),
        dst=draw(st.sampled_from([0, 1, 1 << 31]) | address),
        dst_len=draw(st.integers(0, 32 if family == 4 else 128)),
        type=draw(st.integers(0, 11)),
        protocol=draw(st.sampled_from(["kernel", "boot", "bird", "bgp", "42"])),
        scope=draw(st.sampled_from([0, 253, 254])),
        metric=draw(st.sampled_from([0, 32]) | st.integers(0, (1 << 32) - 1)),
        gateway=draw(st.sampled_from([0]) | address),
        dev=draw(st.sampled_from(["", "eth0", "flannel.1", "cali1234"])),
        prefsrc=draw(st.sampled_from([0]) | address),
        flags=draw(st.integers(0, 255)),
        nhid=draw(st.integers(0, 3) | st.integers(0, 1000)),
        mtu=draw(st.integers(0, 9000)),
        nexthops=tuple(hops),
    )
