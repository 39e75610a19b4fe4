"""The frr backend: pod subnets learned over iBGP by FRR's bgpd and installed by zebra.

Each node runs ``zebra`` and ``bgpd`` in its namespace with configs, PID files,
sockets and logs under the node's directory. Each node announces its ``docker0``
subnet to every peer; zebra installs what it learns as ``proto bgp`` routes that
point at nexthop objects (``nhid``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from netdoctor.lab import routing
from netdoctor.lab.plan import BGP_AS, LabPlan, NodePlan
from netdoctor.lab.run import in_netns, read_pid, run
from netdoctor.lab.state import LabError, LabState

logger = logging.getLogger(__name__)

DAEMON_DIR = Path("/usr/lib/frr")
DAEMONS = ("zebra", "bgpd")


def bgpd_config(plan: LabPlan, node: NodePlan) -> str:
    """Return the ``bgpd.conf`` of one node."""
    lines = [
        "hostname " + node.name,
        f"router bgp {BGP_AS}",
        f" bgp router-id {node.lan_ip}",
        " no bgp ebgp-requires-policy",
        " timers bgp 3 9",
    ]
    for peer in plan.peers(node):
        lines += [f" neighbor {peer.lan_ip} remote-as {BGP_AS}", f" neighbor {peer.lan_ip} timers connect 1"]
    lines += [" address-family ipv4 unicast", f"  network {node.subnet}", " exit-address-family", ""]
    return "\n".join(lines)


def config_dir(state: LabState, node: NodePlan) -> Path:
    """Return a node's FRR config directory (its ``/etc/frr``)."""
    return state.node_path(node.name, "/etc/frr")


def vty_dir(state: LabState, node: NodePlan) -> Path:
    """Return the directory of a node's FRR sockets and PID files (its ``/run/frr``)."""
    return state.node_path(node.name, "/run/frr")


def check_reachable(path: Path) -> None:
    """Raise :class:`LabError` unless every directory above ``path`` lets other users (frr) pass through."""
    for parent in path.parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise LabError(
                f"FRR's daemons run as user frr and cannot enter {parent} (mode {parent.stat().st_mode & 0o777:o}): "
                "choose a --state-dir whose parent directories are world-searchable"
            )


def start_node(state: LabState, node: NodePlan) -> None:
    """Write a node's FRR configs and start zebra, then bgpd, in its namespace."""
    configs = config_dir(state, node)
    sockets = vty_dir(state, node)
    logs = state.node_path(node.name, "/var/log/frr")
    check_reachable(configs)
    for directory in (configs, sockets, logs):
        directory.mkdir(parents=True, exist_ok=True)
        shutil.chown(directory, "frr", "frr")
    (configs / "zebra.conf").write_text(f"hostname {node.name}\n")
    (configs / "bgpd.conf").write_text(bgpd_config(state.plan, node))
    for name in ("zebra.conf", "bgpd.conf"):
        shutil.chown(configs / name, "frr", "frr")

    for daemon in DAEMONS:
        pid_file = sockets / f"{daemon}.pid"
        in_netns(node.netns, [
            str(DAEMON_DIR / daemon), "-d", "-u", "frr", "-g", "frr", "-i", str(pid_file),
            "-z", str(sockets / "zserv.api"), "--vty_socket", str(sockets),
            "-f", str(configs / f"{daemon}.conf"), "--log", f"file:{logs / (daemon + '.log')}",
        ])  # fmt: skip
        state.pids[f"{node.name}/{daemon}"] = read_pid(pid_file)
        state.save()


def start(state: LabState) -> None:
    """Start FRR on every node and wait until every node has a BGP route to every peer's subnet."""
    for node in state.plan.nodes:
        start_node(state, node)
    wait_converged(state)


def wait_converged(state: LabState, timeout: float = 30.0) -> None:
    """Wait until every node has learned every peer's subnet; raise :class:`LabError` on timeout."""
    routing.wait_converged(state, "bgp", "vtysh 'show bgp summary'", timeout)

def vtysh(state: LabState, node: NodePlan, *commands: str) -> str:
    """Run vtysh commands against a node's FRR and return the output."""
    argv = ["vtysh", "--vty_socket", str(vty_dir(state, node))]
    for command in commands:
        argv += ["-c", command]
    return run(argv)


def reset_sessions(state: LabState, node: NodePlan) -> None:
    """Reset a node's BGP sessions, so that none lives on with a hold timer that ran down during a fault."""
    vtysh(state, node, "clear bgp *")


def wait_established(state: LabState, timeout: float = 30.0) -> None:
    """Wait until every BGP session of every node is Established; raise :class:`LabError` on timeout."""
    deadline = time.monotonic() + timeout
    waiting: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        waiting = {}
        for node in state.plan.nodes:
            summary = json.loads(vtysh(state, node, "show bgp ipv4 unicast summary json") or "{}")
            peers = summary.get("peers", summary.get("ipv4Unicast", {}).get("peers", {}))
            down = [address for address, peer in peers.items() if peer.get("state") != "Established"]
            if down or not peers:
                waiting[node.name] = down
        if not waiting:
            return
        time.sleep(0.2)
    raise LabError(f"BGP sessions not Established after {timeout:g} s: {waiting}; see vtysh 'show bgp summary'")
