"""Parse BGP session state from BIRD (``birdc show protocols``) and FRR (``show bgp summary json``)."""

from __future__ import annotations

import logging
import re
from typing import Any

from netdoctor.capture import ParseError
from netdoctor.capture.cluster import load_json
from netdoctor.model.node import BgpSession

logger = logging.getLogger(__name__)

#: States of the BGP finite state machine (RFC 4271) plus BIRD's ``Passive``.
BGP_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established", "Passive")

# BIRD prints "since" as a date, a time, both, or a short month and day,
# depending on its version and its "timeformat protocol" setting.
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{2}-\d{2}-\d{4}|[A-Z][a-z]{2}\d{1,2})$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
# Calico names its mesh sessions after the peer address: Mesh_10_0_2_4, Node_192_0_2_7.
_CALICO_PEER = re.compile(
    r"^(?:Mesh|Node|Global)_(\d{1,3})_(\d{1,3})_(\d{1,3})_(\d{1,3})(?:_port_\d+)?$"
)


def parse_bird_protocols(text: str, source: str) -> tuple[BgpSession, ...]:
    """Parse the ``show protocols`` table of BIRD 1.x or 2.x and return its BGP sessions.

    The table starts after a ``name proto table state since info`` header (any
    case). Lines before it, such as ``BIRD 2.0.12 ready.``, are skipped; other
    protocols (Static, Kernel, Device, ...) are dropped. The session state is the
    BGP state at the start of the Info column (``Established``, ``Active``, ...),
    or BIRD's own protocol state (``down``, ``start``) when Info names none.
    """
    lines = text.splitlines()
    header = None
    for number, raw in enumerate(lines, start=1):
        words = raw.lower().split()
        if words[:4] == ["name", "proto", "table", "state"]:
            header = number
            break
    if header is None:
        first = next((line.strip() for line in lines if line.strip()), "")
        raise ParseError(
            source,
            1,
            f"no 'Name Proto Table State Since Info' header: the output starts with {first[:60]!r}",
        )

    sessions: list[BgpSession] = []
    for number, raw in enumerate(lines[header:], start=header + 1):
        if not raw.strip():
            continue
        words = raw.split()
        if len(words) < 4:
            raise ParseError(
                source,
                number,
                f"invalid protocol row {raw.strip()[:60]!r}: expected at least Name Proto Table State",
            )
        name, proto, _table, state = words[:4]
        if proto.upper() != "BGP":
            continue
        since, info = _since_and_info(words[4:])
        sessions.append(
            BgpSession(
                daemon="bird",
                name=name,
                state=_session_state(state, info),
                neighbor=_calico_peer(name),
                since=since,
                info=info,
            )
        )
    return tuple(sessions)


def _since_and_info(words: list[str]) -> tuple[str | None, str | None]:
    taken = 0
    if words and (_DATE.match(words[0]) or _TIME.match(words[0])):
        taken = 1
        if len(words) > 1 and _DATE.match(words[0]) and _TIME.match(words[1]):
            taken = 2
    since = " ".join(words[:taken]) or None
    info = " ".join(words[taken:]) or None
    return since, info


def _session_state(protocol_state: str, info: str | None) -> str:
    first = (info or "").split(" ", 1)[0]
    if first in BGP_STATES:
        return first
    return protocol_state


def _calico_peer(name: str) -> str | None:
    # TODO: Calico's IPv6 mesh names (colons written as underscores) are not decoded.
    match = _CALICO_PEER.match(name)
    if match is None or any(int(part) > 255 for part in match.groups()):
        return None
    return ".".join(match.groups())


def parse_frr_bgp_summary(text: str, source: str) -> tuple[BgpSession, ...]:
    """Parse ``vtysh -c 'show bgp summary json'`` into sessions sorted by neighbour.

    FRR 7 and later nest peers per address family (``ipv4Unicast.peers``); older
    releases put ``peers`` at the top level. A peer listed under several address
    families is one session. ``{}`` (no BGP instance) gives no sessions.
    """
    document = load_json(text, source)
    if not isinstance(document, dict):
        raise ParseError(source, 1, f"expected a JSON object, not {type(document).__name__}")

    families: list[tuple[str, Any]] = []
    if "peers" in document:
        families.append(("top level", document))
    families.extend(
        (name, value)
        for name, value in sorted(document.items())
        if isinstance(value, dict) and "peers" in value
    )

    sessions: dict[str, BgpSession] = {}
    for family, summary in families:
        peers = summary["peers"]
        if not isinstance(peers, dict):
            raise ParseError(
                source, None, f"'peers' of {family} is {type(peers).__name__}: expected an object"
            )
        for address, peer in peers.items():
            if address in sessions:
                continue
            sessions[address] = _frr_session(address, peer, family, source)
    return tuple(sessions[address] for address in sorted(sessions))


def _frr_session(address: str, peer: Any, family: str, source: str) -> BgpSession:
    if not isinstance(peer, dict):
        raise ParseError(
            source, None, f"peer {address} of {family} is {type(peer).__name__}: expected an object"
        )
    state = peer.get("state")
    if not isinstance(state, str) or not state:
        raise ParseError(source, None, f"peer {address} of {family} has no 'state'")
    uptime = peer.get("peerUptime")
    peer_state = peer.get("peerState")
    return BgpSession(
        daemon="frr",
        name=address,
        state=state,
        neighbor=address,
        since=str(uptime) if uptime is not None else None,
        # peerState is "OK" unless the session is held down by policy or by an administrator.
        info=str(peer_state) if peer_state not in (None, "OK") else None,
    )
