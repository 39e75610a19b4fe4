"""Packet filter checks: ICMP blocked on its own, and forwarded pod traffic dropped.

Both walk the captured ``iptables-save`` filter table with
:func:`netdoctor.firewall.evaluate` for packets built from the snapshot: the
node's underlay address, its pod subnet and a peer's pod subnet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from netdoctor.engine import check
from netdoctor.facts import ClusterFacts, NodeFacts, Prefix, cluster_facts
from netdoctor.firewall import Packet, Verdict, evaluate
from netdoctor.model import ClusterSnapshot, Evidence, Finding, Severity
from netdoctor.model.addr import format_ip

#: An address outside the cluster, for a node without a captured peer (TEST-NET-1).
OUTSIDE_ADDRESS = "192.0.2.10"


def _host_in(prefix: Prefix) -> str:
    """Return a pod address inside a pod subnet: the second host, clear of the bridge's usual .1."""
    family, net, length = prefix
    offset = 2 if (32 if family == 4 else 128) - length >= 2 else 0
    return format_ip(family, net + offset)


def _local_addresses(node: NodeFacts) -> frozenset[str]:
    return frozenset(
        address.address for interface in node.node.interfaces or () for address in interface.addresses
    )


def _verdict_evidence(node: str, verdict: Verdict) -> Evidence:
    if verdict.rule is not None:
        return Evidence(node, "iptables", f"-A {verdict.rule.text}", verdict.rule.line)
    return Evidence(node, "iptables", f":{verdict.chain} {verdict.verdict}")


def _decided_by(verdict: Verdict) -> str:
    if verdict.rule is not None:
        return f"'-A {verdict.rule.text}'"
    return f"the {verdict.chain} policy {verdict.verdict}"


@dataclass(frozen=True, slots=True)
class PodPath:
    """Forwarded pod traffic between this node's pods and one peer's pods."""

    peer: str
    local_pod: str
    peer_pod: str
    pod_device: str
    peer_device: str


def pod_paths(facts: ClusterFacts, node: NodeFacts) -> list[PodPath]:
    """Return one forwarding path per device that leads to peers' pods.

    Peers reached through the same device share the verdict in practice, so
    only the first peer per device is evaluated.
    """
    if node.routes is None:
        return []
    own = node.pod_subnets()
    pod_device = node.pod_bridges[0].name if node.pod_bridges else None
    if pod_device is None:
        workloads = sorted(interface.name for interface in node.node.interfaces or () if interface.name.startswith("cali"))
        pod_device = workloads[0] if workloads else None
    if not own or pod_device is None:
        return []
    local_pod = _host_in(own[0].prefix)
    paths: dict[str, PodPath] = {}
    for peer in facts.peers(node.name):
        for subnet in peer.pod_subnets():
            route = node.routes.best(subnet.prefix, skip_default=True)
            if route is None or not route.dev or route.dev == pod_device or route.dev in paths:
                continue
            paths[route.dev] = PodPath(peer.name, local_pod, _host_in(subnet.prefix), pod_device, route.dev)
    return [paths[device] for device in sorted(paths)]


