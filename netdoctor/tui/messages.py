"""Messages that the refresh worker and the widgets send to the app."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from netdoctor.engine import CheckSpec, Report
from netdoctor.mesh import PathMatrix, PathResult
from netdoctor.model import ClusterSnapshot, Finding


@dataclass
class NodeProgress(Message):
    """One node changed state during collection: ``pending``, ``collecting``, ``done`` or ``failed``."""

    node: str
    state: str


@dataclass
class SnapshotLoaded(Message):
    """The snapshot was read or collected, and the checks are now running on it."""

    snapshot: ClusterSnapshot


@dataclass
class ReportReady(Message):
    """The snapshot was loaded and checked, and the path matrix is ready to evaluate."""

    report: Report
    specs: dict[str, CheckSpec]
    matrix: PathMatrix
    #: Broken pairs, or None when the cluster is too large to evaluate every pair up front.
    broken: list[PathResult] | None


@dataclass
class FindingChosen(Message):
    """The cursor of the findings table moved to a finding (None: the table is empty)."""

    finding: Finding | None


@dataclass
class NodeChosen(Message):
    """A node was selected in the nodes pane; None selects the whole cluster."""

    node: str | None


@dataclass
class CellChosen(Message):
    """The cursor of the mesh view moved to a pair of nodes."""

    result: PathResult
