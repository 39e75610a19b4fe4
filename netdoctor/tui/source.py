"""Where the TUI's snapshot comes from, and loading it node by node with progress.

This module does not import Textual: the app calls :meth:`SnapshotSource.load`
from a thread worker and turns the progress callbacks into messages.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from netdoctor.engine import Report, load_checks, run_checks
from netdoctor.fix import NodeBinding
from netdoctor.model import ClusterSnapshot, Gap, NodeSnapshot
from netdoctor.report import attach_fixes
from netdoctor.sources import (
    EtcdOptions,
    SourceError,
    add_etcd,
    lab_targets,
    load_bundle_path,
    load_snapshot_file,
    netns_targets,
    parse_netns_list,
)
from netdoctor.target import Target

logger = logging.getLogger(__name__)

#: Called with a node name and its state: ``pending``, ``collecting``, ``done`` or ``failed``.
ProgressCallback = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class SnapshotSource:
    """The source options of the command line; at most one of them is set, none means the local node."""

    netns: str | None = None
    snapshot: Path | None = None
    bundle: Path | None = None
    #: The name of a lab built by ``netdoctor lab up``.
    lab: str | None = None

    def __post_init__(self) -> None:
        given = [name for name, value in self._options() if value is not None]
        if len(given) > 1:
            raise SourceError(f"{' and '.join(given)} cannot be combined; choose one source")

    def _options(self) -> list[tuple[str, object]]:
        return [("--netns", self.netns), ("--snapshot", self.snapshot), ("--bundle", self.bundle), ("--lab", self.lab)]

    def describe(self) -> str:
        """Return the source as the header shows it, such as ``bundle /tmp/case``."""
        if self.netns is not None:
            return f"netns {self.netns}"
        if self.snapshot is not None:
            return f"snapshot {self.snapshot}"
        if self.bundle is not None:
            return f"bundle {self.bundle}"
        if self.lab is not None:
            return f"lab {self.lab}"
        return "local node"

    @property
    def is_live(self) -> bool:
        """Whether loading collects from live nodes (so a refresh can show new state)."""
        return self.snapshot is None and self.bundle is None

    def targets(self) -> list[Target]:
        """Return the nodes to collect from; empty for a file source. Raise :class:`SourceError` on bad input."""
        if self.netns is not None:
            return netns_targets(parse_netns_list(self.netns))
        if self.lab is not None:
            return lab_targets(self.lab)[0]
        if self.snapshot is None and self.bundle is None:
            return [Target(socket.gethostname() or "localhost")]
        return []

    def bindings(self) -> dict[str, NodeBinding]:
        """Return where each node is reached from this host, for fix plans; empty for file sources."""
        if self.netns is not None:
            return {name: NodeBinding(netns=name) for name in parse_netns_list(self.netns)}
        if self.lab is not None:
            targets = lab_targets(self.lab)[0]
            return {target.name: NodeBinding(netns=target.netns, root=str(target.root)) for target in targets}
        return {}

    def etcd_endpoint(self) -> str | None:
        """Return the etcd client URL of a lab source, for fix steps that write etcd keys."""
        if self.lab is None:
            return None
        return lab_targets(self.lab)[2]

    def load(self, progress: ProgressCallback | None = None) -> ClusterSnapshot:
        """Read or collect the snapshot, reporting each node's state to ``progress``."""
        if self.snapshot is not None:
            return load_snapshot_file(self.snapshot)
        if self.bundle is not None:
            return load_bundle_path(self.bundle)
        if self.lab is not None:
            targets, source, etcd_endpoint = lab_targets(self.lab)
            snapshot = collect_with_progress(targets, source, progress)
            if etcd_endpoint is None:
                return snapshot
            return add_etcd(snapshot, EtcdOptions(endpoints=(etcd_endpoint,)))
        return collect_with_progress(self.targets(), "netns" if self.netns is not None else "local", progress)


def collect_with_progress(
    targets: list[Target], source: str, progress: ProgressCallback | None = None
) -> ClusterSnapshot:
    """Collect each target in turn; a target that raises becomes a ``failed`` node with a gap."""
    from netdoctor.collect import collect_node

    report = progress or (lambda node, state: None)
    for target in targets:
        report(target.name, "pending")

    nodes: list[NodeSnapshot] = []
    gaps: list[Gap] = []
    for target in targets:
        report(target.name, "collecting")
        try:
            node, node_gaps = collect_node(target)
        except Exception as error:  # noqa: BLE001 - one unreachable node must not lose the others
            logger.warning("%s: collection failed: %s", target.name, error)
            gaps.append(Gap(target.name, "collection", f"collection failed: {type(error).__name__}: {error}"))
            nodes.append(NodeSnapshot(name=target.name))
            report(target.name, "failed")
            continue
        nodes.append(node)
        gaps.extend(node_gaps)
        report(target.name, "done")

    collected_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    return ClusterSnapshot(nodes=tuple(nodes), gaps=tuple(gaps), source=source, collected_at=collected_at)


def diagnose(snapshot: ClusterSnapshot) -> Report:
    """Run every check of the catalogue over a snapshot and name the fixers of each finding."""
    return attach_fixes(run_checks(snapshot, load_checks()))
