"""The ovs-gre and ovs-vxlan backends: an Open vSwitch tunnel mesh on the userspace datapath.

There is no openvswitch kernel module here, so every node runs its own
``ovsdb-server`` and ``ovs-vswitchd`` with ``datapath_type=netdev``, its database,
sockets and ``OVS_RUNDIR`` under the node's directory. The node's LAN address
moves from ``eth0`` to the ``br-phy`` bridge that holds ``eth0``, because the
userspace datapath sends tunnel packets through the bridge that owns the route to
the peer. ``br-int`` holds one tunnel port per peer (N x (N-1) in all) and its
internal port carries the routes to the peers' pod subnets; pods stay on
``docker0``. ``br-int`` has one OpenFlow rule, ``actions=NORMAL``: MAC learning
sends a frame for a known MAC to the tunnel it was learned on and floods the
rest, as a bridge without a controller does. Every tunnel port is
``protected``, so a frame that comes in from a tunnel never goes out to
another protected tunnel, and the full mesh has no forwarding loop. No rule
names a port number, so a tunnel port that is added again works at once. OVS
drops the MACs it learned on a port when the port is deleted.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from netdoctor.lab.plan import LAN_NETWORK, OVS_MTU, LabPlan, NodePlan
from netdoctor.lab.run import in_netns, ip_batch, read_pid, run
from netdoctor.lab.state import LabState
from netdoctor.lab.topology import lan_mac

logger = logging.getLogger(__name__)

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
#: The OpenFlow rules of every node's ``br-int``, for ``ovs-ofctl replace-flows``.
FLOWS = "priority=0,actions=NORMAL\n"


def tunnel_type(plan: LabPlan) -> str:
    """Return the OVS interface type of the lab's tunnels: ``gre`` or ``vxlan``."""
    return plan.backend.removeprefix("ovs-")


def tunnel_port(plan: LabPlan, peer: NodePlan) -> str:
    """Return the name of the tunnel port towards ``peer``, such as ``gre-node2``."""
    return f"{tunnel_type(plan)}-{peer.name}"


def peer_gateway(peer: NodePlan) -> str:
    """Return the address routes to ``peer``'s pods go through: its ``docker0`` gateway."""
    return peer.gateway


class Paths:
    """The paths of one node's Open vSwitch database, sockets, PID files and logs."""

    def __init__(self, state: LabState, node: NodePlan) -> None:
        self.etc = state.node_path(node.name, "/etc/openvswitch")
        self.run = state.node_path(node.name, "/run/openvswitch")
        self.log = state.node_path(node.name, "/var/log/openvswitch")
        self.database = self.etc / "conf.db"
        self.socket = self.run / "db.sock"

    @property
    def db(self) -> str:
        """The ``--db`` argument for ``ovs-vsctl``."""
        return f"unix:{self.socket}"

    def bridge_socket(self, bridge: str) -> str:
        """Return the OpenFlow management socket of one bridge, for ``ovs-ofctl``."""
        return f"unix:{self.run / (bridge + '.mgmt')}"


def vsctl(paths: Paths, *arguments: str) -> str:
    """Run ``ovs-vsctl`` against one node's database."""
    return run(["ovs-vsctl", f"--db={paths.db}", "--timeout=20", *arguments])


def start_daemons(state: LabState, node: NodePlan) -> Paths:
    """Create a node's OVS database and start its ovsdb-server and ovs-vswitchd."""
    paths = Paths(state, node)
    for directory in (paths.etc, paths.run, paths.log):
        directory.mkdir(parents=True, exist_ok=True)
    run(["ovsdb-tool", "create", str(paths.database), str(SCHEMA)])
    in_netns(node.netns, [
        "ovsdb-server", str(paths.database), f"--remote=punix:{paths.socket}",
        f"--pidfile={paths.run / 'ovsdb-server.pid'}", f"--unixctl={paths.run / 'ovsdb-server.ctl'}",
        f"--log-file={paths.log / 'ovsdb-server.log'}", "--detach",
    ])  # fmt: skip
    state.pids[f"{node.name}/ovsdb-server"] = read_pid(paths.run / "ovsdb-server.pid")
    state.save()
    environment = [f"OVS_RUNDIR={paths.run}", f"OVS_DBDIR={paths.etc}", f"OVS_LOGDIR={paths.log}"]
    in_netns(node.netns, [
        "env", *environment, "ovs-vswitchd", paths.db,
        f"--pidfile={paths.run / 'ovs-vswitchd.pid'}", f"--unixctl={paths.run / 'ovs-vswitchd.ctl'}",
        f"--log-file={paths.log / 'ovs-vswitchd.log'}", "--detach",
    ])  # fmt: skip
    state.pids[f"{node.name}/ovs-vswitchd"] = read_pid(paths.run / "ovs-vswitchd.pid")
    state.save()
    return paths


def tunnel_arguments(plan: LabPlan, peer: NodePlan) -> list[str]:
    """Return the ``ovs-vsctl`` arguments that add the tunnel port towards ``peer``."""
    port = tunnel_port(plan, peer)
    return [
        "--", "--may-exist", "add-port", "br-int", port,
        "--", "set", "interface", port, f"type={tunnel_type(plan)}", f"options:remote_ip={peer.lan_ip}",
        # NORMAL does not forward between two protected ports: the split horizon of the full mesh.
        "--", "set", "port", port, "protected=true",
    ]  # fmt: skip


