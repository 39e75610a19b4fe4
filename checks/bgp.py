"""BGP sessions of BIRD (Calico, direct routing) and FRR or Quagga (direct routing)."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.engine import check
from netdoctor.model import BgpSession, ClusterSnapshot, Evidence, Finding, Severity, make_details


def _describe(session: BgpSession) -> str:
    parts = [f"{session.daemon} {session.name}"]
    if session.neighbor and session.neighbor != session.name:
        parts.append(f"neighbor {session.neighbor}")
    parts.append(f"state {session.state}")
    if session.since:
        parts.append(f"since {session.since}")
    if session.info:
        parts.append(f"info {session.info}")
    return " ".join(parts)


@check("bgp-peer-down", title="BGP session not established", severity=Severity.ERROR, backends=("calico", "direct-routing"))
def bgp_peer_down(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """A BGP session of BIRD or FRR is not in the Established state.

    What it checks:
        Every BGP session that ``birdc show protocols`` or FRR's ``show bgp
        summary json`` reports, on every node where they were captured. A
        session counts as up only in the Established state. Idle, Connect,
        Active, OpenSent, OpenConfirm and administratively disabled sessions are
        reported with their state and BIRD's info or FRR's last error.
    Why it matters:
        Calico and BGP-based direct routing learn every peer's pod routes over
        these sessions. While a session is down, the routes to that peer's pod
        blocks are withdrawn (or never learned), so its pods are unreachable from
        this node.
    Known problems:
        A session that flaps shows as Established if the capture happened to
        catch it up. A peer that was removed from the cluster but is still
        configured shows as down until its configuration is removed too.
    Example:
        ``node2: BGP session Mesh_10_0_0_51 (neighbor 10.0.0.51) is start/Active:
        Connect Socket: Connection refused``.
    Fix safety:
        Restarting the BGP session or daemon is disruptive: the routes it
        learned are withdrawn until the session comes back.
    """
    for node in snapshot.nodes:
        for session in node.bgp or ():
            if session.established:
                continue
            neighbor = f" (neighbor {session.neighbor})" if session.neighbor and session.neighbor != session.name else ""
            detail = f": {session.info}" if session.info else ""
            yield Finding(
                check="bgp-peer-down",
                severity=Severity.ERROR,
                nodes=(node.name,),
                summary=f"{node.name}: {session.daemon} BGP session {session.name}{neighbor} is {session.state}{detail}",
                evidence=(Evidence(node.name, "bgp", _describe(session)),),
                details=make_details(session=session.name, daemon=session.daemon, neighbor=session.neighbor,
                                     state=session.state),
            )
