"""Packet filter fixers: one targeted rule before the rule that blocks or rewrites, or one firewalld entry.

No fixer here flushes a chain, changes a policy or deletes a rule: each
inserts one rule, and undo deletes exactly that rule by its full text, so
Docker's, kube-proxy's and Calico's rules stay as they are. Every fixer reads
the chain, rule, port and addresses from the finding's details.
"""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.facts import cluster_facts, prefix_contains, prefix_text
from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.support import accept_step, pod_network_pairs, pod_networks
from netdoctor.model import Finding
from netdoctor.model.addr import AddressError, parse_ip

#: ICMP type labels as the icmp-blocked check names them.
ICMP_LABELS = {"8": "echo-request", "0": "echo-reply", "3/4": "fragmentation-needed"}


@fixer("accept-icmp", title="Accept the blocked ICMP type before the blocking rule", checks=("icmp-blocked",))
def accept_icmp(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Insert one ``-p icmp --icmp-type T -j ACCEPT`` rule right before the rule that blocks it.

    Safe: it opens one ICMP type only. On INPUT the rule is limited to the
    underlay interface; on FORWARD to traffic between pod network addresses.
    A finding decided by firewalld gets no step here. When the pod network is
    several prefixes, the FORWARD rule is one rule per (source, destination) pair.
    """
    node = finding.nodes[0]
    icmp_type = finding.detail("icmp_type")
    if icmp_type is None:
        return
    label = ICMP_LABELS.get(icmp_type, f"type {icmp_type}")
    forwarded = finding.detail("direction") != "input"
    step_id = f"accept-icmp-{'forward' if forwarded else 'input'}-{icmp_type.replace('/', '-')}"
    if forwarded:
        pairs = pod_network_pairs(pod_networks(context))
        matches = [(f"-s {source} -d {destination} ", _pair_id(step_id, source, destination, len(pairs)))
                   for source, destination in pairs] or [("", step_id)]
        scope = "forwarded between pods"
    else:
        device = finding.detail("in_interface")
        matches = [(f"-i {device} " if device else "", step_id)]
        scope = f"arriving on {device}" if device else "arriving at the node"
    why = (f"ICMP {label} {scope} is dropped, which breaks "
           + ("path MTU discovery" if icmp_type == "3/4" else "ping-based health checks and diagnosis")
           + "; only this ICMP type is opened.")
    for where, match_id in matches:
        step = accept_step(
            finding, context, node,
            fixer_id="accept-icmp",
            step_id=match_id,
            title=f"Accept ICMP {label} {scope}" + (f" ({where.strip()})" if len(matches) > 1 else ""),
            why=why,
            rule=f"{where}-p icmp -m icmp --icmp-type {icmp_type} -m comment --comment netdoctor-accept-icmp -j ACCEPT",
        )
        if step is not None:
            yield NodeStep(node, step)


def _pair_id(step_id: str, source: str, destination: str, count: int) -> str:
    """Return the step id of one (source, destination) rule: ``step_id`` itself when it is the only one."""
    return step_id if count == 1 else f"{step_id}-{source}-{destination}"


@fixer("accept-pod-forward", title="Accept forwarded pod network traffic before the blocking rule",
       checks=("forward-policy-drop",))
def accept_pod_forward(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Insert ``-s POD_NETWORK -j ACCEPT`` and ``-d POD_NETWORK -j ACCEPT`` before the rule or policy that drops.

    Safe: these are the rules flanneld adds itself; they open forwarding for
    pod network addresses only, and the chain's policy stays DROP for the rest.
    Without a configured pod network, each prefix of the set that covers
    exactly the nodes' pod subnets gets its own pair of rules.
    """
    node = finding.nodes[0]
    networks = pod_networks(context)
    for network in networks:
        for direction, option in (("from", "-s"), ("to", "-d")):
            step_id = f"accept-pod-forward-{direction}"
            step = accept_step(
                finding, context, node,
                fixer_id="accept-pod-forward",
                step_id=step_id if len(networks) == 1 else f"{step_id}-{network}",
                title=f"Accept forwarded traffic {direction} the pod network {network}",
                why="The FORWARD chain drops traffic between pods on different nodes; this accepts the pod "
                    "network only.",
                rule=f"{option} {network} -m comment --comment netdoctor-pod-forward -j ACCEPT",
            )
            if step is not None:
                yield NodeStep(node, step)


def _underlay_subnet(context: FixContext, node: str, device: str | None, peer: str | None) -> str | None:
    """Return the node's underlay subnet on ``device`` that contains the peer's address, or the first on that device."""
    facts = cluster_facts(context.snapshot).nodes.get(node)
    if facts is None:
        return None
    candidates = [prefix for prefix, _, name in facts.underlay_subnets if device is None or name == device]
    try:
        value = parse_ip(peer)[1] if peer else None
    except AddressError:
        value = None
    for prefix in candidates:
        if value is not None and prefix[0] == 4 and prefix_contains(prefix, (4, value, 32)):
            return prefix_text(prefix)
    return prefix_text(candidates[0]) if candidates else None


@fixer("accept-overlay-port", title="Accept the overlay's port or protocol from the peers' underlay subnet",
       checks=("overlay-port-blocked",))
def accept_overlay_port(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Insert one ACCEPT for the overlay's UDP/TCP port or IP protocol from the underlay subnet, or open it in firewalld.

    Safe: it accepts only the encapsulation the overlay uses and only from the
    subnet the peers share with the node. With firewalld, the port or protocol
    is added to the zone that applies to the underlay interface, at runtime and
    permanently (firewalld writes the permanent zone under its configuration
    directory, which for a lab node lies under the node's root).
    """
    node = finding.nodes[0]
    protocol, port = finding.detail("protocol"), finding.detail("port")
    if protocol is None:
        return
    label = f"{protocol}/{port}" if port else f"IP protocol {protocol}"
    blocked = "drops" if finding.detail("verdict") == "DROP" else "rejects"
    why = (f"Peers send {label} to this node for the overlay ({finding.detail('reason') or 'overlay traffic'}); "
           f"the filter {blocked} it, so every pod path between nodes breaks.")
    zone = finding.detail("firewalld_zone")
    if finding.detail("chain") is None and zone is not None:
        element, value = ("port", f"{port}/{protocol}") if port else ("protocol", protocol)
        params = {"zone": zone, "element": element, "value": value}
        yield NodeStep(node, Step(
            id=f"firewalld-{zone}-{value.replace('/', '-')}", title=f"Open {label} in firewalld zone {zone}",
            safety=Safety.SAFE, why=why, fixer="accept-overlay-port", check=finding.check,
            action=Operation("firewalld-add", params), inverse=Operation("firewalld-remove", params),
            done=Condition("firewalld-zone-has", params),
            verify=f"firewall-cmd --zone={zone} --list-all",
        ))
        return
    subnet = _underlay_subnet(context, node, finding.detail("in_interface"), finding.detail("peer_underlay"))
    source = f"-s {subnet} " if subnet else ""
    if port:
        match = f"-p {protocol} -m {protocol} --dport {port}"
    else:
        match = f"-p {protocol}"
    step = accept_step(
        finding, context, node,
        fixer_id="accept-overlay-port",
        step_id=f"accept-overlay-{protocol}-{port or 'any'}",
        title=f"Accept {label} from {subnet or 'the peers'} before the rule that blocks it",
        why=why,
        rule=f"{source}{match} -m comment --comment netdoctor-overlay -j ACCEPT",
    )
    if step is not None:
        yield NodeStep(node, step)


#: The nat table's built-in chains, where RETURN applies the chain's policy and so ends the walk.
_BUILTIN_NAT_CHAINS = frozenset({"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"})


@fixer("return-before-masquerade", title="Exempt pod-to-pod traffic from masquerading",
       checks=("pod-traffic-masqueraded",))
def return_before_masquerade(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Insert ``-s POD_NETWORK -d POD_NETWORK -j RETURN`` in nat POSTROUTING before the masquerading rule.

    When that rule is in a chain that POSTROUTING jumps to, the inserted rule
    goes there and ends with ``-j ACCEPT`` instead.

    Safe: traffic to the outside is still masqueraded; only packets between
    pod addresses keep their source, as flanneld's ``--ip-masq`` rules do. A
    finding from a firewalld zone with ``masquerade: yes`` gets a display-only
    step, because removing masquerade from a zone also stops it for traffic to
    the outside.
    """
    node = finding.nodes[0]
    zone = finding.detail("firewalld_zone")
    if finding.detail("chain") is None and zone is not None:
        yield NodeStep(node, Step(
            id=f"firewalld-masquerade-{zone}", title=f"Exempt the pod network from masquerading in zone {zone}",
            safety=Safety.DISPLAY_ONLY,
            why=f"firewalld zone {zone} masquerades everything that leaves by {finding.detail('out_interface')}.",
            fixer="return-before-masquerade", check=finding.check,
            display=(
                f"# firewall-cmd --zone={zone} --remove-masquerade",
                f"# firewall-cmd --permanent --zone={zone} --remove-masquerade",
                "# then masquerade only traffic that leaves the pod network, e.g. with flanneld --ip-masq",
            ),
        ))
        return
    pairs = pod_network_pairs(pod_networks(context))
    # RETURN from a chain that POSTROUTING jumps to would go back to POSTROUTING, whose later rules may
    # masquerade the packet after all. ACCEPT ends the nat table's walk in any chain.
    user_chain = finding.detail("chain") not in _BUILTIN_NAT_CHAINS
    target, ending = ("ACCEPT", "an ACCEPT for the pod network ends the nat table's walk") if user_chain else (
        "RETURN", "a RETURN for the pod network ends the walk")
    for source, destination in pairs:
        within = f"within {source}" if source == destination else f"from {source} to {destination}"
        step = accept_step(
            finding, context, node,
            fixer_id="return-before-masquerade",
            step_id=_pair_id("return-pod-network-before-masquerade", source, destination, len(pairs)),
            title=f"Keep pod source addresses for traffic {within}",
            why="The masquerading rule rewrites the source of pod-to-pod traffic, so peers see the node's address "
                f"instead of the pod's; {ending} before it.",
            rule=f"-s {source} -d {destination} -m comment --comment netdoctor-pod-return -j {target}",
            table="nat",
        )
        if step is not None:
            yield NodeStep(node, step)
