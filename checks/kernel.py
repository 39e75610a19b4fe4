"""Kernel parameter checks: IP forwarding, strict reverse-path filtering and bridge netfilter."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.backends import detect_backends
from netdoctor.engine import check
from netdoctor.facts import (
    ClusterFacts,
    NodeFacts,
    Prefix,
    cluster_facts,
    is_overlay_interface,
    prefix_text,
)
from netdoctor.model import ClusterSnapshot, Evidence, Finding, NodeSnapshot, Severity, make_details
from netdoctor.model.addr import format_ip

#: Chain name prefixes of kube-proxy's service rules and of network policy implementations
#: (kube-proxy, kube-router, Calico, Weave Net).
KUBE_CHAIN_PREFIXES = ("KUBE-SERVICES", "KUBE-NWPLCY-", "KUBE-POD-FW-", "KUBE-ROUTER-", "cali-", "WEAVE-NPC")


def runs_pod_network(facts: ClusterFacts, node: NodeFacts, backends: tuple[str, ...]) -> str | None:
    """Return why a node carries pod traffic (a backend, a pod bridge with ports, flannel data), or None."""
    if backends:
        return f"backend {', '.join(backends)}"
    for bridge in node.pod_bridges:
        if bridge.ports:
            return f"pod bridge {bridge.name} with ports"
    if node.node.flannel_env is not None:
        return "flannel subnet.env"
    if node.calico_blocks:
        return "Calico block"
    if any(owner == node.name for _, _, owner in facts.flannel_leases):
        return "flannel lease"
    return None


@check("ip-forward-disabled", title="IP forwarding is off", severity=Severity.ERROR, backends=("any",))
def ip_forward_disabled(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """The kernel does not forward IPv4 packets between interfaces.

    What it checks:
        ``net.ipv4.ip_forward`` on every node whose sysctls were captured and
        that runs a pod network: a detected backend, a pod bridge with ports,
        flannel's ``subnet.env`` or lease, or a Calico block. A node without
        captured sysctls, or a plain machine without a pod network (where 0 is
        the normal value), is not judged.
    Why it matters:
        Every pod network design routes pod traffic through the node: from the
        pod bridge or ``cali*`` veth to the overlay device or the underlay. With
        forwarding off the kernel drops those packets, so the node's pods lose
        all off-node connectivity while the node itself still works. The value
        resets to 0 on reboot unless a sysctl file sets it.
    Known problems:
        A node whose pod network netdoctor cannot see (no overlay device, no
        pod bridge ports, no flannel or Calico data) is not reported even when
        it needs forwarding.
    Example:
        ``node2: net.ipv4.ip_forward = 0``.
    Fix safety:
        Setting ``net.ipv4.ip_forward = 1`` is safe; on some kernels writing it
        resets other per-interface settings, and it must also go into
        ``/etc/sysctl.d`` to survive a reboot.
    """
    facts = cluster_facts(snapshot)
    backends = detect_backends(snapshot)
    for node in snapshot.nodes:
        if node.sysctls is None:
            continue
        value = node.sysctls.get("net.ipv4.ip_forward")
        if value is None or value.strip() != "0":
            continue
        reason = runs_pod_network(facts, facts.nodes[node.name], backends.get(node.name, ()))
        if reason is None:
            continue
        yield Finding(
            check="ip-forward-disabled",
            severity=Severity.ERROR,
            nodes=(node.name,),
            summary=f"{node.name}: net.ipv4.ip_forward = 0, so the node does not route pod traffic",
            evidence=(Evidence(node.name, "sysctls", "net.ipv4.ip_forward = 0"),
                      Evidence(node.name, "pod network", reason)),
            details=make_details(sysctl="net.ipv4.ip_forward", value="0", expected="1"),
        )


def _sysctl_int(node: NodeSnapshot, key: str) -> int | None:
    assert node.sysctls is not None
    value = node.sysctls.get(key)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _any_strict_rp_filter(node: NodeSnapshot) -> bool:
    """Tell whether some ``rp_filter`` key is 1, without which no interface is in strict mode."""
    assert node.sysctls is not None
    return any(
        key.startswith("net.ipv4.conf.") and key.endswith(".rp_filter") and value.strip() == "1"
        for key, value in node.sysctls.values
    )


def rp_filter_mode(node: NodeSnapshot, interface: str) -> tuple[int, str] | None:
    """Return the effective ``rp_filter`` of an interface, max(conf.all, conf.IFACE), and the key that set it.

    ``sysctl`` prints a dot in an interface name as ``/`` (``flannel/1``); both spellings are read.
    Returns None when neither key was captured.
    """
    if node.sysctls is None:
        return None
    overall = _sysctl_int(node, "net.ipv4.conf.all.rp_filter")
    own_key = f"net.ipv4.conf.{interface.replace('.', '/')}.rp_filter"
    own = _sysctl_int(node, own_key)
    if own is None:
        own_key = f"net.ipv4.conf.{interface}.rp_filter"
        own = _sysctl_int(node, own_key)
    if overall is None and own is None:
        return None
    if own is None or (overall is not None and overall > own):
        return overall or 0, "net.ipv4.conf.all.rp_filter"
    return own, own_key


def _arrival_interface(node: NodeFacts, peer_route_dev: str, gateway: str | None) -> str | None:
    """Return this node's interface where a peer's packets arrive, from the peer's route towards this node."""
    own = {interface.name: interface for interface in node.node.interfaces or ()}
    peer_device = own.get(peer_route_dev)
    if peer_route_dev in own and peer_device is not None and is_overlay_interface(peer_device):
        return peer_route_dev
    if peer_route_dev.startswith(("flannel", "tunl0", "vxlan.calico")):
        return peer_route_dev if peer_route_dev in own else None
    if gateway is None:
        return None
    for interface in node.node.interfaces or ():
        if any(address.address == gateway for address in interface.addresses):
            return interface.name
    return None


