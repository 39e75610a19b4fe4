"""The parts every backend shares: the LAN, the node namespaces, pods and base sysctls."""

from __future__ import annotations

import logging

from netdoctor.lab.plan import LAN_NETWORK, OVS_MTU, VXLAN_MTU, LabPlan, NodePlan
from netdoctor.lab.run import in_netns, ip_batch, run, sysctl

logger = logging.getLogger(__name__)

LAN_BRIDGE = "br-lan"
POD_BRIDGE = "docker0"
#: The MAC Calico gives the host end of every pod veth.
CALICO_VETH_MAC = "ee:ee:ee:ee:ee:ee"


def pod_mtu(plan: LabPlan) -> int:
    """Return the MTU of the pod bridge and veths: the overlay MTU, or 1500 without an overlay."""
    if plan.backend == "flannel-vxlan":
        return VXLAN_MTU
    if plan.backend.startswith("ovs-"):
        return OVS_MTU
    return 1500


def uses_bridge(plan: LabPlan) -> bool:
    """Return whether pods sit on a Linux bridge (every backend but calico-bgp)."""
    return plan.backend != "calico-bgp"


def create_namespaces(plan: LabPlan) -> None:
    """Create the LAN, node and pod namespaces and join each node to the LAN bridge."""
    names = [plan.lan_netns]
    for node in plan.nodes:
        names.append(node.netns)
        names.extend(pod.netns for pod in node.pods)
    ip_batch(None, [f"netns add {name}" for name in names])
    ip_batch(plan.lan_netns, ["link set lo up", f"link add {LAN_BRIDGE} type bridge forward_delay 0", f"link set {LAN_BRIDGE} up"])
    ip_batch(
        None,
        [f"link add eth0 netns {node.netns} type veth peer name {node.lan_veth} netns {plan.lan_netns}" for node in plan.nodes],
    )
    ip_batch(plan.lan_netns, [f"link set {node.lan_veth} master {LAN_BRIDGE} up" for node in plan.nodes])


def node_sysctls(plan: LabPlan) -> dict[str, str]:
    """Return the sysctls every node sets: forwarding on, loose source checks, bridge netfilter on."""
    settings = {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0",
        "net.ipv4.conf.eth0.rp_filter": "0",
    }
    if uses_bridge(plan):
        settings["net.bridge.bridge-nf-call-iptables"] = "1"
    return settings


def build_node(plan: LabPlan, node: NodePlan) -> None:
    """Address a node's LAN port, build its pod bridge (if any) and attach its pods."""
    mtu = pod_mtu(plan)
    lines = ["link set lo up", f"addr add {node.lan_ip}/{LAN_NETWORK.prefixlen} dev eth0", "link set eth0 up"]
    if uses_bridge(plan):
        prefix = node.subnet.split("/")[1]
        lines += [
            f"link add {POD_BRIDGE} type bridge forward_delay 0",
            f"link set {POD_BRIDGE} mtu {mtu}",
            f"addr add {node.gateway}/{prefix} dev {POD_BRIDGE}",
            f"link set {POD_BRIDGE} up",
        ]
    for pod in node.pods:
        lines.append(f"link add {pod.host_veth} mtu {mtu} type veth peer name eth0 netns {pod.netns}")
        if uses_bridge(plan):
            lines.append(f"link set {pod.host_veth} master {POD_BRIDGE} up")
        else:
            lines += [
                f"link set {pod.host_veth} address {CALICO_VETH_MAC}",
                f"link set {pod.host_veth} up",
                f"route add {pod.address}/32 dev {pod.host_veth} scope link",
            ]
    ip_batch(node.netns, lines)

    settings = node_sysctls(plan)
    if not uses_bridge(plan):
        settings.update({f"net.ipv4.conf.{pod.host_veth}.proxy_arp": "1" for pod in node.pods})
    sysctl(node.netns, settings)
    firewall_rules(plan, node)

    for pod in node.pods:
        build_pod(plan, node, pod.netns, pod.address)


def build_pod(plan: LabPlan, node: NodePlan, netns: str, address: str) -> None:
    """Address one pod and give it a default route, as the CNI plugin of the backend does."""
    if uses_bridge(plan):
        prefix = node.subnet.split("/")[1]
        lines = ["link set lo up", f"addr add {address}/{prefix} dev eth0", "link set eth0 up",
                 f"route add default via {node.gateway}"]  # fmt: skip
    else:
        lines = [
            "link set lo up",
            f"addr add {address}/32 dev eth0",
            "link set eth0 up",
            f"route add {node.gateway} dev eth0 scope link",
            f"route add default via {node.gateway} dev eth0",
            # The node has no route to 169.254.1.1, so proxy ARP would not answer for it;
            # a permanent entry gives the gateway the MAC of the host-side veth.
            f"neigh replace {node.gateway} lladdr {CALICO_VETH_MAC} dev eth0 nud permanent",
        ]
    ip_batch(netns, lines)


def firewall_rules(plan: LabPlan, node: NodePlan) -> None:
    """Install the iptables rules a CNI plugin adds: accept pod forwarding, masquerade outbound pod traffic."""
    if plan.firewall != "iptables":
        return
    network = plan.pod_network
    rules = "\n".join(
        [
            "*filter",
            f"-A FORWARD -s {network} -j ACCEPT",
            f"-A FORWARD -d {network} -j ACCEPT",
            "COMMIT",
            "*nat",
            f"-A POSTROUTING -s {network} ! -d {network} -j MASQUERADE",
            "COMMIT",
            "",
        ]
    )
    run(["ip", "netns", "exec", node.netns, "iptables-restore", "--noflush"], input_text=rules)


def lan_mac(node: NodePlan) -> str:
    """Return the MAC address of a node's ``eth0``."""
    return in_netns(node.netns, ["cat", "/sys/class/net/eth0/address"]).strip()
