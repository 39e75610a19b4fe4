"""Packet filter fixers: one targeted ACCEPT rule before the rule that blocks.

Neither fixer flushes a chain, changes a policy or deletes a rule: each inserts
one rule, and undo deletes exactly that rule by its full text, so Docker's,
kube-proxy's and Calico's rules stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.facts import cluster_facts
from netdoctor.fix import FixContext, NodeStep, fixer
from netdoctor.fixers.support import accept_step, pod_network
from netdoctor.model import Finding

#: ICMP types by the label the icmp-blocked check prints, as ``iptables-save`` writes them.
ICMP_TYPES = {"echo-request": "8", "fragmentation-needed": "3/4"}


@fixer("accept-icmp", title="Accept the blocked ICMP type before the blocking rule", checks=("icmp-blocked",))
def accept_icmp(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Insert one ``-p icmp --icmp-type T -j ACCEPT`` rule right before the rule that blocks it.

    Safe: it opens one ICMP type only. On INPUT the rule is limited to the
    underlay interface; on FORWARD to traffic between pod network addresses.
    """
    node = finding.nodes[0]
    label = next((name for name in ICMP_TYPES if f"ICMP {name}" in finding.summary), None)
    if label is None:
        return
    icmp_type = ICMP_TYPES[label]
    forwarded = finding.summary.startswith(f"{node}: forwarded")
    if forwarded:
        network = pod_network(context, node)
        where = f"-s {network} -d {network} " if network else ""
        scope = "forwarded between pods"
    else:
        facts = cluster_facts(context.snapshot).nodes.get(node)
        device = facts.underlay_subnets[0][2] if facts and facts.underlay_subnets else None
        where = f"-i {device} " if device else ""
        scope = f"arriving on {device}" if device else "arriving at the node"
    rule = f"{where}-p icmp -m icmp --icmp-type {icmp_type} -m comment --comment netdoctor-accept-icmp -j ACCEPT"
    why = (f"ICMP {label} {scope} is dropped, which breaks "
           + ("path MTU discovery" if label == "fragmentation-needed" else "ping-based health checks and diagnosis")
           + "; only this ICMP type is opened.")
    yield NodeStep(node, accept_step(
        finding, context, node,
        fixer_id="accept-icmp",
        step_id=f"accept-icmp-{'forward' if forwarded else 'input'}-{icmp_type.replace('/', '-')}",
        title=f"Accept ICMP {label} {scope}",
        why=why,
        rule=rule,
    ))


@fixer("accept-pod-forward", title="Accept forwarded pod network traffic before the blocking rule",
       checks=("forward-policy-drop",))
def accept_pod_forward(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Insert ``-s POD_NETWORK -j ACCEPT`` and ``-d POD_NETWORK -j ACCEPT`` before the rule or policy that drops.

    Safe: these are the rules flanneld adds itself; they open forwarding for
    pod network addresses only, and the chain's policy stays DROP for the rest.
    """
    node = finding.nodes[0]
    network = pod_network(context, node)
    if network is None:
        return
    for direction, option in (("from", "-s"), ("to", "-d")):
        yield NodeStep(node, accept_step(
            finding, context, node,
            fixer_id="accept-pod-forward",
            step_id=f"accept-pod-forward-{direction}",
            title=f"Accept forwarded traffic {direction} the pod network {network}",
            why="The FORWARD chain drops traffic between pods on different nodes; this accepts the pod network only.",
            rule=f"{option} {network} -m comment --comment netdoctor-pod-forward -j ACCEPT",
        ))
