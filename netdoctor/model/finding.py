"""Findings: what a check concluded, with the evidence behind it."""

from __future__ import annotations

import enum

from netdoctor.model.record import record


class Severity(enum.IntEnum):
    """How bad a finding is; higher is worse, so severities compare and sort."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        """The lower-case name used in JSON and on the command line."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse ``error``, ``warning`` or ``info``."""
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}; expected error, warning or info") from None


@record
class Evidence:
    """A pointer into the snapshot: the node, the source, and the object or line that shows the fault."""

    node: str | None
    #: The snapshot part: ``routes``, ``interfaces``, ``iptables``, ``sysctls``, ``etcd``, ...
    source: str
    #: The object as text, e.g. a route as ``ip route`` prints it or a ``key = value`` line.
    item: str
    #: The line in the captured file or command output, when known.
    line: int | None = None


@record
class Finding:
    """One diagnosed fault. ``nodes`` lists every node it affects, sorted."""

    check: str
    severity: Severity
    nodes: tuple[str, ...]
    summary: str
    evidence: tuple[Evidence, ...] = ()
    #: Ids of the fixers that address this finding.
    fixes: tuple[str, ...] = ()
    #: The finding's facts as ``(key, value)`` text pairs, sorted by key: the device, chain,
    #: prefix or MTU a fixer needs. Fixers read these, never the wording of ``summary``.
    details: tuple[tuple[str, str], ...] = ()

    def detail(self, key: str) -> str | None:
        """Return one fact of the finding, such as ``chain`` or ``prefix``, or None if it is not set."""
        for name, value in self.details:
            if name == key:
                return value
        return None

    def sort_key(self) -> tuple[int, str, tuple[str, ...], str]:
        """Order findings by severity (worst first), then check id, nodes and summary."""
        return (-int(self.severity), self.check, self.nodes, self.summary)


def make_details(**facts: object) -> tuple[tuple[str, str], ...]:
    """Build a finding's ``details`` from keyword facts: text pairs sorted by key, without the None ones."""
    return tuple(sorted((key, str(value)) for key, value in facts.items() if value is not None))
