"""Render an :class:`~netdoctor.engine.Report` as JSON or as text for people.

The JSON form is the stable ``netdoctor.check/1`` document described in
``docs/check-json.md``. The human form uses Rich, which is imported only when
that form is rendered, so ``netdoctor check --json`` never loads it.
:func:`attach_fixes` names each finding's fixers from the ``netdoctor.fixers``
index alone, so a report does not import the fix-plan machinery of
:mod:`netdoctor.fix` either.
"""

from __future__ import annotations

import json
import os
from typing import IO, TYPE_CHECKING, Any

from netdoctor.log import get_logger
from netdoctor.model import Finding, Gap, Severity
from netdoctor.model.record import replace

if TYPE_CHECKING:
    from rich.console import Console

    from netdoctor.engine import Report

logger = get_logger(__name__)

#: The schema tag of the check report JSON.
CHECK_SCHEMA = "netdoctor.check/1"

_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def fixes_for(check_id: str) -> tuple[str, ...]:
    """Return the fixer ids that address a check's findings, in the order they apply."""
    from netdoctor.fixers import FIXES

    return tuple(FIXES.get(check_id, ()))


def attach_fixes(report: Report) -> Report:
    """Return the report with each finding's ``fixes`` set to the fixer ids that address its check."""
    findings = tuple(replace(finding, fixes=fixes_for(finding.check)) for finding in report.findings)
    return replace(report, findings=findings)


def exit_code(report: Report, threshold: Severity) -> int:
    """Return 1 when any finding is at or above ``threshold``, else 0."""
    worst = report.worst()
    return 1 if worst is not None and worst >= threshold else 0


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "check": finding.check,
        "severity": finding.severity.label,
        "nodes": list(finding.nodes),
        "summary": finding.summary,
        "evidence": [
            {"node": item.node, "source": item.source, "item": item.item, "line": item.line}
            for item in finding.evidence
        ],
        "fixes": list(finding.fixes),
        "details": dict(finding.details),
    }


def _gap_json(gap: Gap) -> dict[str, Any]:
    return {"node": gap.node, "source": gap.source, "reason": gap.reason}


def report_to_json(report: Report) -> dict[str, Any]:
    """Return the ``netdoctor.check/1`` document of a report."""
    nodes = [
        {"name": name, "backends": list(report.backends.get(name, ()))}
        for name in report.snapshot.node_names
    ]
    return {
        "schema": CHECK_SCHEMA,
        "source": report.snapshot.source,
        "collected_at": report.snapshot.collected_at,
        "checks": list(report.checks),
        "nodes": nodes,
        "findings": [_finding_json(finding) for finding in report.findings],
        "gaps": [_gap_json(gap) for gap in report.gaps],
        "summary": {severity.label: report.count(severity) for severity in sorted(Severity, reverse=True)},
    }


def dumps_report(report: Report) -> str:
    """Return the report as indented JSON text, ending with a newline."""
    return json.dumps(report_to_json(report), indent=2) + "\n"


def make_console(file: IO[str] | None = None, force_terminal: bool | None = None) -> Console:
    """Create a Rich console that writes colour only to a terminal and never when NO_COLOR is set.

    NO_COLOR follows no-color.org: any non-empty value turns colour off.
    ``force_terminal`` overrides the terminal detection of ``file``.
    """
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR"))
    return Console(file=file, force_terminal=force_terminal, no_color=no_color, highlight=False, soft_wrap=True)


#: Clusters up to this size get one line per node in the text report; larger ones one line per backend.
NODE_LINES = 20


def render_human(report: Report, console: Console) -> None:
    """Print the report for people: nodes with their backends, findings by severity, then gaps."""
    from rich.text import Text

    snapshot = report.snapshot
    console.print(Text(f"netdoctor: {len(snapshot.nodes)} node(s) from {snapshot.source}", style="bold"))
    names = snapshot.node_names
    if len(names) <= NODE_LINES:
        for name in names:
            backends = ", ".join(report.backends.get(name, ())) or "not detected"
            console.print(f"  {name}: backend {backends}")
    else:
        # One line per backend keeps a large cluster's findings on the first screen; --json lists every node.
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(", ".join(report.backends.get(name, ())) or "not detected", []).append(name)
        for backends, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
            listed = ", ".join(members[:3]) + (f" and {len(members) - 3} more" if len(members) > 3 else "")
            console.print(f"  backend {backends}: {len(members)} node(s): {listed}")

    for severity in sorted(Severity, reverse=True):
        findings = [finding for finding in report.findings if finding.severity == severity]
        if not findings:
            continue
        console.print()
        console.print(Text(f"{severity.label.upper()} ({len(findings)})", style=_SEVERITY_STYLE[severity]))
        for finding in findings:
            _render_finding(finding, console)

    # Gaps of checks are parts that were collected but not judged.
    unchecked = [gap for gap in report.gaps if gap.check_id is not None]
    uncollected = [gap for gap in report.gaps if gap.check_id is None]
    for heading, gaps in (("NOT COLLECTED", uncollected), ("NOT CHECKED", unchecked)):
        if not gaps:
            continue
        console.print()
        console.print(Text(f"{heading} ({len(gaps)})", style="bold"))
        for gap in gaps:
            where = gap.node if gap.node is not None else "cluster"
            console.print(Text(f"  {where}: {gap.source}: {gap.reason}"))

    console.print()
    counts = ", ".join(f"{report.count(severity)} {severity.label}" for severity in sorted(Severity, reverse=True))
    console.print(Text(f"{len(report.checks)} check(s) run: {counts}, {len(report.gaps)} gap(s)"))


def _render_finding(finding: Finding, console: Console) -> None:
    from rich.text import Text

    style = _SEVERITY_STYLE[finding.severity]
    line = Text("  ")
    line.append(f"[{finding.check}]", style=style)
    line.append(f" {finding.summary}")
    console.print(line)
    console.print(Text(f"      nodes: {', '.join(finding.nodes)}"))
    for evidence in finding.evidence:
        where = evidence.node if evidence.node is not None else "cluster"
        at_line = f", line {evidence.line}" if evidence.line is not None else ""
        console.print(Text(f"      {where} {evidence.source}{at_line}: {evidence.item}", style="dim"))
    if finding.fixes:
        console.print(Text(f"      fix: {', '.join(finding.fixes)}"))
