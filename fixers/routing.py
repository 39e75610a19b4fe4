"""Routing fixers: add the route to a peer's pod subnet per backend, remove a blackhole that shadows one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from netdoctor.facts import (
    ClusterFacts,
    NodeFacts,
    cluster_facts,
    make_prefix,
    prefix_contains,
    prefixes_overlap,
)
from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.support import routed_ovs_bridge
from netdoctor.flannel import leases, prefixes
from netdoctor.model import Finding, NodeSnapshot, Route
from netdoctor.model.addr import format_ip
from netdoctor.model.routes import RTNH_F_ONLINK


def peer_address(node: NodeFacts, peer: NodeFacts) -> tuple[str, str] | None:
    """Return the peer's underlay address on a subnet this node shares, with this node's device there."""
    for prefix, _, device in node.underlay_subnets:
        for _, cidr, _ in peer.underlay_subnets:
            address = cidr.partition("/")[0]
            if prefix_contains(prefix, make_prefix(address + ("/32" if ":" not in address else "/128"))):
                return address, device
    return None


def _vtep_mac(context: FixContext, peer: NodeFacts, subnet: str) -> str | None:
    interface = peer.node.interface("flannel.1")
    if interface is not None and interface.mac:
        return interface.mac
    etcd = context.snapshot.etcd
    if etcd is None:
        return None
    found = prefixes(etcd)
    for lease in leases(etcd, found[0]) if found else ():
        if str(lease.subnet) == subnet:
            return lease.vtep_mac
    return None


def _route_step(finding: Finding, node: str, peer: str, subnet: str, params: dict[str, Any], why: str) -> Step:
    preconditions = [Condition("destination-free", {"destination": params["destination"]})]
    if params.get("dev"):
        preconditions.append(Condition("link-present", {"name": params["dev"]}))
    return Step(
        id=f"route-{params['destination']}",
        title=f"Add the route to {peer}'s pod subnet {subnet}",
        safety=Safety.SAFE,
        why=why,
        fixer="add-peer-route",
        check=finding.check,
        action=Operation("route-add", params),
        inverse=Operation("route-del", params),
        preconditions=tuple(preconditions),
        done=Condition("route-present", params),
        verify=f"ip route get {format_ip(4, make_prefix(subnet)[1] + 1)}",
    )


@fixer("add-peer-route", title="Add the missing route to a peer's pod subnet", checks=("route-missing",))
def add_peer_route(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Add the route the backend would have programmed, with the FDB and neighbour entries it needs.

    Safe: the route is new and covers only the peer's pod subnet. Flannel VXLAN
    gets the peer's VTEP neighbour, FDB entry and an onlink route through
    flannel.1; flannel UDP a route through flannel0; OVS the pod network route
    through the pod bridge; static direct routing a route via the peer's
    underlay address. Where BGP owns the routes (Calico, or a node with BIRD or
    FRR sessions), the step is display-only and points at the BGP session,
    because a static route would outlive the block's next move. A route added
    by hand does not survive a reboot: the overlay agent or the routing daemon
    must own it.
    """
    node_name = finding.nodes[0]
    peer_name, subnet = finding.detail("peer") or "", finding.detail("prefix")
    facts = cluster_facts(context.snapshot)
    node, peer = facts.nodes.get(node_name), facts.nodes.get(peer_name)
    if node is None or peer is None or subnet is None:
        return
    backends = _node_backends(context, node_name)
    reach = peer_address(node, peer)
    why = f"Without a route to {subnet}, traffic to {peer_name}'s pods follows the default route and is lost."

    if _through_flannel_vxlan(context, node, backends):
        mac = _vtep_mac(context, peer, subnet)
        if reach is None or mac is None:
            return
        gateway = subnet.partition("/")[0]
        yield NodeStep(node_name, _neigh_step(finding, gateway, mac, peer_name))
        yield NodeStep(node_name, _fdb_step(finding, mac, reach[0], peer_name))
    params = peer_route_params(context, node, peer, subnet)
    if params is None:
        return
    if "calico" in backends or node.node.bgp:
        # A routing daemon owns these routes: a static one would outlive the next move of the block.
        if any(session.daemon == "bird" for session in node.node.bgp or ()) and not _blackhole_overlaps(node, subnet):
            yield NodeStep(node_name, _bird_reload_step(finding, peer_name, subnet, node.node))
        yield NodeStep(node_name, _daemon_route_note(finding, peer_name, subnet, params))
        return
    yield NodeStep(node_name, _route_step(finding, node_name, peer_name, subnet, params, why))
    if "direct-routing" in backends and params.get("gateway"):
        yield NodeStep(node_name, _persist_direct_route(finding, subnet, str(params["gateway"])))


