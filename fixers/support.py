"""Helpers the fixer modules share: reading findings' evidence and building iptables steps."""

from __future__ import annotations

from ipaddress import IPv4Network, collapse_addresses

from netdoctor.facts import cluster_facts, prefix_text
from netdoctor.fix import Condition, FixContext, Operation, Safety, Step
from netdoctor.model import Finding, NodeSnapshot
from netdoctor.model.addr import AF_INET


def snapshot_node(context: FixContext, name: str) -> NodeSnapshot | None:
    """Return a node of the context's snapshot, or None when it was not captured."""
    try:
        node: NodeSnapshot = context.snapshot.node(name)
    except KeyError:
        return None
    return node


def pod_networks(context: FixContext) -> list[str]:
    """Return the prefixes of the cluster's IPv4 pod network as text.

    The configured pod network (flannel's etcd config or FLANNEL_NETWORK) is
    returned alone. Without one, the result is the smallest set of prefixes that
    covers exactly the pod subnets of every node, so that a rule built from it
    admits no address outside them: 10.244.1.0/24 and 10.244.2.0/24 give
    10.244.1.0/24 and 10.244.2.0/24, not 10.244.0.0/22. The list is empty when
    no node's pod subnet is known.
    """
    facts = cluster_facts(context.snapshot)
    configured = [network for network in facts.pod_networks
                  if network.configured and network.prefix[0] == AF_INET]
    if configured:
        return [configured[0].text]
    subnets = [IPv4Network(subnet.text) for item in facts.nodes.values() for subnet in item.pod_subnets()
               if subnet.prefix[0] == AF_INET]
    return [str(network) for network in collapse_addresses(subnets)]


def pod_network_pairs(networks: list[str]) -> list[tuple[str, str]]:
    """Return every (source, destination) pair of the pod network's prefixes, for rules that match both ends.

    NOTE: k prefixes give k * k rules, so pod subnets scattered across a range
    with no configured pod network make a long list.
    """
    return [(source, destination) for source in networks for destination in networks]


def routed_ovs_bridge(context: FixContext, node: str) -> str | None:
    """Return the OVS bridge of ``node`` whose internal port carries routes to pod subnets, in a routed OVS mesh.

    In that layout every node routes each peer's pod subnet onlink through the
    internal port of the bridge that contains the tunnel ports, and the bridge is
    no port of the pod bridge. The node's own routes decide first. A node whose
    routes through the bridge are gone (changing the bridge's MAC takes its
    port down and up) still has that layout when another node routes that way
    through a bridge of the same name. None when no node routes through an OVS
    bridge.
    """
    own = snapshot_node(context, node)
    if own is None or not own.ovs:
        return None
    bridges = {bridge.name for bridge in own.ovs}
    others = [item for item in context.snapshot.nodes if item.name != node]
    for item in [own, *others]:
        routed = {bridge.name for bridge in item.ovs or ()} & bridges
        for route in item.routes.main() if item.routes is not None and routed else ():
            if route.dev in routed and route.dst_len > 0 and route.onlink:
                return str(route.dev)
    return None


def shared_vtep_mac(context: FixContext, mac: str) -> bool:
    """Tell whether the flannel VXLAN devices of more than one node have ``mac``.

    Then duplicate-mac's fixer decides which device keeps the MAC, so entries
    and leases must not follow either device until the next round.
    """
    owners = {node.name for node in context.snapshot.nodes for item in node.interfaces or ()
              if item.name.startswith("flannel.") and (item.mac or "").lower() == mac.lower()}
    return len(owners) > 1


def rule_position(node: NodeSnapshot, table: str, chain: str, text: str) -> int | None:
    """Return the 1-based position of the rule ``-A <text>`` in its chain, or None when it is absent."""
    ruleset = node.iptables
    found = ruleset.table(table) if ruleset is not None else None
    if found is None:
        return None
    for index, rule in enumerate(found.rules_of(chain), start=1):
        if rule.text == text:
            return index
    return None


def deciding_rule(finding: Finding) -> tuple[str, str | None] | None:
    """Return the chain and the full rule text (without ``-A``) that decided, from a filtering finding's details.

    The rule text is None when the chain's policy decided. None as a whole
    means the finding came from firewalld, not iptables.
    """
    chain = finding.detail("chain")
    if chain is None:
        return None
    return chain, finding.detail("rule")


def accept_step(
    finding: Finding, context: FixContext, node: str, *, fixer_id: str, step_id: str, title: str, why: str,
    rule: str, table: str = "filter",
) -> Step | None:
    """Build a step that inserts one rule right before the rule that decided, or at the chain's end after a policy.

    ``rule`` is the rule after the chain name, written in ``iptables-save``
    order so that the "already done" test compares the same text. Returns
    None when the finding names no iptables chain.
    """
    decided = deciding_rule(finding)
    if decided is None:
        return None
    chain, blocking = decided
    snapshot = snapshot_node(context, node)
    position = rule_position(snapshot, table, chain, blocking) if snapshot and blocking else None
    params: dict[str, object] = {"table": table, "chain": chain, "rule": rule, "before": blocking, "position": position}
    preconditions: tuple[Condition, ...] = ()
    done: dict[str, object] = {"table": table, "chain": chain, "text": f"{chain} {rule}"}
    if blocking is not None:
        preconditions = (Condition("iptables-rule-present", {"table": table, "chain": chain, "text": blocking}),)
        # A copy of the rule behind the blocking rule never matches the packets that rule drops, so it is not done.
        done["before"] = blocking
    return Step(
        id=step_id,
        title=title,
        safety=Safety.SAFE,
        why=why,
        fixer=fixer_id,
        check=finding.check,
        action=Operation("iptables-insert", params),
        inverse=Operation("iptables-delete", {"table": table, "chain": chain, "rule": rule}),
        preconditions=preconditions,
        done=Condition("iptables-rule-present", done),
        verify=f"iptables -t {table} -S {chain}",
    )


def sysctl_steps(
    finding: Finding, *, fixer_id: str, key: str, value: str, previous: str, file: str, reason: str, why: str,
    title: str,
) -> tuple[Step, Step]:
    """Build the two steps that set a sysctl now and keep it after a reboot in a file under ``/etc/sysctl.d``."""
    content = f"# Written by netdoctor: {reason}\n{key} = {value}\n"
    now = Step(
        id=f"sysctl-{key}", title=title, safety=Safety.SAFE, why=why, fixer=fixer_id, check=finding.check,
        action=Operation("sysctl", {"key": key, "value": value}),
        inverse=Operation("sysctl", {"key": key, "value": previous}),
        done=Condition("sysctl-is", {"key": key, "value": value}),
        verify=f"sysctl {key}",
    )
    persist = Step(
        id=f"persist-{key}", title=f"Keep {key} = {value} after a reboot ({file})", safety=Safety.SAFE,
        why="The value resets at boot unless a file under /etc/sysctl.d sets it.", fixer=fixer_id,
        check=finding.check,
        action=Operation("file", {"path": file, "content": content}),
        inverse=Operation("file-restore", {"path": file, "content": None}),
        done=Condition("file-is", {"path": file, "content": content}),
        verify=f"cat {file}",
    )
    return now, persist


__all__ = ["accept_step", "deciding_rule", "pod_network_pairs", "pod_networks", "prefix_text", "routed_ovs_bridge",
           "rule_position", "shared_vtep_mac", "snapshot_node", "sysctl_steps"]
