"""Render a check report as Markdown, for ``report.md`` in a support bundle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netdoctor.model import Severity

if TYPE_CHECKING:
    from netdoctor.engine import Report


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """Return the report as Markdown: nodes and backends, findings by severity with evidence, then gaps."""
    snapshot = report.snapshot
    lines = [f"# netdoctor report: {len(snapshot.nodes)} node(s) from {snapshot.source}", ""]
    lines += ["| node | backend |", "|---|---|"]
    for name in snapshot.node_names:
        lines.append(f"| {_cell(name)} | {_cell(', '.join(report.backends.get(name, ())) or 'not detected')} |")

    for severity in sorted(Severity, reverse=True):
        findings = [finding for finding in report.findings if finding.severity == severity]
        if not findings:
            continue
        lines += ["", f"## {severity.label} ({len(findings)})", ""]
        for finding in findings:
            lines.append(f"- **{finding.check}**: {finding.summary} (nodes: {', '.join(finding.nodes)})")
            for evidence in finding.evidence:
                where = evidence.node if evidence.node is not None else "cluster"
                at_line = f", line {evidence.line}" if evidence.line is not None else ""
                lines.append(f"  - {where} `{evidence.source}`{at_line}: `{evidence.item}`")
            if finding.fixes:
                lines.append(f"  - fix: {', '.join(finding.fixes)}")

    if report.gaps:
        lines += ["", f"## not collected ({len(report.gaps)})", ""]
        for gap in report.gaps:
            lines.append(f"- {gap.node if gap.node is not None else 'cluster'}: {gap.source}: {gap.reason}")

    counts = ", ".join(f"{report.count(severity)} {severity.label}" for severity in sorted(Severity, reverse=True))
    lines += ["", f"{len(report.checks)} check(s) run: {counts}, {len(report.gaps)} gap(s)", ""]
    return "\n".join(lines)