def peer_route_params(context: FixContext, node: NodeFacts, peer: NodeFacts, subnet: str) -> dict[str, Any] | None:
    """Return the ``route-add`` parameters of the route the node's backend programs to a peer's pod subnet.

    Flannel VXLAN routes through flannel.1 to the peer's VTEP address, flannel
    UDP through flannel0, OVS through the pod bridge, Calico IPIP through
    tunl0 and direct routing via the peer's underlay address. None when the
    peer's address on a shared subnet is unknown.
    """
    backends = _node_backends(context, node.name)
    reach = peer_address(node, peer)
    if _through_flannel_vxlan(context, node, backends):
        return {"destination": subnet, "gateway": subnet.partition("/")[0], "dev": "flannel.1", "onlink": True}
    if "ovs" in backends and not context.backends(node.name):
        # The node's OVS bridge is gone: the OVS agent re-creates it with its flows, and the routes through it.
        return None
    if "flannel-udp" in backends:
        return {"destination": subnet, "dev": "flannel0"}
    if "ovs" in backends and (routed := _ovs_internal_route(context, node, peer, subnet)) is not None:
        return routed
    if "ovs" in backends and node.pod_bridges:
        return {"destination": subnet, "dev": node.pod_bridges[0].name}
    if reach is None:
        return None
    tunnel = node.node.interface("tunl0")
    if "calico" in backends and tunnel is not None and tunnel.addresses:
        return {"destination": subnet, "gateway": reach[0], "dev": "tunl0", "onlink": True}
    return {"destination": subnet, "gateway": reach[0], "dev": reach[1]}


def _node_backends(context: FixContext, node: str) -> tuple[str, ...]:
    """Return the node's detected backends or, when none was detected, the backends that all other nodes share.

    A node whose overlay device is gone loses the routes through it too, so
    nothing on the node shows its backend any more. Its peers still do.
    """
    found = context.backends(node)
    if found:
        return found
    others = {tuple(sorted(backends)) for name, backends in context.report.backends.items() if name != node and backends}
    return others.pop() if len(others) == 1 else ()


def _through_flannel_vxlan(context: FixContext, node: NodeFacts, backends: tuple[str, ...]) -> bool:
    """Tell whether the node's routes to peers go through flannel.1.

    On a node whose backend was not detected, flannel.1 may be missing: the
    routes then depend on the step that re-creates it, and each one requires
    the device when it runs.
    """
    return "flannel-vxlan" in backends and (node.node.interface("flannel.1") is not None
                                            or not context.backends(node.name))


def _ovs_internal_route(context: FixContext, node: NodeFacts, peer: NodeFacts, subnet: str) -> dict[str, Any] | None:
    """Return the route through an OVS bridge's internal port when the nodes route their peers that way.

    In that layout the internal port is a routed hop: each peer's pod subnet
    goes via the peer's pod bridge address, onlink, and OpenFlow rules send it
    to that peer's tunnel. A route through the local pod bridge would never
    reach the tunnels. None when no node routes through an OVS bridge that
    this node has, or the peer's pod bridge address is unknown.
    """
    device = routed_ovs_bridge(context, node.name)
    gateway = next((bridge.cidr.partition("/")[0] for bridge in peer.pod_bridges
                    if prefix_contains(make_prefix(subnet), make_prefix(bridge.cidr.partition("/")[0] + "/32"))), None)
    if device is None or gateway is None:
        return None
    return {"destination": subnet, "gateway": gateway, "dev": device, "onlink": True}


