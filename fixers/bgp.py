"""BGP fixers: restart the session that is down, in BIRD or FRR."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.support import snapshot_node
from netdoctor.model import Finding

#: BIRD's control socket on the node; the lab keeps it there too, under the node's root.
BIRD_SOCKET = "/run/bird/bird.ctl"
#: FRR's socket directory on the node.
FRR_SOCKETS = "/run/frr"


@fixer("restart-bgp-session", title="Restart the BGP session that is down", checks=("bgp-peer-down",))
def restart_bgp_session(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Restart one BGP session: ``birdc restart PROTOCOL`` or ``vtysh -c 'clear bgp NEIGHBOR'``.

    Disruptive: the routes the session learned are withdrawn until it is
    Established again. A session that fails again after the restart points at
    the peer, a firewall on TCP 179 or the configured addresses.
    """
    node_name = finding.nodes[0]
    node = snapshot_node(context, node_name)
    if node is None:
        return
    for session in node.bgp or ():
        if session.established or session.name != finding.detail("session"):
            continue
        if session.daemon == "bird":
            action = Operation("bird-restart", {"protocol": session.name, "socket": BIRD_SOCKET})
        else:
            action = Operation("frr-clear", {"neighbor": session.neighbor or session.name, "sockets": FRR_SOCKETS})
        yield NodeStep(node_name, Step(
            id=f"bgp-restart-{session.name}",
            title=f"Restart the {session.daemon} BGP session {session.name}",
            safety=Safety.DISRUPTIVE,
            why=f"The session is {session.state}, so the peer's pod routes are missing; a restart withdraws the "
                "routes it learned until it is Established again, so it is applied only after confirmation.",
            fixer="restart-bgp-session",
            check=finding.check,
            action=action,
            done=Condition("bgp-established", {"name": session.name}),
            verify=f"birdc -s {BIRD_SOCKET} show protocols {session.name}" if session.daemon == "bird"
            else "vtysh -c 'show bgp summary'",
        ))