def _asymmetric_paths(facts: ClusterFacts, node: NodeFacts) -> Iterator[tuple[str, Prefix, str, str]]:
    """Yield ``(arrival interface, source prefix, return device, why)`` where the route back leaves elsewhere."""
    if node.routes is None:
        return

    # Two interfaces with addresses on one subnet: the connected route leaves by one of them only.
    seen: dict[Prefix, str] = {}
    for prefix, _, device in node.underlay_subnets:
        if prefix in seen and seen[prefix] != device:
            for shared in (seen[prefix], device):
                route = node.routes.best(prefix)
                if route is not None and route.dev and route.dev != shared:
                    yield shared, prefix, route.dev, f"{seen[prefix]} and {device} share {prefix_text(prefix)}"
        seen.setdefault(prefix, device)

    # Pod traffic from each peer: where the peer's route to this node's pods delivers it, and the route back.
    own_subnets = [subnet.prefix for subnet in node.pod_subnets()]
    # Routes are read as row numbers and single columns: this runs for every pair of nodes.
    back_devices = node.routes.cells("dev")
    arrivals: dict[tuple[str, int, int], str | None] = {}
    for peer in facts.peers(node.name):
        if peer.routes is None:
            continue
        for own in own_subnets:
            row = peer.routes.best_row(own, skip_default=True)
            if row is None:
                continue
            devices = peer.routes.cells("dev")
            if not devices[row]:
                continue
            gateways = peer.routes.cells("gateway")
            families = peer.routes.cells("family")
            key = (devices[row], families[row], gateways[row])
            if key not in arrivals:
                gateway = format_ip(families[row], gateways[row]) if gateways[row] else None
                arrivals[key] = _arrival_interface(node, devices[row], gateway)
            arrival = arrivals[key]
            if arrival is None:
                continue
            for subnet in peer.pod_subnets():
                back = node.routes.best_row(subnet.prefix)
                if back is None or not back_devices[back] or back_devices[back] == arrival:
                    continue
                yield arrival, subnet.prefix, back_devices[back], f"{peer.name}'s pods reach this node through {arrival}"


@check("rp-filter-strict", title="Strict reverse-path filter drops asymmetric traffic", severity=Severity.ERROR,
       backends=("any",))