@check("icmp-blocked", title="ICMP blocked where TCP and UDP pass", severity=Severity.WARNING, backends=("any",))
def icmp_blocked(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """ICMP echo or "fragmentation needed" is dropped or rejected by the node's filter rules.

    What it checks:
        On INPUT: an echo request and a "fragmentation needed" error
        (``RELATED``) from a peer's underlay address to the node's underlay
        address, arriving on the underlay interface. Either one meeting an
        ICMP-specific DROP/REJECT, or a catch-all REJECT or DROP policy before
        any ICMP accept, is reported. On FORWARD: the same ICMP packets between
        this node's pods and a peer's pods, reported only when a TCP packet on
        the same path is accepted (a catch-all that blocks every protocol is
        forward-policy-drop).
    Why it matters:
        Path MTU discovery depends on "fragmentation needed" reaching the
        sender; without it, large transfers over the overlay hang. Blocked echo
        makes ping-based health checks and diagnosis report a working path as
        down.
    Known problems:
        Rules using match modules the evaluator does not read (``-m set``,
        ``-m mark``, ...) stop the evaluation and nothing is reported. nftables
        rules outside iptables-save and firewalld zones are not read.
    Example:
        ``node1: ICMP echo-request from 10.0.0.52 to 10.0.0.51 on INPUT is
        REJECT by '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'``.
    Fix safety:
        Adding an ICMP accept rule before the reject is safe; it opens only
        ICMP.
    """
    facts = cluster_facts(snapshot)
    for name, node in sorted(facts.nodes.items()):
        ruleset = node.node.iptables
        if ruleset is None or ruleset.table("filter") is None:
            continue
        yield from _icmp_on_input(facts, node)
        yield from _icmp_on_forward(facts, node)


_ICMP_PACKETS = (("echo-request", 8, 0, "NEW"), ("fragmentation-needed", 3, 4, "RELATED"))


def _icmp_on_input(facts: ClusterFacts, node: NodeFacts) -> Iterator[Finding]:
    assert node.node.iptables is not None
    if not node.underlay_subnets:
        return
    _, cidr, device = node.underlay_subnets[0]
    address = cidr.partition("/")[0]
    source = OUTSIDE_ADDRESS
    for peer in facts.peers(node.name):
        if peer.underlay_subnets:
            source = peer.underlay_subnets[0][1].partition("/")[0]
            break
    local = _local_addresses(node)
    for label, icmp_type, code, state in _ICMP_PACKETS:
        packet = Packet("icmp", source, address, in_interface=device, icmp_type=icmp_type, icmp_code=code,
                        ctstate=state, local_addresses=local)
        verdict = evaluate(node.node.iptables, "INPUT", packet)
        if not verdict.blocks:
            continue
        yield Finding(
            check="icmp-blocked",
            severity=Severity.WARNING,
            nodes=(node.name,),
            summary=f"{node.name}: ICMP {label} from {source} to {address} on INPUT is {verdict.verdict} "
            f"by {_decided_by(verdict)}",
            evidence=(_verdict_evidence(node.name, verdict),),
        )


def _icmp_on_forward(facts: ClusterFacts, node: NodeFacts) -> Iterator[Finding]:
    assert node.node.iptables is not None
    local = _local_addresses(node)
    for path in pod_paths(facts, node):
        tcp = Packet("tcp", path.local_pod, path.peer_pod, path.pod_device, path.peer_device, sport=40000, dport=80,
                     local_addresses=local)
        if evaluate(node.node.iptables, "FORWARD", tcp).verdict != "ACCEPT":
            continue
        for label, icmp_type, code, state in _ICMP_PACKETS:
            packet = replace(tcp, protocol="icmp", sport=None, dport=None, icmp_type=icmp_type, icmp_code=code,
                             ctstate=state)
            verdict = evaluate(node.node.iptables, "FORWARD", packet)
            if not verdict.blocks:
                continue
            yield Finding(
                check="icmp-blocked",
                severity=Severity.WARNING,
                nodes=(node.name,),
                summary=f"{node.name}: forwarded ICMP {label} from {path.local_pod} to {path.peer}'s pod "
                f"{path.peer_pod} is {verdict.verdict} by {_decided_by(verdict)} while TCP on that path is accepted",
                evidence=(_verdict_evidence(node.name, verdict),),
            )


@check("forward-policy-drop", title="Forwarded pod traffic dropped", severity=Severity.ERROR, backends=("any",))
def forward_policy_drop(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """Pod traffic to or from a peer's pods meets a FORWARD DROP policy or catch-all REJECT.

    What it checks:
        A new TCP connection from one of this node's pods (in through its pod
        bridge or ``cali*`` veth) to a pod of each peer (out through the device
        of the node's route to that peer's pod subnet), and the same in the
        other direction, walked through the FORWARD chain of the filter table.
        A DROP or REJECT verdict is reported with the rule or policy that
        decided it.
    Why it matters:
        Docker 1.13 and later set the FORWARD policy to DROP. Unless flannel's
        ``-s/-d POD_NETWORK -j ACCEPT`` rules, kube-proxy's or Calico's rules
        accept pod traffic first, every connection between pods on different
        nodes is dropped while node-to-node traffic works.
    Known problems:
        One peer per outgoing device is evaluated. Rules with match modules the
        evaluator does not read give no verdict and nothing is reported.
        Traffic bridged inside the node (OVS's br0 on docker0) reaches FORWARD
        only with br_netfilter, which is not checked.
    Example:
        ``node1: TCP from pod 10.244.23.2 to node2's pod 10.244.61.2 (in
        docker0, out flannel.1) is DROP by the FORWARD policy DROP``.
    Fix safety:
        Adding ACCEPT rules for the pod network in FORWARD is safe; changing
        the policy to ACCEPT also opens forwarding for non-pod traffic.
    """
    facts = cluster_facts(snapshot)
    for name, node in sorted(facts.nodes.items()):
        ruleset = node.node.iptables
        if ruleset is None or ruleset.table("filter") is None:
            continue
        local = _local_addresses(node)
        for path in pod_paths(facts, node):
            outgoing = Packet("tcp", path.local_pod, path.peer_pod, path.pod_device, path.peer_device, sport=40000,
                              dport=80, local_addresses=local)
            incoming = replace(outgoing, src=path.peer_pod, dst=path.local_pod, in_interface=path.peer_device,
                               out_interface=path.pod_device)
            for packet, direction in ((outgoing, "to"), (incoming, "from")):
                verdict = evaluate(ruleset, "FORWARD", packet)
                if not verdict.blocks:
                    continue
                yield Finding(
                    check="forward-policy-drop",
                    severity=Severity.ERROR,
                    nodes=(name,),
                    summary=f"{name}: TCP {packet.src} -> {packet.dst} ({direction} {path.peer}'s pods, in "
                    f"{packet.in_interface}, out {packet.out_interface}) is {verdict.verdict} by {_decided_by(verdict)}",
                    evidence=(_verdict_evidence(name, verdict),),
                )
