"""The whole cluster: node snapshots, cluster-level sources and the gaps in what was collected."""

from __future__ import annotations

from netdoctor.model.node import NodeSnapshot
from netdoctor.model.record import record


@record
class Gap:
    """A source that could not be collected or parsed, or a check that failed or could not decide, and why.

    ``node`` is None for a cluster-level source such as etcd. A check's gap has
    the source ``check:ID``.
    """

    node: str | None
    source: str
    reason: str

    @property
    def check_id(self) -> str | None:
        """The id of the check that reported the gap, or None for a gap in what was collected."""
        return self.source.removeprefix("check:") if self.source.startswith("check:") else None


@record
class EtcdData:
    """Keys read from etcd (``etcdctl get --prefix``), as text, sorted by key."""

    keys: tuple[tuple[str, str], ...] = ()
    #: Where the keys came from: an endpoint URL with the API version, or a bundle file.
    origin: str = ""
    #: Every key as read from each keyspace, ``(keyspace, key, value)`` with keyspace ``v2`` or
    #: ``v3``, sorted. etcd keeps the two keyspaces apart, so one key can differ between them.
    #: Empty when the source does not say, as for a captured ``etcdctl`` dump.
    keyspace_entries: tuple[tuple[str, str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """Return the value of one key, if present."""
        for name, value in self.keys:
            if name == key:
                return value
        return None

    def with_prefix(self, prefix: str) -> tuple[tuple[str, str], ...]:
        """Return the keys under a prefix, such as ``/coreos.com/network/subnets/``."""
        return tuple((name, value) for name, value in self.keys if name.startswith(prefix))


@record
class KubeNode:
    """The network facts of one Kubernetes Node object."""

    name: str
    pod_cidrs: tuple[str, ...] = ()
    internal_ips: tuple[str, ...] = ()
    #: Annotations that describe the pod network (``flannel.alpha.coreos.com/*``,
    #: ``projectcalico.org/*``), sorted by key.
    annotations: tuple[tuple[str, str], ...] = ()


@record
class ClusterSnapshot:
    """An immutable picture of a cluster's node networks at one moment.

    Nodes are sorted by name. ``etcd`` and ``kube_nodes`` are None when they were
    not captured.
    """

    nodes: tuple[NodeSnapshot, ...] = ()
    etcd: EtcdData | None = None
    kube_nodes: tuple[KubeNode, ...] | None = None
    gaps: tuple[Gap, ...] = ()
    #: What the snapshot was collected from: ``local``, ``netns``, ``bundle``, ``lab``, ...
    source: str = "local"
    #: ISO 8601 time of collection, UTC.
    collected_at: str = ""
    #: Bundle files that no parser reads and that are not directly in a ``nodes/<node>/`` folder, such as
    #: ``cluster/events.json`` or ``nodes/<node>/files/etc/sysctl.conf``, kept by name. The files that
    #: ``netdoctor bundle`` writes beside ``nodes/`` (manifest, snapshot, reports and log) are not listed.
    extra_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [node.name for node in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate node names in snapshot: {sorted(names)}")
        if names != sorted(names):
            object.__setattr__(self, "nodes", tuple(sorted(self.nodes, key=lambda node: node.name)))

    def node(self, name: str) -> NodeSnapshot:
        """Return one node by name; raise ``KeyError`` if there is none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def node_names(self) -> tuple[str, ...]:
        """The node names, sorted."""
        return tuple(node.name for node in self.nodes)
