"""Detection of the pod-network design (backend) each node runs."""

from __future__ import annotations

from netdoctor.model import ClusterSnapshot


def detect_backends(snapshot: ClusterSnapshot) -> dict[str, tuple[str, ...]]:
    """Return the detected backends of every node, by node name."""
    # TODO: detection of flannel, OVS, Calico and direct routing lands with the checks.
    return {node.name: () for node in snapshot.nodes}
