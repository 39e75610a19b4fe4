"""Run the collectors against targets and assemble a :class:`ClusterSnapshot`.

Each collector module in ``netdoctor.collectors`` returns a :class:`Part`: the
snapshot fields it filled, where they came from, and gaps for what it could not
read. A collector that raises anyway is turned into a gap here, so one broken
source never loses what the others collected.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from netdoctor.model import ClusterSnapshot, Gap, NodeSnapshot, Provenance
from netdoctor.target import CollectionError, Target

logger = logging.getLogger(__name__)

_NODE_FIELDS = {item.name for item in fields(NodeSnapshot)} - {"name", "provenance", "extra_files", "meta"}


@dataclass
class Part:
    """The snapshot fields, provenance and gaps one collector read from one target."""

    values: dict[str, Any] = field(default_factory=dict)
    provenance: list[Provenance] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def gap(self, target: Target, source: str, reason: str) -> None:
        """Record that ``source`` could not be collected from ``target``."""
        logger.info("%s: %s not collected: %s", target.name, source, reason)
        self.gaps.append(Gap(target.name, source, reason))


def collector_modules() -> list[str]:
    """Return the collector module names, in run order."""
    from netdoctor.collectors import COLLECTORS

    return list(COLLECTORS)


def collect_node(target: Target, collectors: Iterable[str] | None = None) -> tuple[NodeSnapshot, list[Gap]]:
    """Run collectors on one target and return its node snapshot and gaps."""
    values: dict[str, Any] = {}
    provenance: list[Provenance] = []
    gaps: list[Gap] = []
    meta: dict[str, str] = {}
    for module_name in collectors or collector_modules():
        module = importlib.import_module(f"netdoctor.collectors.{module_name}")
        try:
            part: Part = module.collect(target)
        except CollectionError as error:
            gaps.append(Gap(target.name, module_name, str(error)))
            continue
        except Exception as error:  # a defect in one collector must not lose the others' data
            logger.exception("%s: collector %s failed", target.name, module_name)
            gaps.append(Gap(target.name, module_name, f"the collector failed: {type(error).__name__}: {error}"))
            continue
        unknown = set(part.values) - _NODE_FIELDS
        if unknown:
            raise RuntimeError(f"collector {module_name} returned unknown fields {sorted(unknown)}")
        values.update(part.values)
        provenance.extend(part.provenance)
        gaps.extend(part.gaps)
        meta.update(part.meta)
    node = NodeSnapshot(
        name=target.name,
        provenance=tuple(provenance),
        meta=tuple(sorted(meta.items())),
        **values,
    )
    return node, gaps


def collect_cluster(
    targets: Iterable[Target], source: str, collectors: Iterable[str] | None = None
) -> ClusterSnapshot:
    """Collect every target and return the cluster snapshot, with all gaps."""
    wanted = list(collectors) if collectors is not None else None
    nodes: list[NodeSnapshot] = []
    gaps: list[Gap] = []
    for target in targets:
        node, node_gaps = collect_node(target, wanted)
        nodes.append(node)
        gaps.extend(node_gaps)
    collected_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    return ClusterSnapshot(nodes=tuple(nodes), gaps=tuple(gaps), source=source, collected_at=collected_at)


def with_gaps(snapshot: ClusterSnapshot, gaps: Iterable[Gap]) -> ClusterSnapshot:
    """Return the snapshot with more gaps appended."""
    return replace(snapshot, gaps=snapshot.gaps + tuple(gaps))
