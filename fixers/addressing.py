"""Address plan fixers: Docker's bridge subnet from flannel's lease, and pod networks that overlap hosts.

Both are display-only: they need Docker or the whole cluster restarted with
new addresses, which a person schedules.
"""

from __future__ import annotations

from collections.abc import Iterator

from netdoctor.fix import FixContext, NodeStep, Safety, Step, fixer
from netdoctor.fixers.support import snapshot_node
from netdoctor.model import Finding


@fixer("docker-bip-from-subnet-env", title="Give docker0 the node's flannel subnet with --bip",
       checks=("bridge-subnet-overlap", "bridge-outside-overlay-subnet"))
def docker_bip_from_subnet_env(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Show how to restart Docker with ``--bip`` and ``--mtu`` from ``/run/flannel/subnet.env``.

    Display-only: restarting Docker restarts every container on the node, and
    flanneld must have written subnet.env before Docker starts.
    """
    for node_name in finding.nodes:
        node = snapshot_node(context, node_name)
        env = node.flannel_env if node is not None else None
        display: tuple[str, ...]
        if env is not None and env.subnet:
            mtu = f" --mtu={env.mtu}" if env.mtu else ""
            display = (
                f"# subnet.env on {node_name}: FLANNEL_SUBNET={env.subnet}" + (f" FLANNEL_MTU={env.mtu}" if env.mtu else ""),
                f'# /etc/docker/daemon.json: "bip": "{env.subnet}"' + (f', "mtu": {env.mtu}' if env.mtu else ""),
                f"# or: dockerd --bip={env.subnet}{mtu}",
                "# start flanneld before Docker, then: systemctl restart docker",
            )
        else:
            display = (
                "# start flanneld first so that it writes /run/flannel/subnet.env, then:",
                "# . /run/flannel/subnet.env && dockerd --bip=${FLANNEL_SUBNET} --mtu=${FLANNEL_MTU}",
            )
        yield NodeStep(node_name, Step(
            id="docker-bip",
            title="Restart Docker with the bridge subnet flannel leased to this node",
            safety=Safety.DISPLAY_ONLY,
            why="docker0 must carry the node's own pod subnet; otherwise pod addresses collide across nodes or "
                "fall outside what the overlay routes.",
            fixer="docker-bip-from-subnet-env",
            check=finding.check,
            display=display,
            verify="ip -4 addr show dev docker0",
        ))


@fixer("renumber-pod-network", title="Plan a pod network that does not overlap the hosts",
       checks=("pod-network-overlaps-host",))
def renumber_pod_network(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Show what must change to move the pod network off the host subnet.

    Display-only: renumbering a pod network (a new Calico IP pool, flannel's
    Network) is a planned change that moves every pod.
    """
    for node_name in finding.nodes:
        yield NodeStep(node_name, Step(
            id="renumber-pod-network",
            title="Move the pod network to a range no host uses",
            safety=Safety.DISPLAY_ONLY,
            why=finding.summary,
            fixer="renumber-pod-network",
            check=finding.check,
            display=(
                "# Calico: create an IP pool outside the host subnets, disable the old pool, then recreate the pods",
                "# flannel: write a new Network to <prefix>/config in etcd, then restart flanneld and Docker on each node",
            ),
        ))
