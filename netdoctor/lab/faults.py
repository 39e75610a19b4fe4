"""Faults the lab can inject, one per check id, and the backend x fault matrix.

Every cell of the matrix is one of:

* ``symptom``: the fault has a data-plane effect that real packets show; the
  fault's probe (an echo request with a given size from one namespace to one
  address) is answered when the lab is healthy and not while the fault is active.
* ``check-only``: the fault changes real state that a check can see, but the
  lab's packets are unaffected, for the reason given.
* ``n/a``: the backend has nothing the fault could change, for the reason given.

``break_fault`` applies a fault and records in the state file how to undo it;
``heal`` runs those undo steps, newest fault first.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netdoctor.lab import etcd, ovs, routing
from netdoctor.lab.plan import BACKENDS, BGP_AS, FLANNEL_PORT, LAN_NETWORK, LabPlan, NodePlan
from netdoctor.lab.run import in_netns, ip_batch, ip_batch_settled, run, sysctl
from netdoctor.lab.state import LabError, LabState
from netdoctor.lab.topology import LAN_BRIDGE, POD_BRIDGE, firewall_rules, node_sysctls

logger = logging.getLogger(__name__)

SYMPTOM, CHECK_ONLY, NOT_APPLICABLE = "symptom", "check-only", "n/a"
#: The second LAN interface that the rp-filter-strict fault gives a node.
SECOND_NIC = "eth1"
#: An address on the LAN that no node uses: a next hop or VTEP that answers nothing.
UNUSED_LAN_IP = "10.0.0.250"

Step = dict[str, Any]
Apply = Callable[[LabState, NodePlan, NodePlan], list[Step]]


class NotApplicable(LabError):
    """The fault has no meaning on this backend; the message gives the reason."""


@dataclass(frozen=True)
class Cell:
    """One backend x fault cell: its kind and, for check-only and n/a, why."""

    kind: str
    reason: str = ""
    #: False when the probe's outcome changes over time while the fault is active.
    steady: bool = True


@dataclass(frozen=True)
class Probe:
    """The packet that shows a symptom: an echo request from ``source`` to ``destination``."""

    source: str
    destination: str
    size: int = 56


@dataclass(frozen=True)
class Fault:
    """One injectable fault: what it does, how it shows per backend, how to apply it and to see it."""

    id: str
    summary: str
    cells: dict[str, Cell]
    apply: Apply
    probe: Callable[[LabPlan, NodePlan, NodePlan], Probe]


def _cells(default: Cell, **overrides: Cell) -> dict[str, Cell]:
    cells = {backend: default for backend in BACKENDS}
    for key, cell in overrides.items():
        cells[key.replace("_", "-")] = cell
    return cells


# Probes. ``target`` is the broken node, ``peer`` another node.
def _peer_pod_to_target_pod(plan: LabPlan, target: NodePlan, peer: NodePlan) -> Probe:
    return Probe(peer.pods[0].netns, target.pods[0].address)


def _target_pod_to_peer_pod(plan: LabPlan, target: NodePlan, peer: NodePlan) -> Probe:
    return Probe(target.pods[0].netns, peer.pods[0].address)


def _target_to_peer_lan(plan: LabPlan, target: NodePlan, peer: NodePlan) -> Probe:
    return Probe(target.netns, peer.lan_ip)


def _large_peer_pod_to_target_pod(plan: LabPlan, target: NodePlan, peer: NodePlan) -> Probe:
    # 1400 bytes of payload make a 1428-byte packet: within every pod MTU, but its
    # encapsulated or routed frame no longer fits the broken node's eth0.
    return Probe(peer.pods[0].netns, target.pods[0].address, 1400)


def _third_node(plan: LabPlan, target: NodePlan, peer: NodePlan) -> NodePlan:
    others = [node for node in plan.nodes if node.name not in (target.name, peer.name)]
    return others[0] if others else peer


def _other_pod_to_target_pod(plan: LabPlan, target: NodePlan, peer: NodePlan) -> Probe:
    return Probe(_third_node(plan, target, peer).pods[0].netns, target.pods[0].address)


# Steps: JSON-ready records of what to run, so that heal works from the state file alone.
def _ip(netns: str, *lines: str, tool: str = "ip") -> Step:
    return {"ip": netns, "lines": list(lines), "tool": tool}


def _run(*argv: str) -> Step:
    return {"run": list(argv)}


def run_step(state: LabState, step: Step, wait: bool = True) -> None:
    """Run one recorded step; without ``wait``, BGP steps restart sessions but do not wait for them.

    A heal waits for BGP only at its last fault: faults not healed yet may
    keep routes away until then.
    """
    if "ip" in step:
        ip_batch_settled(step["ip"], step["lines"], tool=step.get("tool", "ip"))
    elif "run" in step:
        _run_settled(step["run"])
    elif step.get("etcd") == "seed":
        if state.etcd_endpoint is None:
            raise LabError("the lab has no etcd endpoint recorded; recreate it with lab down and lab up")
        etcd.seed_flannel(state.etcd_endpoint, state.plan)
    elif "ovs-rebuild" in step:
        ovs.rebuild_int_bridge(state, state.plan.node(step["ovs-rebuild"]))
    elif "ovs-flows" in step:
        ovs.program_flows(state, state.plan.node(step["ovs-flows"]))
    elif "ovs-finish" in step:
        ovs.finish_int_bridge(state, state.plan.node(step["ovs-finish"]))
    elif "ovs-other-tunnels" in step:
        node, peer = step["ovs-other-tunnels"]
        ovs.remove_other_tunnels(state, state.plan.node(node), state.plan.node(peer))
    elif "ovs-flush-macs" in step:
        ovs.flush_learned_macs(state)
    elif "firewall" in step:
        firewall_rules(state.plan, state.plan.node(step["firewall"]))
    elif "wait-bgp" in step:
        if wait:
            _wait_bgp(state)
    elif "reset-bgp" in step:
        _reset_bgp(state, state.plan.node(step["reset-bgp"]), wait)
    else:
        raise LabError(f"unknown undo step {step!r} in the state file")


def _run_settled(argv: list[str]) -> None:
    """Run a recorded command, taking an ``iptables -D`` of a rule that is gone already as done."""
    try:
        run(argv)
    except LabError as error:
        if "iptables" in argv and "-D" in argv and "does a matching rule exist" in str(error):
            logger.debug("'%s' is done already: %s", " ".join(argv), error)
            return
        raise


def _wait_bgp(state: LabState) -> None:
    if state.plan.backend == "calico-bgp":
        from netdoctor.lab import bird

        bird.wait_converged(state)
    elif state.plan.backend == "frr":
        from netdoctor.lab import frr

        frr.wait_converged(state)


def _reset_bgp(state: LabState, node: NodePlan, wait: bool = True) -> None:
    """Restart a node's BGP sessions after a fault that cut its LAN traffic, and wait until all are back.

    Keepalives lost during the fault leave hold timers that can expire seconds
    after the heal; fresh sessions do not carry them.
    """
    if state.plan.backend == "calico-bgp":
        from netdoctor.lab import bird

        bird.reset_sessions(state, node)
        if wait:
            bird.wait_established(state)
    elif state.plan.backend == "frr":
        from netdoctor.lab import frr

        frr.reset_sessions(state, node)
        if wait:
            frr.wait_established(state)
    if wait:
        _wait_bgp(state)


def _healthy_route(plan: LabPlan, node: NodePlan, peer: NodePlan) -> str:
    """Return the ``ip route replace`` line that ``lab up`` used for ``node``'s route to ``peer``."""
    if plan.backend == "flannel-vxlan":
        return routing.vxlan_peer_lines(peer)[0][1]
    if plan.backend == "direct-routing":
        return routing.direct_route_line(peer)
    if plan.backend.startswith("ovs-"):
        return f"route replace {peer.subnet} via {ovs.peer_gateway(peer)} dev br-int onlink"
    if plan.backend == "calico-bgp":
        return f"route replace {peer.subnet} via {peer.lan_ip} dev eth0 proto bird metric 32"
    raise LabError(f"{plan.backend} routes are installed by zebra, not by the lab")


