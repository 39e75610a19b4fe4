"""Overlay device fixers: bring a device up, re-create flannel's VXLAN device, put OVS's bridge into docker0."""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.facts import cluster_facts
from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.support import routed_ovs_bridge
from netdoctor.flannel import leases, network_config, prefixes
from netdoctor.model import Finding

#: The agent that creates each overlay device, for the display-only restart step.
AGENTS = {"flannel0": "flanneld", "flannel.1": "flanneld", "tunl0": "calico-node"}


@fixer("restore-overlay-interface", title="Bring back the overlay device the backend needs",
       checks=("overlay-interface-missing",))
def restore_overlay_interface(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Set a down device up, re-create a missing flannel.1 from the node's lease, or enslave br0 to docker0.

    Safe: each step adds a device or a link state that the backend expects; no
    traffic uses the device while it is missing or down. A device that only its
    agent can build (flannel0, tunl0) gets a display-only restart of the agent.
    """
    node = finding.nodes[0]
    problem, device = finding.detail("problem"), finding.detail("device")
    if device is None:
        return
    if problem == "down":
        yield NodeStep(node, Step(
            id=f"link-up-{device}", title=f"Set {device} up", safety=Safety.SAFE,
            why=f"{device} carries the overlay and is administratively down.",
            action=Operation("link-up", {"name": device}), inverse=Operation("link-down", {"name": device}),
            preconditions=(Condition("link-present", {"name": device}),),
            done=Condition("link-up", {"name": device}), verify=f"ip link show dev {device}",
            fixer="restore-overlay-interface", check=finding.check,
        ))
    elif problem == "not-enslaved" and (pod_bridge := finding.detail("pod_bridge")) is not None:
        bridge, previous = device, finding.detail("master")
        if routed_ovs_bridge(context, node) == bridge:
            # A routed mesh: the bridge's internal port carries routes and must stay out of the pod
            # bridge. The node's lost routes through it are route-missing findings, which add-peer-route fixes.
            yield NodeStep(node, Step(
                id=f"routed-ovs-{bridge}", title=f"Keep {bridge} out of {pod_bridge}: the nodes route through it",
                safety=Safety.DISPLAY_ONLY,
                why=f"The nodes route pod subnets through {bridge}'s internal port, so making it a port of "
                    f"{pod_bridge} would take its address and routes away. The routes to peers' pods that are "
                    "missing on this node are route-missing findings; their fixer adds them.",
                fixer="restore-overlay-interface", check=finding.check,
                display=(f"# netdoctor fix --check route-missing --node {node}",),
            ))
            return
        yield NodeStep(node, Step(
            id=f"link-master-{bridge}", title=f"Make the OVS bridge {bridge} a port of {pod_bridge}", safety=Safety.SAFE,
            why=f"Pods on {pod_bridge} reach the tunnel ports only through {bridge} as a port of {pod_bridge}.",
            action=Operation("link-master", {"name": bridge, "master": pod_bridge}),
            inverse=Operation("link-master", {"name": bridge, "master": previous}),
            preconditions=(Condition("link-present", {"name": bridge}), Condition("link-present", {"name": pod_bridge})),
            done=Condition("link-master-is", {"name": bridge, "master": pod_bridge}),
            verify=f"ip link show dev {bridge}",
            fixer="restore-overlay-interface", check=finding.check,
        ))
    elif problem == "missing" and device == "flannel.1" and finding.detail("candidates") is None:
        step = _vxlan_step(finding, context, node)
        if step is not None:
            yield NodeStep(node, step)
        yield NodeStep(node, _restart_agent(finding, node, "flannel.1"))
    elif problem == "missing":
        yield NodeStep(node, _restart_agent(finding, node, device))


def _vxlan_step(finding: Finding, context: FixContext, node_name: str) -> Step | None:
    """Build the step that re-creates flannel.1 as flanneld would, or None when the lease is unknown."""
    facts = cluster_facts(context.snapshot)
    node = facts.nodes.get(node_name)
    etcd = context.snapshot.etcd
    if node is None or not node.underlay_subnets or etcd is None or not prefixes(etcd):
        return None
    prefix = prefixes(etcd)[0]
    local = node.underlay_subnets[0][1].partition("/")[0]
    lease = next((lease for lease in leases(etcd, prefix) if lease.public_ip == local), None)
    if lease is None:
        return None
    if lease.backend_type is not None and lease.backend_type.lower() != "vxlan":
        # flanneld ran another backend on this node, so the network config, not the device, is what
        # changed: flannel-backend-mismatch reports it, and flannel.1 would only add a second path.
        return None
    config = network_config(etcd, prefix)
    params = {
        "name": "flannel.1", "vni": config.vni or 1, "port": config.port or 8472, "local": local,
        "dev": node.underlay_subnets[0][2], "mac": lease.vtep_mac, "address": f"{lease.subnet.network_address}/32",
    }
    return Step(
        id="vxlan-flannel.1", title="Re-create flannel.1 from the node's lease", safety=Safety.SAFE,
        why="Every route to peers' pods goes through flannel.1; flanneld builds it with the lease's VtepMAC.",
        fixer="restore-overlay-interface", check=finding.check,
        action=Operation("vxlan-add", params), inverse=Operation("link-del", {"name": "flannel.1"}),
        preconditions=(Condition("link-absent", {"name": "flannel.1"}), Condition("link-present", {"name": params["dev"]})),
        done=Condition("link-up", {"name": "flannel.1"}), verify="ip -d link show dev flannel.1",
    )


def _restart_agent(finding: Finding, node: str, device: str) -> Step:
    agent = AGENTS.get(device, "the overlay agent")
    return Step(
        id=f"restart-{agent}", title=f"Restart {agent} so that it re-creates {device}", safety=Safety.DISPLAY_ONLY,
        why=f"{agent} owns {device} and its routes; restarting it also re-reads its config.",
        fixer="restore-overlay-interface", check=finding.check,
        display=(f"# systemctl restart {agent}", f"# then check: ip -d link show dev {device}"),
    )
