"""Collect BGP session state from BIRD (``birdc show protocols``) and FRR (``show bgp summary json``).

Each daemon is asked only when its client is installed and its control socket
exists under the node's root. A daemon that is not installed or not running is
recorded as a gap with a plain reason, since most nodes run at most one of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from netdoctor.capture import ParseError
from netdoctor.capture.bgp import parse_bird_protocols, parse_frr_bgp_summary
from netdoctor.collect import Part
from netdoctor.model.node import BgpSession, Provenance
from netdoctor.target import CollectionError, Target

logger = logging.getLogger(__name__)

CHANGES_HOST = False

#: BIRD control sockets: BIRD 2 packages, BIRD 1.x packages, Calico's calico-node.
BIRD_SOCKETS = (
    "/run/bird/bird.ctl",
    "/var/run/bird/bird.ctl",
    "/var/run/bird.ctl",
    "/var/run/calico/bird.ctl",
)

#: Directories that hold FRR's daemon sockets (``bgpd.vty``).
FRR_SOCKET_DIRS = ("/run/frr", "/var/run/frr")


def collect(target: Target) -> Part:
    """Query both daemons; ``bgp`` is set when at least one of them returned its sessions."""
    part = Part()
    sessions: list[BgpSession] = []
    answered = False
    for reader in (_read_bird, _read_frr):
        found = reader(target, part)
        if found is not None:
            sessions.extend(found)
            answered = True
    if answered:
        part.values["bgp"] = tuple(sessions)
    return part


def _first_existing(target: Target, paths: tuple[str, ...], name: str = "") -> Path | None:
    for path in paths:
        location = target.path(path)
        if (location / name if name else location).exists():
            return location
    return None


def _read_bird(target: Target, part: Part) -> list[BgpSession] | None:
    client = next(
        (program for program in ("birdcl", "birdc") if target.which(program) is not None), None
    )
    socket = _first_existing(target, BIRD_SOCKETS)
    if socket is None:
        # BGP daemons are optional: a node where BIRD does not run has no gap for it.
        part.meta["bird"] = f"not running (no control socket at {target.path(BIRD_SOCKETS[0])})"
        return None
    if client is None:
        part.gap(target, "bgp:bird", f"BIRD runs ({socket}) but neither birdc nor birdcl is installed here")
        return None

    # The fixers address BIRD through the same socket, by its path on the node.
    part.meta["bird socket"] = next(path for path in BIRD_SOCKETS if target.path(path) == socket)
    argv = [client, "-s", str(socket), "show", "protocols"]
    text = _run(target, part, "bgp:bird", argv)
    if text is None:
        return None
    try:
        sessions = parse_bird_protocols(text, " ".join(argv))
    except ParseError as error:
        part.gap(target, "bgp:bird", f"cannot parse the output: {error}")
        return None
    part.provenance.append(Provenance(source="bgp", origin=" ".join(argv)))
    return list(sessions)


def _read_frr(target: Target, part: Part) -> list[BgpSession] | None:
    directory = _first_existing(target, FRR_SOCKET_DIRS, "bgpd.vty")
    if directory is None:
        part.meta["frr"] = f"not running (no bgpd.vty in {target.path(FRR_SOCKET_DIRS[0])})"
        return None
    if target.which("vtysh") is None:
        part.gap(target, "bgp:frr", f"FRR bgpd runs ({directory}) but vtysh is not installed here")
        return None

    argv = ["vtysh", "--vty_socket", str(directory), "-c", "show bgp summary json"]
    text = _run(target, part, "bgp:frr", argv)
    if text is None:
        return None
    try:
        sessions = parse_frr_bgp_summary(text, "vtysh -c 'show bgp summary json'")
    except ParseError as error:
        part.gap(target, "bgp:frr", f"cannot parse the output: {error}")
        return None
    part.provenance.append(Provenance(source="bgp", origin=" ".join(argv)))
    return list(sessions)


def _run(target: Target, part: Part, source: str, argv: list[str]) -> str | None:
    try:
        result = target.run(argv)
    except CollectionError as error:
        part.gap(target, source, str(error))
        return None
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()
        reason = output[-1] if output else "no error output"
        part.gap(
            target,
            source,
            f"{' '.join(argv)} failed with exit status {result.returncode}: {reason}",
        )
        return None
    return result.stdout