def remove_other_tunnels(state: LabState, node: NodePlan, peer: NodePlan) -> None:
    """Delete every tunnel port of ``node`` to ``peer``'s LAN address except the lab's own, such as one a fixer added."""
    paths = Paths(state, node)
    names = vsctl(paths, "--bare", "--columns=name", "find", "interface", f"options:remote_ip={peer.lan_ip}").split()
    for name in names:
        if name != tunnel_port(state.plan, peer):
            vsctl(paths, "--if-exists", "del-port", name)


def program_flows(state: LabState, node: NodePlan) -> None:
    """Replace every OpenFlow rule of a node's ``br-int`` with the healthy set."""
    paths = Paths(state, node)
    flows = paths.run / "br-int.flows"
    flows.write_text(FLOWS)
    run(["ovs-ofctl", "replace-flows", paths.bridge_socket("br-int"), str(flows)])


def kernel_lines(plan: LabPlan, node: NodePlan) -> list[str]:
    """Return the ``ip`` lines for a node's routes and neighbours towards every peer over ``br-int``."""
    lines = []
    for peer in plan.peers(node):
        gateway = peer_gateway(peer)
        lines.append(f"neigh replace {gateway} lladdr {peer.vtep_mac} dev br-int nud permanent")
        lines.append(f"route replace {peer.subnet} via {gateway} dev br-int onlink")
    return lines


def int_bridge_arguments(plan: LabPlan, node: NodePlan) -> list[str]:
    """Return the ``ovs-vsctl`` arguments that create ``br-int`` with its tunnel ports."""
    arguments = [
        "--", "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev",
        f"other_config:hwaddr={node.vtep_mac}", "fail_mode=secure",
        # OVS resets an internal port's MTU whenever a port is added, unless it is requested here.
        "--", "set", "interface", "br-int", f"mtu_request={OVS_MTU}",
    ]  # fmt: skip
    for peer in plan.peers(node):
        arguments += tunnel_arguments(plan, peer)
    return arguments


def finish_int_bridge(state: LabState, node: NodePlan) -> None:
    """Bring ``br-int`` up with the overlay MTU, add the routes to the peers and load the flows."""
    ip_batch(node.netns, ["link set br-int up", *kernel_lines(state.plan, node)])
    program_flows(state, node)


def flush_learned_macs(state: LabState) -> None:
    """Make every node's ``br-int`` forget the MACs it learned, as after a MAC moved between nodes.

    NORMAL keeps a learned MAC on the tunnel port it arrived on for 300 s, so
    frames for a MAC that moved back would go to the wrong node until then.
    """
    for node in state.plan.nodes:
        _wait_for_mac(node, "br-int", node.vtep_mac)
    for node in state.plan.nodes:
        paths = Paths(state, node)
        run(["ovs-appctl", "-t", str(paths.run / "ovs-vswitchd.ctl"), "fdb/flush", "br-int"])


def _wait_for_mac(node: NodePlan, device: str, mac: str, timeout: float = 5.0) -> None:
    """Wait until ovs-vswitchd has applied a bridge's configured MAC, which it does after ovs-vsctl returns.

    Frames sent with the old MAC after a flush would teach the peers the wrong port again.
    """
    deadline = time.monotonic() + timeout
    while True:
        current = in_netns(node.netns, ["cat", f"/sys/class/net/{device}/address"], check=False).strip()
        if current.lower() == mac.lower() or time.monotonic() > deadline:
            if current.lower() != mac.lower():
                logger.warning("%s: %s still has MAC %s after %.0f s, not %s", node.name, device, current, timeout, mac)
            return
        time.sleep(0.05)


def rebuild_int_bridge(state: LabState, node: NodePlan) -> None:
    """Recreate a node's ``br-int`` as ``lab up`` built it."""
    paths = Paths(state, node)
    vsctl(paths, "--if-exists", "del-br", "br-int", *int_bridge_arguments(state.plan, node))
    finish_int_bridge(state, node)


def build_node(state: LabState, node: NodePlan) -> None:
    """Create a node's bridges and tunnels and move its LAN address to ``br-phy``."""
    plan = state.plan
    paths = start_daemons(state, node)
    arguments = [
        "--", "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
        f"other_config:hwaddr={lan_mac(node)}",
        "--", "add-port", "br-phy", "eth0",
    ]  # fmt: skip
    vsctl(paths, *arguments, *int_bridge_arguments(plan, node))
    prefix = LAN_NETWORK.prefixlen
    ip_batch(node.netns, [
        f"addr del {node.lan_ip}/{prefix} dev eth0",
        f"addr add {node.lan_ip}/{prefix} dev br-phy",
        "link set br-phy up",
    ])  # fmt: skip
    finish_int_bridge(state, node)


def start(state: LabState) -> None:
    """Build the OVS mesh on every node."""
    for node in state.plan.nodes:
        build_node(state, node)
