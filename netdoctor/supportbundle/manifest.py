"""The bundle's ``manifest.json``: every capture step, what redaction removed, and the options used.

A step is one command run or one file read on one node. It is recorded
whether it worked or not, so a reviewer can tell "not captured" from "empty".
``truncated`` marks output cut by the per-command output cap or by the
bundle's total size cap; ``netdoctor check --bundle`` lists such members as
gaps.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: The schema tag of ``manifest.json``.
MANIFEST_SCHEMA = "netdoctor.bundle-manifest/1"


@dataclass
class Step:
    """One capture step on one node (``node`` is None for a cluster-wide source such as etcd)."""

    node: str | None
    #: ``command`` or ``file``.
    kind: str
    #: The command line, or the file's path on the node.
    what: str
    #: The bundle member the output went to; None when nothing was written.
    member: str | None
    started_at: str
    duration: float = 0.0
    exit_status: int | None = None
    bytes: int = 0
    truncated: bool = False
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the manifest entry; the command or path is under ``command`` or ``file`` by kind."""
        entry = asdict(self)
        entry[self.kind] = entry.pop("what")
        entry["duration"] = round(self.duration, 4)
        return entry


@dataclass
class Manifest:
    """Everything ``manifest.json`` records."""

    source: str
    created_at: str
    options: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    redactions: list[dict[str, Any]] = field(default_factory=list)
    #: Files never read because they hold secrets whole (private keys), by node and path.
    omitted: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the manifest as indented JSON text."""
        document = {
            "schema": MANIFEST_SCHEMA,
            "source": self.source,
            "created_at": self.created_at,
            "options": self.options,
            "steps": [step.as_json() for step in self.steps],
            "redactions": self.redactions,
            "omitted": self.omitted,
        }
        return json.dumps(document, indent=2) + "\n"