def _neigh_step(finding: Finding, address: str, mac: str, peer: str) -> Step:
    params = {"address": address, "lladdr": mac, "dev": "flannel.1"}
    return Step(
        id=f"neigh-{address}", title=f"Add the neighbour entry for {peer}'s VTEP {address}", safety=Safety.SAFE,
        why="flannel.1 runs without learning, so the VTEP address must resolve through a permanent entry.",
        fixer="add-peer-route", check=finding.check,
        action=Operation("neigh-replace", params), inverse=Operation("neigh-del", params),
        preconditions=(Condition("link-present", {"name": "flannel.1"}),),
        done=Condition("neigh-present", params), verify=f"ip neigh show dev flannel.1 {address}",
    )


def _fdb_step(finding: Finding, mac: str, remote: str, peer: str) -> Step:
    params = {"mac": mac, "dev": "flannel.1", "dst": remote}
    return Step(
        id=f"fdb-{mac}", title=f"Add the FDB entry that sends {peer}'s VTEP MAC to {remote}", safety=Safety.SAFE,
        why="Without the FDB entry flannel.1 does not know which underlay address to encapsulate to.",
        fixer="add-peer-route", check=finding.check,
        action=Operation("fdb-append", params), inverse=Operation("fdb-del", params),
        preconditions=(Condition("link-present", {"name": "flannel.1"}),),
        done=Condition("fdb-present", params), verify=f"bridge fdb show dev flannel.1 | grep {mac}",
    )


def _blackhole_overlaps(node: NodeFacts, subnet: str) -> bool:
    """Tell whether a blackhole route overlaps the subnet: BIRD may own it, and a reload would export it again."""
    wanted = make_prefix(subnet)
    for route in node.node.routes.main() if node.node.routes is not None else ():
        if route.type_name != "blackhole":
            continue
        found = make_prefix(route.destination)
        if prefix_contains(found, wanted) or prefix_contains(wanted, found):
            return True
    return False


def _bird_reload_step(finding: Finding, peer: str, subnet: str, node: NodeSnapshot) -> Step:
    from netdoctor.fixers.bgp import bird_socket

    socket = bird_socket(node)
    params = {"protocol": "all", "socket": socket}
    return Step(
        id=f"bird-reload-{subnet}", title=f"Make BIRD export its routes again, {peer}'s block {subnet} among them",
        safety=Safety.SAFE,
        why="BIRD does not notice a route deleted from the kernel until its next scan; 'reload out' sends every "
            "route it holds to the kernel and its peers again without resetting a session.",
        fixer="add-peer-route", check=finding.check,
        action=Operation("bird-reload-out", params),
        done=Condition("route-present", {"destination": subnet}), verify=f"ip route show {subnet}",
    )


def _daemon_route_note(finding: Finding, peer: str, subnet: str, params: dict[str, Any]) -> Step:
    command = f"ip route add {subnet}"
    if params.get("gateway"):
        command += f" via {params['gateway']}"
    if params.get("dev"):
        command += f" dev {params['dev']}"
    if params.get("onlink"):
        command += " onlink"
    return Step(
        id=f"route-{subnet}",
        title=f"Restore the BGP route to {peer}'s pod block {subnet}",
        safety=Safety.DISPLAY_ONLY,
        why=(
            "BGP (BIRD or FRR) programs the routes to peers' blocks on this node: once the session to the peer "
            "is Established and no local route shadows the block, the daemon installs the route again "
            "('birdc show route for ADDRESS all' or 'vtysh -c \"show ip bgp ADDRESS\"' shows why it does not). "
            "A static route added by hand would take precedence over BGP and stay behind when the block moves."
        ),
        fixer="add-peer-route",
        check=finding.check,
        display=(
            f"# Only as a stop-gap while BGP is being repaired, and remove it afterwards: {command}",
        ),
    )


