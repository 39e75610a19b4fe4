"""The flannel-vxlan and direct-routing backends: what flanneld would program, done by the lab.

There is no flanneld here, so the lab writes each node's ``subnet.env``, the
``flannel.1`` VXLAN device and, for every peer, the FDB entry, the neighbour
entry and the onlink route that flanneld's VXLAN backend installs, or the
``PEER_SUBNET via PEER_LAN_IP`` route of its host-gw backend. The BIRD and FRR
backends share its wait for BGP routes to every peer.
"""

from __future__ import annotations

import json
import logging
import time

from netdoctor.lab.plan import FLANNEL_PORT, FLANNEL_VNI, VXLAN_MTU, LabPlan, NodePlan
from netdoctor.lab.run import ip_batch, run
from netdoctor.lab.state import LabError, LabState
from netdoctor.lab.topology import pod_mtu

logger = logging.getLogger(__name__)

VXLAN_DEVICE = "flannel.1"


def vtep_address(node: NodePlan) -> str:
    """Return the address flanneld puts on ``flannel.1``: the subnet's network address, /32."""
    return node.subnet.split("/")[0]


def write_node_files(state: LabState, node: NodePlan) -> None:
    """Write the files flanneld and Docker leave on a node: ``subnet.env`` and ``daemon.json``."""
    plan = state.plan
    mtu = pod_mtu(plan)
    prefix = node.subnet.split("/")[1]
    env = state.node_path(node.name, "/run/flannel/subnet.env")
    env.parent.mkdir(parents=True, exist_ok=True)
    env.write_text(
        f"FLANNEL_NETWORK={plan.pod_network}\nFLANNEL_SUBNET={node.gateway}/{prefix}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ=true\n"
    )
    write_docker_config(state, node)


def write_docker_config(state: LabState, node: NodePlan) -> None:
    """Write the ``daemon.json`` that gives the node's docker0 its pod subnet (``bip``) and the pod MTU."""
    prefix = node.subnet.split("/")[1]
    docker = state.node_path(node.name, "/etc/docker/daemon.json")
    docker.parent.mkdir(parents=True, exist_ok=True)
    docker.write_text(json.dumps({"bip": f"{node.gateway}/{prefix}", "mtu": pod_mtu(state.plan)}, indent=2) + "\n")


def vxlan_device_lines(node: NodePlan) -> list[str]:
    """Return the ``ip`` lines that create ``flannel.1`` as flanneld does."""
    return [
        f"link add {VXLAN_DEVICE} type vxlan id {FLANNEL_VNI} local {node.lan_ip} dev eth0 dstport {FLANNEL_PORT} nolearning",
        f"link set {VXLAN_DEVICE} address {node.vtep_mac} mtu {VXLAN_MTU}",
        f"addr add {vtep_address(node)}/32 dev {VXLAN_DEVICE}",
        f"link set {VXLAN_DEVICE} up",
    ]


def vxlan_peer_lines(peer: NodePlan) -> tuple[list[str], list[str]]:
    """Return the ``ip`` and ``bridge`` lines that make one peer reachable over ``flannel.1``."""
    ip_lines = [
        f"neigh replace {vtep_address(peer)} lladdr {peer.vtep_mac} dev {VXLAN_DEVICE} nud permanent",
        f"route replace {peer.subnet} via {vtep_address(peer)} dev {VXLAN_DEVICE} onlink",
    ]
    bridge_lines = [f"fdb replace {peer.vtep_mac} dev {VXLAN_DEVICE} dst {peer.lan_ip} self permanent"]
    return ip_lines, bridge_lines


def direct_route_line(peer: NodePlan) -> str:
    """Return the host-gw route to one peer's pod subnet."""
    return f"route replace {peer.subnet} via {peer.lan_ip} dev eth0"


def program_node(state: LabState, node: NodePlan) -> None:
    """Program one node's overlay (flannel-vxlan) or routes (direct-routing) to every peer."""
    plan: LabPlan = state.plan
    write_node_files(state, node)
    if plan.backend == "flannel-vxlan":
        ip_lines = vxlan_device_lines(node)
        bridge_lines: list[str] = []
        for peer in plan.peers(node):
            peer_ip, peer_bridge = vxlan_peer_lines(peer)
            ip_lines += peer_ip
            bridge_lines += peer_bridge
        ip_batch(node.netns, ip_lines)
        ip_batch(node.netns, bridge_lines, tool="bridge")
    else:
        ip_batch(node.netns, [direct_route_line(peer) for peer in plan.peers(node)])


def learned_routes(node: NodePlan, protocol: str) -> set[tuple[str, str]]:
    """Return (destination, gateway) of the unicast routes of ``protocol`` through ``eth0`` in a node's main table."""
    routes = json.loads(run(["ip", "-n", node.netns, "-j", "route", "show", "proto", protocol]) or "[]")
    return {
        (route["dst"], route.get("gateway", ""))
        for route in routes
        if route.get("type", "unicast") == "unicast" and route.get("dev") == "eth0"
    }


def wait_converged(state: LabState, protocol: str, hint: str, timeout: float = 30.0) -> None:
    """Wait until every node has a ``protocol`` route to every peer's subnet via the peer.

    Raise :class:`LabError` on timeout, naming the missing routes and ``hint``, the command to look at.
    """
    plan = state.plan
    deadline = time.monotonic() + timeout
    missing: dict[str, set[tuple[str, str]]] = {}
    while time.monotonic() < deadline:
        missing = {}
        for node in plan.nodes:
            wanted = {(peer.subnet, peer.lan_ip) for peer in plan.peers(node)}
            lacking = wanted - learned_routes(node, protocol)
            if lacking:
                missing[node.name] = lacking
        if not missing:
            return
        time.sleep(0.2)
    raise LabError(f"BGP did not converge in {timeout:g} s; routes missing: {missing}; see {hint}")
