"""BGP fixers: restart or enable the session that is down, in BIRD or FRR."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.support import snapshot_node
from netdoctor.model import BgpSession, ClusterSnapshot, Finding, NodeSnapshot
from netdoctor.model.addr import AddressError, parse_ip

#: BIRD's control socket on the node; the lab keeps it there too, under the node's root.
BIRD_SOCKET = "/run/bird/bird.ctl"
#: The control socket of the BIRD inside calico-node, at its path on the host.
CALICO_BIRD_SOCKET = "/var/run/calico/bird.ctl"


def bird_socket(node: NodeSnapshot | None) -> str:
    """Return the path of BIRD's control socket on ``node``.

    The path the collector reached BIRD through comes first. A capture does not
    record it, so a node with Calico's ``cali*`` interfaces gets calico-node's
    socket, and any other node the usual one.
    """
    if node is None:
        return BIRD_SOCKET
    recorded = dict(node.meta).get("bird socket")
    if recorded:
        return recorded
    if any(interface.name.startswith("cali") for interface in node.interfaces or ()):
        return CALICO_BIRD_SOCKET
    return BIRD_SOCKET
#: FRR's socket directory on the node.
FRR_SOCKETS = "/run/frr"


@fixer("restart-bgp-session", title="Restart the BGP session that is down", checks=("bgp-peer-down",))
def restart_bgp_session(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Restart one BGP session, or enable it when it is administratively shut down.

    A session in any other state gets ``birdc restart PROTOCOL`` or ``vtysh -c
    'clear bgp NEIGHBOR'``. A BIRD protocol in state ``down`` is disabled, and
    an FRR neighbour in ``Idle (Admin)`` is shut down: a restart leaves either
    down, so the step is ``birdc enable PROTOCOL`` or ``no neighbor NEIGHBOR
    shutdown``. A session that the peer shut down (BIRD's info ``Received:
    Administrative shutdown``) is fixed on the peer, so this node gets a
    display-only note. Disruptive: a restart withdraws the session's routes
    until it is Established again, and a session may have been shut down on
    purpose. A session that fails again points at the peer, a firewall on TCP
    179 or the configured addresses.
    """
    node_name = finding.nodes[0]
    node = snapshot_node(context, node_name)
    if node is None:
        return
    for session in node.bgp or ():
        if session.established or session.name != finding.detail("session"):
            continue
        if "Administrative shutdown" in (session.info or ""):
            yield NodeStep(node_name, _peer_shutdown_note(finding, session))
            continue
        disabled_by = _peer_disabled(context.snapshot, node, session)
        if disabled_by is not None:
            yield NodeStep(node_name, _peer_disabled_note(finding, session, *disabled_by))
            continue
        yield NodeStep(node_name, _session_step(finding, session, bird_socket(node)))


def _is_disabled(session: BgpSession) -> bool:
    """Tell whether a session is shut down administratively on its own node (BIRD ``down``, FRR ``Idle (Admin)``)."""
    return (session.daemon == "bird" and session.state.lower() == "down") or "(Admin)" in session.state


def _addresses(node: NodeSnapshot) -> set[tuple[int, int]]:
    found = set()
    for interface in node.interfaces or ():
        for address in interface.addresses:
            try:
                found.add(parse_ip(address.address))
            except AddressError:
                continue
    return found


def _peer_disabled(snapshot: ClusterSnapshot, node: NodeSnapshot,
                   session: BgpSession) -> tuple[str, BgpSession] | None:
    """Return the captured peer and its session back to ``node`` when the peer shut that session down.

    Such a session stays down on this node (Active or Connect) until the peer
    enables its side, and the peer's own finding plans that.
    """
    neighbor = _peer_address(session)
    if neighbor is None:
        return None
    own = _addresses(node)
    for peer in snapshot.nodes:
        if peer.name == node.name or neighbor not in _addresses(peer):
            continue
        for other in peer.bgp or ():
            if _peer_address(other) in own and _is_disabled(other):
                return peer.name, other
    return None