def _persist_direct_route(finding: Finding, subnet: str, gateway: str) -> Step:
    return Step(
        id=f"persist-route-{subnet}", title=f"Make the route to {subnet} permanent in the routing daemon",
        safety=Safety.DISPLAY_ONLY,
        why="A route added with ip route is lost at reboot; the node's FRR/Quagga or BIRD config must carry it.",
        fixer="add-peer-route", check=finding.check,
        display=(
            f"# FRR or Quagga: vtysh -c 'configure terminal' -c 'ip route {subnet} {gateway}' -c 'write memory'",
            f"# BIRD: in a 'protocol static' block add: route {subnet} via {gateway};",
        ),
    )


def route_params(route: Route) -> dict[str, Any]:
    """Return the ``route-*`` operation parameters that describe ``route`` exactly."""
    params: dict[str, Any] = {"destination": route.destination, "type": route.type_name}
    if route.via:
        params["gateway"] = route.via
    if route.dev:
        params["dev"] = route.dev
    if route.protocol not in ("boot", "unspec"):
        params["protocol"] = route.protocol
    if route.metric:
        params["metric"] = route.metric
    if route.flags & RTNH_F_ONLINK:
        params["onlink"] = True
    return params


@fixer("remove-shadowing-blackhole", title="Remove a discard route that shadows a peer's pods",
       checks=("blackhole-route",))
