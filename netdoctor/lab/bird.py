"""The calico-bgp backend: one BIRD 2 per node in an iBGP full mesh, as calico-node runs it.

Each node announces its /26 block from Calico's pool, keeps a blackhole route
for that block and learns every peer's block as ``BLOCK via PEER_LAN_IP proto
bird``. Pods are attached as Calico attaches them (``topology.build_node``): a
``cali*`` veth with a /32 route and proxy ARP, no bridge, no IPIP.
"""

from __future__ import annotations

import logging
import time

from netdoctor.lab import routing
from netdoctor.lab.plan import BGP_AS, LabPlan, NodePlan
from netdoctor.lab.run import in_netns, read_pid, run
from netdoctor.lab.state import LabError, LabState

logger = logging.getLogger(__name__)

#: BGP hold time in seconds. BIRD's default is 240; a short one makes a dead peer's routes go within seconds.
HOLD_TIME = 9


def config_text(plan: LabPlan, node: NodePlan) -> str:
    """Return the ``bird.conf`` of one node."""
    lines = [
        f"router id {node.lan_ip};",
        "protocol device { scan time 10; }",
        "protocol kernel {",
        "  ipv4 { import none; export where source ~ [RTS_STATIC, RTS_BGP]; };",
        "  merge paths on;",
        "}",
        f"protocol static {{ ipv4; route {node.subnet} blackhole; }}",
        "template bgp mesh {",
        f"  local {node.lan_ip} as {BGP_AS};",
        "  direct;",
        "  connect delay time 1;",
        "  connect retry time 1;",
        f"  hold time {HOLD_TIME};",
        "  keepalive time 3;",
        "  ipv4 { import all; export where source = RTS_STATIC; next hop self; };",
        "}",
    ]
    for peer in plan.peers(node):
        lines.append(f"protocol bgp {peer.name} from mesh {{ neighbor {peer.lan_ip} as {BGP_AS}; }}")
    return "\n".join(lines) + "\n"


def socket_path(state: LabState, node: NodePlan) -> str:
    """Return the path of a node's BIRD control socket."""
    return str(state.node_path(node.name, "/run/bird/bird.ctl"))


def start_node(state: LabState, node: NodePlan) -> None:
    """Write a node's BIRD config and start BIRD in its namespace."""
    config = state.node_path(node.name, "/etc/bird/bird.conf")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text(state.plan, node))
    run_dir = state.node_path(node.name, "/run/bird")
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / "bird.pid"
    in_netns(node.netns, ["bird", "-c", str(config), "-s", socket_path(state, node), "-P", str(pid_file)])
    state.pids[f"{node.name}/bird"] = read_pid(pid_file)
    state.save()


def start(state: LabState) -> None:
    """Start BIRD on every node and wait until every node has a route to every peer's block."""
    for node in state.plan.nodes:
        start_node(state, node)
    wait_converged(state)


def wait_converged(state: LabState, timeout: float = 30.0) -> None:
    """Wait until every node has learned every peer's subnet; raise :class:`LabError` on timeout."""
    routing.wait_converged(state, "bird", "birdc show protocols", timeout)

def birdc(state: LabState, node: NodePlan, command: str) -> str:
    """Run one ``birdc`` command against a node's BIRD and return its output."""
    return run(["birdc", "-s", socket_path(state, node), *command.split()])


def reset_sessions(state: LabState, node: NodePlan) -> None:
    """Restart a node's BGP sessions at both ends, so that none lives on with a hold timer that ran down during a fault.

    A session whose hold timer expired waits BIRD's error wait time (60 s at
    first) before it connects or accepts a connection again, so restarting
    only the node's end would leave the peer's end idle for that long.
    """
    for peer in state.plan.peers(node):
        birdc(state, node, f"restart {peer.name}")
        birdc(state, peer, f"restart {node.name}")
    # A fault on the LAN, such as a duplicate MAC, can also time out sessions between other nodes. Disabled
    # sessions (another fault) show no error and stay as they are.
    for other in state.plan.nodes:
        for line in birdc(state, other, "show protocols").splitlines():
            if " BGP " in line and "Error:" in line:
                birdc(state, other, f"restart {line.split()[0]}")


def wait_established(state: LabState, timeout: float = 30.0) -> None:
    """Wait until every BGP session of every node is Established; raise :class:`LabError` on timeout."""
    deadline = time.monotonic() + timeout
    waiting: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        waiting = {}
        for node in state.plan.nodes:
            lines = birdc(state, node, "show protocols").splitlines()
            down = [line.split()[0] for line in lines if " BGP " in line and "Established" not in line]
            if down:
                waiting[node.name] = down
        if not waiting:
            return
        time.sleep(0.2)
    raise LabError(f"BGP sessions not Established after {timeout:g} s: {waiting}; see birdc show protocols")