def _prefix(node: NodePlan) -> str:
    return node.subnet.split("/")[1]


# Fault implementations. Each changes real state and returns the steps that undo it.
def _bridge_subnet_overlap(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    plan = state.plan
    address = f"{peer.gateway}/{_prefix(peer)}"
    lines = [] if plan.backend == "frr" else [f"route del {peer.subnet}"]
    ip_batch(target.netns, [*lines, f"addr add {address} dev {POD_BRIDGE}"])
    undo = [f"addr del {address} dev {POD_BRIDGE}"]
    if plan.backend == "frr":
        return [_ip(target.netns, *undo), {"wait-bgp": True}]
    undo.append(_healthy_route(plan, target, peer))
    return [_ip(target.netns, *undo)]


def _pod_network_overlaps_host(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    # 10.0.0.0/25 holds every node's LAN address, so the node now routes its LAN peers into the pod network.
    if state.plan.backend == "calico-bgp":
        # Calico has no pod bridge to address: a pod route covers the LAN instead, as a pool that
        # contains the nodes' addresses would give.
        route = f"10.0.0.0/25 dev {target.pods[0].host_veth} scope link"
        ip_batch(target.netns, [f"route add {route}"])
        return [_ip(target.netns, f"route del {route}"), {"reset-bgp": target.name}]
    ip_batch(target.netns, [f"addr add 10.0.0.1/25 dev {POD_BRIDGE}"])
    return [_ip(target.netns, f"addr del 10.0.0.1/25 dev {POD_BRIDGE}"), *_bgp_reset_steps(state, target)]


def _bridge_outside_overlay_subnet(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    # Docker's default bridge address, as when dockerd starts without flannel's --bip.
    original = f"{target.gateway}/{_prefix(target)}"
    ip_batch(target.netns, [f"addr del {original} dev {POD_BRIDGE}", f"addr add 172.17.0.1/16 dev {POD_BRIDGE}"])
    undo = [_ip(target.netns, f"addr del 172.17.0.1/16 dev {POD_BRIDGE}", f"addr add {original} dev {POD_BRIDGE}")]
    # Removing the gateway address also removed each pod's default route.
    undo += [_ip(pod.netns, f"route replace default via {target.gateway}") for pod in target.pods]
    if state.plan.backend == "frr":
        # bgpd withdraws the subnet once its connected route is gone. Waiting for the withdrawal here
        # keeps it from reaching the peers after 'lab heal', when it would remove the healed route.
        for other in state.plan.peers(target):
            _wait_route_gone(other, target.subnet)
        undo.append({"wait-bgp": True})
    return undo


def _etcd_network_config_missing(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    assert state.etcd_endpoint is not None
    etcd.delete_both(state.etcd_endpoint, f"{etcd.FLANNEL_PREFIX}/config")
    return [{"etcd": "seed"}]


def _etcd_lease_mismatch(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    assert state.etcd_endpoint is not None
    key = f"{etcd.FLANNEL_PREFIX}/subnets/{target.subnet_key}"
    wrong = etcd.lease_value(state.plan, target).replace(f'"{target.lan_ip}"', f'"{UNUSED_LAN_IP}"')
    etcd.put_both(state.etcd_endpoint, key, wrong, etcd.LEASE_TTL)
    return [{"etcd": "seed"}]


def _flannel_backend_mismatch(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    assert state.etcd_endpoint is not None
    other = "udp" if state.plan.backend == "flannel-vxlan" else "vxlan"
    config = etcd.network_config(state.plan)
    broken = config.replace(f'"Type": "{etcd.FLANNEL_TYPES[state.plan.backend]}"', f'"Type": "{other}"')
    etcd.put_both(state.etcd_endpoint, f"{etcd.FLANNEL_PREFIX}/config", broken)
    return [{"etcd": "seed"}]


def _overlay_interface_missing(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    if state.plan.backend == "flannel-vxlan":
        ip_batch(target.netns, [f"link del {routing.VXLAN_DEVICE}"])
        ip_lines = routing.vxlan_device_lines(target)
        bridge_lines: list[str] = []
        for other in state.plan.peers(target):
            more_ip, more_bridge = routing.vxlan_peer_lines(other)
            ip_lines += more_ip
            bridge_lines += more_bridge
        return [_ip(target.netns, *ip_lines), _ip(target.netns, *bridge_lines, tool="bridge")]
    ovs.vsctl(ovs.Paths(state, target), "del-br", "br-int")
    return [{"ovs-rebuild": target.name}]


def _restore_vtep_lines(plan: LabPlan, target: NodePlan) -> list[str]:
    # A MAC change flushes every neighbour entry of the device, the permanent ones too.
    lines = [f"link set {routing.VXLAN_DEVICE} address {target.vtep_mac}"]
    for other in plan.peers(target):
        lines += routing.vxlan_peer_lines(other)[0]
    return lines


#: The MAC that vtep-mismatch gives a node's flannel.1.
_STRAY_VTEP_MAC = "0e:00:00:00:ff:ff"


def _vtep_mismatch(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    ip_batch(target.netns, [f"link set {routing.VXLAN_DEVICE} address {_STRAY_VTEP_MAC}"])
    undo = [_ip(target.netns, *_restore_vtep_lines(state.plan, target))]
    # 'netdoctor fix' may have taught the peers and the node's lease the new MAC; they learn the old one again.
    ip_lines, bridge_lines = routing.vxlan_peer_lines(target)
    for other in state.plan.peers(target):
        undo += [_ip(other.netns, *ip_lines),
                 _ip(other.netns, f"fdb del {_STRAY_VTEP_MAC} dev {routing.VXLAN_DEVICE} dst {target.lan_ip} self",
                     *bridge_lines, tool="bridge")]
    if state.etcd_endpoint is not None:
        undo.append({"etcd": "seed"})
    return undo


def _tunnel_mesh_incomplete(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    paths = ovs.Paths(state, peer)
    ovs.vsctl(paths, "del-port", "br-int", ovs.tunnel_port(state.plan, target))
    # 'netdoctor fix' adds its own tunnel port to the node, which would leave two tunnels after the heal.
    return [{"ovs-other-tunnels": [peer.name, target.name]},
            _run("ovs-vsctl", f"--db={paths.db}", *ovs.tunnel_arguments(state.plan, target)), {"ovs-flows": peer.name}]


def _duplicate_mac(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    plan = state.plan
    if plan.backend == "flannel-vxlan":
        ip_batch(target.netns, [f"link set {routing.VXLAN_DEVICE} address {peer.vtep_mac}"])
        return [_ip(target.netns, *_restore_vtep_lines(state.plan, target))]
    if plan.backend.startswith("ovs-"):
        paths = ovs.Paths(state, target)
        ovs.vsctl(paths, "set", "bridge", "br-int", f"other_config:hwaddr={peer.vtep_mac}")
        restore = _run("ovs-vsctl", f"--db={paths.db}", "set", "bridge", "br-int", f"other_config:hwaddr={target.vtep_mac}")
        # The MAC change takes br-int down and up, which removes its routes and neighbour entries,
        # and peers' br-int learned the borrowed MAC on their tunnel to this node.
        return [restore, {"ovs-finish": target.name}, {"ovs-flush-macs": True}]
    # Peers keep sending to the node's old MAC until their ARP entries expire; after that
    # the LAN bridge delivers the shared MAC to whichever node last sent from it.
    original = in_netns(target.netns, ["cat", "/sys/class/net/eth0/address"]).strip()
    duplicate = in_netns(peer.netns, ["cat", "/sys/class/net/eth0/address"]).strip()
    ip_batch(target.netns, [f"link set eth0 address {duplicate}"])
    # Peers may have learned the node's address with the shared MAC; they resolve it again.
    flush = [_ip(other.netns, f"neigh flush to {target.lan_ip} dev eth0") for other in plan.peers(target)]
    return [_ip(target.netns, f"link set eth0 address {original}"), *flush, *_bgp_reset_steps(state, target)]


def _bgp_reset_steps(state: LabState, target: NodePlan) -> list[Step]:
    return [{"reset-bgp": target.name}] if state.plan.backend in ("calico-bgp", "frr") else []


def _route_missing(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    plan = state.plan
    if plan.backend == "frr":
        from netdoctor.lab import frr

        frr.vtysh(state, peer, "configure terminal", f"router bgp {BGP_AS}", "address-family ipv4 unicast",
                  f"no network {peer.subnet}")  # fmt: skip
        _wait_route_gone(target, peer.subnet)
        return [_vtysh_step(state, peer, f"network {peer.subnet}"), {"wait-bgp": True}]
    if not run(["ip", "-n", target.netns, "route", "show", peer.subnet]).strip():
        cause = ("another fault may have removed it ('netdoctor lab status' lists the active faults)" if state.faults
                 else "no fault is active, so it was removed outside the lab")
        raise LabError(f"{target.name} has no route to {peer.name}'s pod subnet {peer.subnet} to delete; {cause}")
    ip_batch(target.netns, [f"route del {peer.subnet}"])
    return [_ip(target.netns, _healthy_route(plan, target, peer))]


def _vtysh_step(state: LabState, node: NodePlan, line: str) -> Step:
    from netdoctor.lab import frr

    return _run("vtysh", "--vty_socket", str(frr.vty_dir(state, node)), "-c", "configure terminal",
                "-c", f"router bgp {BGP_AS}", "-c", "address-family ipv4 unicast", "-c", line)  # fmt: skip


def _wait_route_gone(node: NodePlan, destination: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not run(["ip", "-n", node.netns, "route", "show", destination]).strip():
            return
        time.sleep(0.1)
    raise LabError(f"{node.name}: the route to {destination} is still there after {timeout:g} s")


def _route_wrong_nexthop(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    plan = state.plan
    if plan.backend == "frr":
        from netdoctor.lab import frr

        frr.vtysh(state, target, "configure terminal", "route-map LAB-WRONG-NEXTHOP permit 10",
                  f"set ip next-hop {UNUSED_LAN_IP}", "exit", f"router bgp {BGP_AS}", "address-family ipv4 unicast",
                  f"neighbor {peer.lan_ip} route-map LAB-WRONG-NEXTHOP in", "end",
                  f"clear bgp ipv4 unicast {peer.lan_ip} soft in")  # fmt: skip
        undo_in = _vtysh_step(state, target, f"no neighbor {peer.lan_ip} route-map LAB-WRONG-NEXTHOP in")
        clear = _run("vtysh", "--vty_socket", str(frr.vty_dir(state, target)),
                     "-c", f"clear bgp ipv4 unicast {peer.lan_ip} soft in")  # fmt: skip
        try:
            _wait_route_via(target, peer.subnet, UNUSED_LAN_IP)
        except LabError as error:
            # Without a BGP route from the peer (another fault stops it) there is nothing to send the wrong way.
            for step in (undo_in, clear):
                run_step(state, step)
            raise LabError(f"{error}; the node needs the BGP route from {peer.name} first, so heal the other "
                           "faults and break this one again") from None
        return [undo_in, clear, {"wait-bgp": True}]
    wrong = {
        "flannel-vxlan": f"route replace {peer.subnet} via 10.244.250.0 dev {routing.VXLAN_DEVICE} onlink",
        "direct-routing": f"route replace {peer.subnet} via {UNUSED_LAN_IP} dev eth0",
        "calico-bgp": f"route replace {peer.subnet} via {UNUSED_LAN_IP} dev eth0 proto bird metric 32",
    }.get(plan.backend, f"route replace {peer.subnet} via 10.244.250.1 dev br-int onlink")
    ip_batch(target.netns, [wrong])
    return [_ip(target.netns, _healthy_route(plan, target, peer))]


def _wait_route_via(node: NodePlan, destination: str, gateway: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"via {gateway}" in run(["ip", "-n", node.netns, "route", "show", destination]):
            return
        time.sleep(0.1)
    raise LabError(f"{node.name}: the route to {destination} does not go via {gateway} after {timeout:g} s")


def _blackhole_route(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    # A /32 wins over any route the backend installs, whichever daemon owns that route.
    destination = f"{peer.pods[0].address}/32"
    ip_batch(target.netns, [f"route add blackhole {destination}"])
    # 'flush exact' succeeds when 'netdoctor fix' already removed the route, where 'route del' fails.
    return [_ip(target.netns, f"route flush exact {destination} type blackhole")]


def _bgp_peer_down(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    if state.plan.backend == "calico-bgp":
        from netdoctor.lab import bird

        bird.birdc(state, target, f"disable {peer.name}")
        _wait_route_gone(target, peer.subnet)
        return [_run("birdc", "-s", bird.socket_path(state, target), "enable", peer.name), {"wait-bgp": True}]
    from netdoctor.lab import frr

    frr.vtysh(state, target, "configure terminal", f"router bgp {BGP_AS}", f"neighbor {peer.lan_ip} shutdown")
    _wait_route_gone(target, peer.subnet)
    return [
        _run("vtysh", "--vty_socket", str(frr.vty_dir(state, target)), "-c", "configure terminal",
             "-c", f"router bgp {BGP_AS}", "-c", f"no neighbor {peer.lan_ip} shutdown"),
        {"wait-bgp": True},
    ]  # fmt: skip


def _mtu_mismatch(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    ip_batch(target.netns, ["link set eth0 mtu 1400"])
    return [_ip(target.netns, "link set eth0 mtu 1500")]


def _iptables(node: NodePlan, *rule: str) -> list[str]:
    return ["ip", "netns", "exec", node.netns, "iptables", *rule]


def _icmp_blocked(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    rule = ["FORWARD", "-p", "icmp", "-d", target.subnet, "-j", "DROP"]
    run(_iptables(target, "-I", *rule))
    return [_run(*_iptables(target, "-D", *rule))]


def _forward_policy_drop(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    # Docker sets the FORWARD policy to DROP; without the CNI plugin's accept rules pod traffic stops.
    run(_iptables(target, "-P", "FORWARD", "DROP"))
    run(_iptables(target, "-F", "FORWARD"))
    undo: list[Step] = [_run(*_iptables(target, "-P", "FORWARD", "ACCEPT"))]
    if state.plan.firewall == "iptables":
        undo.append({"firewall": target.name})
    return undo


def _overlay_port_blocked(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    rule = ["INPUT", "-p", "udp", "--dport", str(FLANNEL_PORT), "-j", "DROP"]
    if state.plan.backend == "ovs-gre":
        rule = ["INPUT", "-p", "gre", "-j", "DROP"]
    elif state.plan.backend == "ovs-vxlan":
        rule = ["INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP"]
    run(_iptables(target, "-I", *rule))
    return [_run(*_iptables(target, "-D", *rule))]


def _pod_traffic_masqueraded(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    rule = ["POSTROUTING", "-s", target.subnet, "-j", "MASQUERADE"]
    run(_iptables(target, "-t", "nat", "-I", *rule))
    return [_run(*_iptables(target, "-t", "nat", "-D", *rule))]


def _rp_filter_strict(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    # A second NIC on the LAN subnet, as on a host with two NICs on one network. The route back
    # to LAN hosts leaves by eth0, so strict mode drops what arrives on eth1.
    plan = state.plan
    address = str(ipaddress.ip_address(target.lan_ip) + 100)
    lan_port = f"{target.lan_veth}b"
    ip_batch(plan.lan_netns, [f"link add {lan_port} type veth peer name {SECOND_NIC} netns {target.netns}",
                              f"link set {lan_port} master {LAN_BRIDGE} up"])  # fmt: skip
    # arp_ignore=1 keeps eth1 from answering ARP for eth0's address, so peers keep reaching eth0.
    # noprefixroute leaves the LAN route alone: OVS's userspace datapath would follow a second
    # LAN route and send its tunnel packets to eth1, which is no port of its bridge.
    sysctl(target.netns, {f"net.ipv4.conf.{SECOND_NIC}.arp_ignore": "1"})
    ip_batch(target.netns, [f"addr add {address}/{LAN_NETWORK.prefixlen} dev {SECOND_NIC} noprefixroute",
                            f"link set {SECOND_NIC} up"])  # fmt: skip
    undo = _sysctl_fault({"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.eth0.rp_filter": "1"})(state, target, peer)
    return [*undo, _ip(plan.lan_netns, f"link del {lan_port}")]


def _bridge_nf_disabled(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
    # The chain kube-proxy creates for service rules, empty: the check needs to know that
    # pods depend on iptables, and the lab runs no kube-proxy.
    run(_iptables(target, "-t", "nat", "-N", "KUBE-SERVICES"))
    run(_iptables(target, "-t", "nat", "-A", "PREROUTING", "-j", "KUBE-SERVICES"))
    undo = _sysctl_fault({"net.bridge.bridge-nf-call-iptables": "0"})(state, target, peer)
    return [
        *undo,
        _run(*_iptables(target, "-t", "nat", "-D", "PREROUTING", "-j", "KUBE-SERVICES")),
        _run(*_iptables(target, "-t", "nat", "-X", "KUBE-SERVICES")),
    ]


def _sysctl_fault(settings: dict[str, str]) -> Apply:
    def apply(state: LabState, target: NodePlan, peer: NodePlan) -> list[Step]:
        healthy = node_sysctls(state.plan)
        sysctl(target.netns, settings)
        restore = [f"{key}={healthy.get(key, '0')}" for key in settings]
        return [_run("ip", "netns", "exec", target.netns, "sysctl", "-q", "-w", *restore)]

    return apply


_NO_FLANNELD = Cell(CHECK_ONLY, "no flanneld runs in the lab to read etcd, so the programmed data plane stays as it is")
_NO_ETCD = Cell(NOT_APPLICABLE, "this backend keeps no flannel config or leases in etcd")
_NO_BRIDGE = Cell(NOT_APPLICABLE, "Calico attaches pods with a veth and a /32 route each; there is no pod bridge")
_NO_OVERLAY = Cell(NOT_APPLICABLE, "this backend routes pod traffic over the LAN with no overlay device")
_NO_TUNNEL = Cell(NOT_APPLICABLE, "this backend has no VXLAN or GRE tunnels between nodes")
_LAN_MAC = Cell(
    CHECK_ONLY,
    "two nodes with one LAN MAC lose packets only while peers' ARP entries or the LAN bridge point at the "
    "other node, so the same probe may pass or fail",
    steady=False,
)
_NO_BGP = Cell(NOT_APPLICABLE, "this backend runs no BGP sessions")
_NO_TUNNEL_PORTS = Cell(
    NOT_APPLICABLE,
    "flannel.1 has no per-peer tunnel ports; a missing FDB entry for a peer is what vtep-mismatch reports",
)
_NO_VTEP_ENTRIES = Cell(
    NOT_APPLICABLE,
    "OVS tunnels keep no per-peer FDB or neighbour entries; a tunnel to a wrong address is tunnel-mesh-incomplete",
)
_SYMPTOM = Cell(SYMPTOM)
_USERSPACE = Cell(
    CHECK_ONLY, "the userspace OVS datapath takes tunnel packets from eth0 before netfilter sees them"
)

FAULTS: dict[str, Fault] = {
    fault.id: fault
    for fault in (
        Fault("bridge-subnet-overlap", "the node's pod bridge also holds a peer's pod subnet",
              _cells(_SYMPTOM, calico_bgp=_NO_BRIDGE), _bridge_subnet_overlap, _target_pod_to_peer_pod),
        Fault("pod-network-overlaps-host", "a pod-side address range covers the LAN's node addresses",
              _cells(_SYMPTOM), _pod_network_overlaps_host, _target_to_peer_lan),
        Fault("bridge-outside-overlay-subnet", "the pod bridge has Docker's default 172.17.0.1/16, outside the pod network",
              _cells(_SYMPTOM, calico_bgp=_NO_BRIDGE), _bridge_outside_overlay_subnet, _peer_pod_to_target_pod),
        Fault("etcd-network-config-missing", "/coreos.com/network/config is deleted from both etcd keyspaces",
              _cells(_NO_ETCD, flannel_vxlan=_NO_FLANNELD, direct_routing=_NO_FLANNELD),
              _etcd_network_config_missing, _peer_pod_to_target_pod),
        Fault("etcd-lease-mismatch", "the node's lease names a PublicIP the node does not have",
              _cells(_NO_ETCD, flannel_vxlan=_NO_FLANNELD, direct_routing=_NO_FLANNELD),
              _etcd_lease_mismatch, _peer_pod_to_target_pod),
        Fault("flannel-backend-mismatch", "the etcd config names another backend type than the nodes run",
              _cells(_NO_ETCD, flannel_vxlan=_NO_FLANNELD, direct_routing=_NO_FLANNELD),
              _flannel_backend_mismatch, _peer_pod_to_target_pod),
        Fault("overlay-interface-missing", "flannel.1 (or OVS br-int) is deleted on the node",
              _cells(_NO_OVERLAY, flannel_vxlan=_SYMPTOM, ovs_gre=_SYMPTOM, ovs_vxlan=_SYMPTOM),
              _overlay_interface_missing, _peer_pod_to_target_pod),
        Fault("vtep-mismatch", "the node's VTEP MAC no longer matches its peers' FDB and neighbour entries",
              _cells(_NO_TUNNEL, flannel_vxlan=_SYMPTOM, ovs_gre=_NO_VTEP_ENTRIES, ovs_vxlan=_NO_VTEP_ENTRIES),
              _vtep_mismatch, _peer_pod_to_target_pod),
        Fault("tunnel-mesh-incomplete", "a peer loses its tunnel port towards the node",
              _cells(_NO_TUNNEL, flannel_vxlan=_NO_TUNNEL_PORTS, ovs_gre=_SYMPTOM, ovs_vxlan=_SYMPTOM),
              _tunnel_mesh_incomplete, _peer_pod_to_target_pod),
        Fault("duplicate-mac", "the node takes a peer's VTEP MAC (its LAN MAC on backends without an overlay)",
              _cells(_LAN_MAC, flannel_vxlan=_SYMPTOM, ovs_gre=_SYMPTOM, ovs_vxlan=_SYMPTOM),
              _duplicate_mac, _other_pod_to_target_pod),
        Fault("route-missing", "the node has no route to a peer's pod subnet",
              _cells(_SYMPTOM), _route_missing, _target_pod_to_peer_pod),
        Fault("route-wrong-nexthop", "the node's route to a peer's pod subnet goes via an address nobody has",
              _cells(_SYMPTOM), _route_wrong_nexthop, _target_pod_to_peer_pod),
        Fault("blackhole-route", "a blackhole route on the node swallows traffic to a peer's pod",
              _cells(_SYMPTOM), _blackhole_route, _target_pod_to_peer_pod),
        Fault("bgp-peer-down", "the node's BGP session to a peer is shut down",
              _cells(_NO_BGP, calico_bgp=_SYMPTOM, frr=_SYMPTOM), _bgp_peer_down, _target_pod_to_peer_pod),
        Fault("mtu-mismatch", "the node's eth0 MTU drops to 1400 while its peers keep 1500",
              _cells(_SYMPTOM), _mtu_mismatch, _large_peer_pod_to_target_pod),
        Fault("icmp-blocked", "iptables drops ICMP forwarded to the node's pods",
              _cells(_SYMPTOM), _icmp_blocked, _peer_pod_to_target_pod),
        Fault("forward-policy-drop", "the FORWARD policy is DROP and the pod accept rules are gone",
              _cells(_SYMPTOM), _forward_policy_drop, _peer_pod_to_target_pod),
        Fault("overlay-port-blocked", "iptables drops the overlay's packets in INPUT",
              _cells(_NO_TUNNEL, flannel_vxlan=_SYMPTOM, ovs_gre=_USERSPACE, ovs_vxlan=_USERSPACE),
              _overlay_port_blocked, _peer_pod_to_target_pod),
        Fault("pod-traffic-masqueraded", "pod-to-pod traffic leaving the node is masqueraded",
              _cells(Cell(CHECK_ONLY, "echo replies still come back; only the source address the peer pod sees changes")),
              _pod_traffic_masqueraded, _target_pod_to_peer_pod),
        Fault("ip-forward-disabled", "net.ipv4.ip_forward is 0 on the node",
              _cells(_SYMPTOM), _sysctl_fault({"net.ipv4.ip_forward": "0"}), _peer_pod_to_target_pod),
        Fault("rp-filter-strict", "the node gets a second LAN NIC, and reverse-path filtering is strict (rp_filter=1)",
              _cells(Cell(CHECK_ONLY, "strict mode drops only what arrives on the second NIC, and no lab traffic "
                                      "uses it")),
              _rp_filter_strict, _peer_pod_to_target_pod),
        Fault("bridge-nf-disabled", "bridged pod traffic bypasses iptables (bridge-nf-call-iptables=0) while "
              "kube-proxy's KUBE-SERVICES chain exists",
              _cells(Cell(CHECK_ONLY, "the lab runs no kube-proxy: its KUBE-SERVICES chain stays empty, so no "
                                      "bridged packet depends on iptables rules"),
                     calico_bgp=_NO_BRIDGE),
              _bridge_nf_disabled, _peer_pod_to_target_pod),
    )
}  # fmt: skip


def cell(backend: str, fault_id: str) -> Cell:
    """Return one cell of the matrix; raise :class:`LabError` for an unknown fault."""
    if fault_id not in FAULTS:
        raise LabError(f"unknown fault {fault_id!r}; 'netdoctor lab break --list' shows them")
    return FAULTS[fault_id].cells[backend]


def pick_nodes(plan: LabPlan, node: str | None) -> tuple[NodePlan, NodePlan]:
    """Return the node to break (``node``, default the first) and the peer its probe uses."""
    target = plan.node(node) if node else plan.nodes[0]
    peer = plan.peers(target)[0]
    return target, peer


def probe_for(plan: LabPlan, fault_id: str, node: str | None = None) -> Probe:
    """Return the probe that shows ``fault_id``'s symptom when it is applied to ``node``."""
    target, peer = pick_nodes(plan, node)
    return FAULTS[fault_id].probe(plan, target, peer)


def break_fault(state: LabState, fault_id: str, node: str | None = None) -> str:
    """Apply one fault to a running lab, record how to undo it, and return a one-line description."""
    found = cell(state.plan.backend, fault_id)
    if found.kind == NOT_APPLICABLE:
        raise NotApplicable(f"{fault_id} does not apply to {state.plan.backend}: {found.reason}")
    if any(active["fault"] == fault_id for active in state.faults):
        raise LabError(f"{fault_id} is already active; run 'netdoctor lab heal' first")
    target, peer = pick_nodes(state.plan, node)
    fault = FAULTS[fault_id]
    undo = fault.apply(state, target, peer)
    if state.plan.backend in ("calico-bgp", "frr") and not any("wait-bgp" in step or "reset-bgp" in step for step in undo):
        # The BGP daemons may take a moment to re-resolve next hops once the fault is gone.
        undo.append({"wait-bgp": True})
    state.faults.append({"fault": fault_id, "node": target.name, "undo": undo})
    state.save()
    logger.info("lab %s: broke %s on %s", state.name, fault_id, target.name)
    note = f" ({found.reason})" if found.kind == CHECK_ONLY else ""
    return f"broke {fault_id} on {target.name}: {fault.summary}; {found.kind}{note}"


def heal(state: LabState) -> list[str]:
    """Undo every active fault, newest first, and return their ids."""
    healed: list[str] = []
    while state.faults:
        active = state.faults[-1]
        # Each step leaves the state file once it has run, so a heal that failed part way resumes at the failed step.
        while active["undo"]:
            try:
                run_step(state, active["undo"][0], wait=len(state.faults) == 1)
            except LabError as error:
                done = f"; healed before it: {', '.join(healed)}" if healed else ""
                raise LabError(f"healing {active['fault']} on {active['node']} failed: {str(error).rstrip('.')}{done}. "
                               "'netdoctor lab heal' starts again at this step; 'netdoctor lab down' removes "
                               "the lab") from None
            del active["undo"][0]
            state.save()
        state.faults.pop()
        state.save()
        healed.append(f"{active['fault']} on {active['node']}")
        logger.info("lab %s: healed %s on %s", state.name, active["fault"], active["node"])
    return healed


def matrix_rows() -> list[tuple[str, list[Cell]]]:
    """Return the matrix as (fault id, one cell per backend in :data:`BACKENDS` order)."""
    return [(fault.id, [fault.cells[backend] for backend in BACKENDS]) for fault in FAULTS.values()]


def matrix_text() -> str:
    """Return the backend x fault matrix and the reasons behind its check-only and n/a cells."""
    width = max(len(fault_id) for fault_id in FAULTS)
    lines = ["fault".ljust(width) + "  " + "  ".join(backend.ljust(16) for backend in BACKENDS)]
    reasons: dict[str, int] = {}
    for fault_id, cells in matrix_rows():
        texts = []
        for item in cells:
            text = item.kind
            if item.reason:
                number = reasons.setdefault(item.reason, len(reasons) + 1)
                text += f" [{number}]"
            texts.append(text.ljust(16))
        lines.append(fault_id.ljust(width) + "  " + "  ".join(texts))
    lines.append("")
    lines += [f"[{number}] {reason}" for reason, number in reasons.items()]
    return "\n".join(lines)