def remove_shadowing_blackhole(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Delete the one discard route named in the finding, identified by all of its attributes.

    Disruptive: deleting a route changes where traffic goes at once. Here the
    traffic is already discarded, but a wrong diagnosis would cut a path, so
    the step asks first. The route's exact type, protocol and metric are kept
    for undo.
    """
    node_name = finding.nodes[0]
    item = finding.detail("route")
    if item is None:
        return
    try:
        node = context.snapshot.node(node_name)
    except KeyError:
        return
    route = next((route for route in node.routes.main() if route.describe() == item), None) if node.routes else None
    if route is None:
        return
    params = route_params(route)
    yield NodeStep(node_name, Step(
        id=f"route-del-{route.destination}",
        title=f"Remove the stale {route.type_name} route {route.destination}",
        safety=Safety.DISRUPTIVE,
        why=f"'{item}' is the most specific route for another node's pods and discards their traffic; removing a "
            "route takes effect at once, so it is applied only after confirmation.",
        fixer="remove-shadowing-blackhole",
        check=finding.check,
        action=Operation("route-del", params),
        inverse=Operation("route-add", params),
        preconditions=(Condition("route-present", params),),
        done=Condition("route-absent", params),
        verify=f"ip route show {route.destination}",
    ))


@fixer("replace-wrong-route", title="Replace a pod subnet route that leads to the wrong node or device",
       checks=("route-wrong-nexthop",))
def replace_wrong_route(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Replace the route with the one the backend programs: via the right peer, or onto the node's own pod bridge.

    Disruptive: ``ip route replace`` moves the traffic at once. It is already
    lost, but a wrong diagnosis would cut a working path, so the step asks
    first. The old route's exact attributes are kept for undo, and its metric
    is kept so that the replace changes this route and no other. A subnet
    that more than one node claims gets no step: either next hop is wrong for
    one of them, and bridge-subnet-overlap's remedy comes first. A route that
    FRR's zebra installed (``proto bgp``, ``ospf`` and the like) gets a
    display-only step instead: the daemon chose that next hop, and a route
    written over it would win over the daemon's routes from then on.
    """
    node_name = finding.nodes[0]
    described, prefix = finding.detail("route"), finding.detail("prefix")
    facts = cluster_facts(context.snapshot)
    node = facts.nodes.get(node_name)
    if described is None or prefix is None or node is None or node.routes is None:
        return
    if len(_claimants(facts, prefix)) > 1:
        return
    old = next((route for route in node.node.routes.main() if route.describe() == described), None) \
        if node.node.routes is not None else None
    if old is None:
        return
    peer_name, dev = finding.detail("peer"), finding.detail("dev")
    if dev is not None:
        params: dict[str, Any] | None = {"destination": prefix, "dev": dev}
        target = f"through its own bridge {dev}"
    else:
        peer = facts.nodes.get(peer_name or "")
        params = peer_route_params(context, node, peer, prefix) if peer is not None else None
        target = f"to {peer_name}"
    if params is None:
        return
    previous = route_params(old)
    if old.destination != prefix:
        return
    if old.protocol in ZEBRA_PROTOCOLS:
        yield NodeStep(node_name, _zebra_route_note(finding, old, params, target))
        return
    if previous.get("metric"):
        params["metric"] = previous["metric"]
    yield NodeStep(node_name, Step(
        id=f"route-replace-{prefix}", title=f"Route {prefix} {target}", safety=Safety.DISRUPTIVE,
        why=f"'{described}' sends the traffic for {prefix} to the wrong place; replacing a route moves traffic at "
            "once, so it is applied only after confirmation.",
        fixer="replace-wrong-route", check=finding.check,
        action=Operation("route-replace", {**params, "previous": previous}),
        inverse=Operation("route-replace", previous),
        preconditions=(Condition("route-present", previous),),
        done=Condition("route-present", params), verify=f"ip route show {prefix}",
    ))


#: Route protocols, as iproute2 names them, of routes that FRR's zebra installs for its routing daemons.
ZEBRA_PROTOCOLS = frozenset({"bgp", "isis", "ospf", "rip", "ripng", "eigrp", "babel", "openfabric", "zebra"})


def _zebra_route_note(finding: Finding, old: Route, params: dict[str, Any], target: str) -> Step:
    """Return the display-only step for a wrong route that zebra installed: the routing daemon chose that next hop.

    zebra keeps its routes in its own table. A route written over one with
    ``ip route replace`` is a kernel route to zebra, which prefers it to any
    daemon's route and then never installs the daemon's route again.
    """
    gateway = params.get("gateway")
    show = f"vtysh -c 'show ip route {old.destination}'"
    bgp = f"vtysh -c 'show bgp ipv4 unicast {old.destination}'"
    display = [f"{show}   # which daemon chose next hop {old.via or old.dev}, and from which peer"]
    if old.protocol == "bgp":
        display += [f"{bgp}   # the next hop the peer announced, and the route-map that set it",
                    "# after correcting the peer's announcement or the route-map:"]
        display.append(f"vtysh -c 'clear bgp ipv4 unicast {gateway} soft in'" if gateway
                       else "vtysh -c 'clear bgp ipv4 unicast * soft in'")
    return Step(
        id=f"route-replace-{old.destination}", title=f"Make the routing daemon route {old.destination} {target}",
        safety=Safety.DISPLAY_ONLY,
        why=(f"'{finding.detail('route')}' was installed by FRR's zebra for {old.protocol}, so the daemon chose the "
             "wrong next hop: its configuration or a peer's announcement must change. A route written over it with "
             "ip route is a kernel route to zebra, which prefers it to the daemon's routes and keeps it after the "
             "daemon's next change."),
        fixer="replace-wrong-route", check=finding.check, display=tuple(display),
    )


def _claimants(facts: ClusterFacts, prefix: str) -> set[str]:
    """Return the nodes that have a pod subnet overlapping ``prefix``."""
    wanted = make_prefix(prefix)
    return {item.name for item in facts.nodes.values()
            if any(prefixes_overlap(subnet.prefix, wanted) for subnet in item.pod_subnets())}
