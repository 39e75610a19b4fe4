"""The runbook export: the findings of a report as Markdown, with evidence, explanation and fixes.

This module does not import Textual.
"""

from __future__ import annotations

from netdoctor.engine import CheckSpec, Report


def runbook_markdown(report: Report, specs: dict[str, CheckSpec], source: str) -> str:
    """Render a report as a Markdown runbook that an operator can follow without netdoctor."""
    snapshot = report.snapshot
    lines = [
        "# netdoctor runbook",
        "",
        (
            f"Source: {source}. Snapshot collected at {snapshot.collected_at or 'an unknown time'}; "
            f"{len(snapshot.nodes)} node(s), {len(report.findings)} finding(s), {len(report.gaps)} gap(s)."
        ),
        "",
        "| node | backends |",
        "|---|---|",
    ]
    for node in snapshot.nodes:
        lines.append(f"| {node.name} | {', '.join(report.backends.get(node.name, ())) or 'none detected'} |")

    for number, finding in enumerate(report.findings, 1):
        spec = specs.get(finding.check)
        lines += ["", f"## {number}. [{finding.severity.label}] {finding.check}: {finding.summary}", ""]
        lines.append(f"Nodes: {', '.join(finding.nodes) or 'cluster'}.")
        if finding.evidence:
            lines += ["", "Evidence:", ""]
            for evidence in finding.evidence:
                where = f"{evidence.node or 'cluster'} {evidence.source}"
                if evidence.line is not None:
                    where += f" line {evidence.line}"
                lines.append(f"- {where}: `{evidence.item}`")
        if spec is not None:
            sections = spec.sections()
            for heading in ("Why it matters", "Fix safety"):
                if sections.get(heading):
                    lines += ["", f"**{heading}.** {sections[heading]}"]
        if finding.fixes:
            lines += ["", f"Fixers: {', '.join(finding.fixes)}."]

    if report.gaps:
        lines += ["", "## Not collected", ""]
        lines += [f"- {gap.node or 'cluster'} {gap.source}: {gap.reason}" for gap in report.gaps]
    return "\n".join(lines) + "\n"