def rp_filter_strict(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """Strict reverse-path filtering (``rp_filter = 1``) drops packets whose route back leaves by another interface.

    What it checks:
        For every interface where packets arrive, the effective
        ``rp_filter``, which the kernel takes as the maximum of
        ``net.ipv4.conf.all.rp_filter`` and ``net.ipv4.conf.IFACE.rp_filter``.
        Where it is 1 (strict), it compares the interface with the device of
        the node's best route back to the sources that arrive there: hosts on
        a subnet that two of the node's interfaces share, and each peer's pods,
        which arrive where the peer's route to this node's pod subnet delivers
        them (the overlay device for flannel and Calico tunnels, or the
        interface that holds the peer's gateway address for direct routing).
    Why it matters:
        In strict mode the kernel drops a packet when the route back to its
        source would not leave by the interface it came in on. With two NICs
        on one subnet, or pod traffic that arrives on one device while the
        route back to its source uses another, packets vanish without any
        counter in iptables.
    Known problems:
        Only the paths the snapshot shows are evaluated: policy routing rules
        (``ip rule``) and per-source routes are not read, so a node that fixes
        the asymmetry with a second routing table is still reported. Loose
        mode (2) is never reported.
    Example:
        ``node1: rp_filter = 1 on eth1 (net.ipv4.conf.all.rp_filter) but the
        route back to 192.0.2.0/24 leaves by eth0 (eth0 and eth1 share
        192.0.2.0/24)``.
    Fix safety:
        Setting ``rp_filter`` to 2 (loose) on the affected interface is safe;
        it still drops packets from sources with no route at all. Setting it
        to 0 disables the check on that interface.
    """
    facts = cluster_facts(snapshot)
    for name, node in sorted(facts.nodes.items()):
        if node.node.sysctls is None or not _any_strict_rp_filter(node.node):
            continue
        reported: set[tuple[str, Prefix]] = set()
        for arrival, source, back, why in _asymmetric_paths(facts, node):
            mode = rp_filter_mode(node.node, arrival)
            if mode is None or mode[0] != 1 or (arrival, source) in reported:
                continue
            reported.add((arrival, source))
            yield Finding(
                check="rp-filter-strict",
                severity=Severity.ERROR,
                nodes=(name,),
                summary=f"{name}: rp_filter = 1 on {arrival} ({mode[1]}) but the route back to "
                f"{prefix_text(source)} leaves by {back} ({why})",
                evidence=(Evidence(name, "sysctls", f"{mode[1]} = 1"),),
                details=make_details(
                    interface=arrival, sysctl=f"net.ipv4.conf.{arrival}.rp_filter", decided_by=mode[1], value="1",
                    expected="2", prefix=prefix_text(source), route_dev=back,
                ),
            )


@check("bridge-nf-disabled", title="Bridged pod traffic bypasses iptables", severity=Severity.ERROR,
       backends=("any",))
def bridge_nf_disabled(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """``net.bridge.bridge-nf-call-iptables = 0`` on a node whose pods sit on a Linux bridge and rely on iptables.

    What it checks:
        Nodes whose pod bridge (docker0, cni0, cbr0) has ports and whose
        iptables has kube-proxy's ``KUBE-SERVICES`` chain or network policy
        chains (``KUBE-NWPLCY-*``, ``KUBE-POD-FW-*``, ``cali-*``,
        ``WEAVE-NPC*``), with ``net.bridge.bridge-nf-call-iptables`` captured
        as 0. An absent key (``br_netfilter`` not loaded, or not captured) is
        unknown and not reported.
    Why it matters:
        Traffic between two pods on the same bridge is switched, not routed.
        Without bridge netfilter it never reaches iptables, so a pod that
        calls a service IP whose endpoint is on the same node gets a reply
        from the pod address it did not call, and the connection fails;
        network policies are not enforced between those pods either.
    Known problems:
        A node that loads ``br_netfilter`` after the capture, or sets the key
        only in a file under ``/etc/sysctl.d``, is judged by the captured
        value.
    Example:
        ``node1: net.bridge.bridge-nf-call-iptables = 0 while pods on cni0
        depend on iptables chain KUBE-SERVICES``.
    Fix safety:
        Loading ``br_netfilter`` and setting the key to 1 is safe for pod
        traffic; it also sends other bridged traffic on the node through
        iptables, which may meet rules written for routed traffic.
    """
    facts = cluster_facts(snapshot)
    for name, node in sorted(facts.nodes.items()):
        sysctls = node.node.sysctls
        ruleset = node.node.iptables
        if sysctls is None or ruleset is None:
            continue
        value = sysctls.get("net.bridge.bridge-nf-call-iptables")
        if value is None or value.strip() != "0":
            continue
        bridges = [bridge.name for bridge in node.pod_bridges if bridge.ports]
        if not bridges:
            continue
        chains = sorted({
            chain.name for table in ruleset.tables for chain in table.chains if chain.name.startswith(KUBE_CHAIN_PREFIXES)
        })
        if not chains:
            continue
        yield Finding(
            check="bridge-nf-disabled",
            severity=Severity.ERROR,
            nodes=(name,),
            summary=f"{name}: net.bridge.bridge-nf-call-iptables = 0 while pods on {', '.join(bridges)} depend on "
            f"iptables chain {chains[0]}",
            evidence=(Evidence(name, "sysctls", "net.bridge.bridge-nf-call-iptables = 0"),
                      Evidence(name, "iptables", f":{chains[0]}")),
            details=make_details(
                sysctl="net.bridge.bridge-nf-call-iptables", value="0", expected="1", bridges=",".join(bridges),
                chain=chains[0],
            ),
        )