def _peer_address(session: BgpSession) -> tuple[int, int] | None:
    """Return the parsed address of a session's neighbour, if the capture shows it.

    ``birdc show protocols`` prints no neighbour, but Calico names its BIRD
    sessions after the peer's IPv4 address (``Mesh_192_0_2_7``, ``Node_...``).
    FRR names a session by the address itself.
    """
    texts = [session.neighbor or session.name]
    calico = _CALICO_SESSION.match(session.name)
    if calico is not None:
        texts.append(".".join(calico.groups()))
    for text in texts:
        try:
            return parse_ip(text)
        except AddressError:
            continue
    return None


#: A Calico BIRD session named after an IPv4 peer: ``Mesh_``, ``Node_`` or ``Global_`` and the address.
_CALICO_SESSION = re.compile(r"^(?:Mesh|Node|Global)_(\d{1,3})_(\d{1,3})_(\d{1,3})_(\d{1,3})$")


def _peer_disabled_note(finding: Finding, session: BgpSession, peer: str, other: BgpSession) -> Step:
    return Step(
        id=f"bgp-peer-disabled-{session.name}",
        title=f"Enable the session on {peer}, where {other.name} is {other.state}",
        safety=Safety.DISPLAY_ONLY,
        why=f"{peer} shut down its side of the session ({other.daemon} {other.name} is {other.state}), so this "
            f"side stays {session.state} until {peer} enables it; the plan for {peer} does that, and restarting "
            "the session here would only withdraw routes.",
        fixer="restart-bgp-session",
        check=finding.check,
        display=(f"# on {peer}: see the step that enables {other.name}",),
    )


def _session_step(finding: Finding, session: BgpSession, socket: str) -> Step:
    neighbor = session.neighbor or session.name
    disabled = _is_disabled(session)
    if disabled and session.daemon == "bird":
        params: dict[str, Any] = {"protocol": session.name, "socket": socket}
        action, inverse = Operation("bird-enable", params), Operation("bird-disable", params)
    elif disabled:
        params = {"neighbor": neighbor, "sockets": FRR_SOCKETS}
        action = Operation("frr-neighbor-shutdown", {**params, "shutdown": False})
        inverse = Operation("frr-neighbor-shutdown", {**params, "shutdown": True})
    elif session.daemon == "bird":
        action, inverse = Operation("bird-restart", {"protocol": session.name, "socket": socket}), None
    else:
        action, inverse = Operation("frr-clear", {"neighbor": neighbor, "sockets": FRR_SOCKETS}), None
    if disabled:
        verb, why = "Enable", (f"The session is {session.state}: it is shut down administratively, so a restart "
                               "leaves it down and the peer's pod routes stay missing. It may have been shut down on "
                               "purpose, so enabling it is applied only after confirmation.")
    else:
        verb, why = "Restart", (f"The session is {session.state}, so the peer's pod routes are missing; a restart "
                                "withdraws the routes it learned until it is Established again, so it is applied only "
                                "after confirmation.")
    return Step(
        id=f"bgp-{verb.lower()}-{session.name}",
        title=f"{verb} the {session.daemon} BGP session {session.name}",
        safety=Safety.DISRUPTIVE,
        why=why,
        fixer="restart-bgp-session",
        check=finding.check,
        action=action,
        inverse=inverse,
        done=Condition("bgp-established", {"name": session.name}),
        verify=f"birdc -s {socket} show protocols {session.name}" if session.daemon == "bird"
        else "vtysh -c 'show bgp summary'",
    )


def _peer_shutdown_note(finding: Finding, session: BgpSession) -> Step:
    neighbor = session.neighbor or session.name
    return Step(
        id=f"bgp-peer-shutdown-{session.name}",
        title=f"Enable the session on the peer {neighbor}, which shut it down",
        safety=Safety.DISPLAY_ONLY,
        why=f"The peer sent an administrative shutdown ({session.info}); the session comes back when the peer "
            "enables it, and restarting it here changes nothing.",
        fixer="restart-bgp-session",
        check=finding.check,
        display=(
            f"# on {neighbor}: birdc enable PROTOCOL",
            f"# or on {neighbor}: vtysh -c 'configure terminal' -c 'router bgp' -c 'no neighbor ADDRESS shutdown'",
        ),
    )
