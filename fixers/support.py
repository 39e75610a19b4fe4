"""Helpers the fixer modules share: reading findings' evidence and building iptables steps."""

from __future__ import annotations

from netdoctor.facts import cluster_facts, prefix_text
from netdoctor.fix import Condition, FixContext, Operation, Safety, Step
from netdoctor.model import Finding, NodeSnapshot


def snapshot_node(context: FixContext, name: str) -> NodeSnapshot | None:
    """Return a node of the context's snapshot, or None when it was not captured."""
    try:
        node: NodeSnapshot = context.snapshot.node(name)
    except KeyError:
        return None
    return node


def pod_network(context: FixContext, node: str) -> str | None:
    """Return the cluster pod network as text, or the node's first own pod subnet when none is known."""
    facts = cluster_facts(context.snapshot)
    if facts.pod_networks:
        return facts.pod_networks[0].text
    own = facts.nodes[node].pod_subnets() if node in facts.nodes else []
    return own[0].text if own else None


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


def deciding_rule(finding: Finding) -> tuple[str, str | None]:
    """Return the chain and the full rule text (without ``-A``) that blocked, from a filtering finding.

    The rule text is None when the chain's policy decided.
    """
    item = finding.evidence[0].item
    if item.startswith("-A "):
        text = item[3:]
        return text.split(" ", 1)[0], text
    return item.lstrip(":").split(" ", 1)[0], None


def accept_step(
    finding: Finding, context: FixContext, node: str, *, fixer_id: str, step_id: str, title: str, why: str,
    rule: str,
) -> Step:
    """Build a step that inserts one ACCEPT rule right before the rule that blocked, or at the chain's end.

    ``rule`` is the rule after the chain name, written in ``iptables-save``
    order so that the "already done" test compares the same text.
    """
    chain, blocking = deciding_rule(finding)
    snapshot = snapshot_node(context, node)
    position = rule_position(snapshot, "filter", chain, blocking) if snapshot and blocking else None
    params: dict[str, object] = {"table": "filter", "chain": chain, "rule": rule, "before": blocking, "position": position}
    preconditions: tuple[Condition, ...] = ()
    if blocking is not None:
        preconditions = (Condition("iptables-rule-present", {"table": "filter", "chain": chain, "text": blocking}),)
    return Step(
        id=step_id,
        title=title,
        safety=Safety.SAFE,
        why=why,
        fixer=fixer_id,
        check=finding.check,
        action=Operation("iptables-insert", params),
        inverse=Operation("iptables-delete", {"table": "filter", "chain": chain, "rule": rule}),
        preconditions=preconditions,
        done=Condition("iptables-rule-present", {"table": "filter", "chain": chain, "text": f"{chain} {rule}"}),
        verify=f"iptables -t filter -S {chain}",
    )


__all__ = ["accept_step", "deciding_rule", "pod_network", "prefix_text", "rule_position", "snapshot_node"]
