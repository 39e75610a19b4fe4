"""The finding detail pane: summary, evidence lines, the check's explanation and the fixes."""

from __future__ import annotations

import textwrap

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from netdoctor.engine import CheckSpec
from netdoctor.model import Finding
from netdoctor.tui.findings import SEVERITY_STYLES

#: The check doc sections shown under a finding, in order.
EXPLANATION_HEADINGS = ("Why it matters", "What it checks", "Known problems")


def reflow(body: str) -> str:
    """Join the wrapped lines of a docstring section into paragraphs; list items and indented lines stay."""
    lines = body.splitlines()
    if len(lines) > 1:
        lines = [lines[0], *textwrap.dedent("\n".join(lines[1:])).splitlines()]
    paragraphs: list[str] = []
    for line in lines:
        starts_block = not line.strip() or line.startswith((" ", "-", "*")) or line.lstrip()[:2] in ("- ", "* ")
        if paragraphs and paragraphs[-1] and not starts_block and not paragraphs[-1].startswith(" "):
            paragraphs[-1] += " " + line.strip()
        else:
            paragraphs.append(line.rstrip())
    return "\n".join(paragraphs)


def styled_literals(body: str) -> Text:
    """Return a docstring section as text, styling its reStructuredText literals and dropping their double backticks."""
    pieces = body.split("``")
    if len(pieces) % 2 == 0:
        # An unpaired marker opens no literal, so it stays as written.
        pieces[-2:] = [pieces[-2] + "``" + pieces[-1]]
    text = Text()
    for number, piece in enumerate(pieces):
        # Prose and literals alternate, starting with prose.
        text.append(piece, style="bold cyan" if number % 2 else "")
    return text


def render_finding(finding: Finding, spec: CheckSpec | None) -> Text:
    """Render a finding with its evidence and the explanation from its check's documentation."""
    parts: list[Text] = []
    title = Text.assemble(
        (f"{finding.severity.label.upper()} ", SEVERITY_STYLES[finding.severity]),
        (finding.check, "bold"),
        (f" — {spec.title}" if spec is not None else "", "dim"),
    )
    parts.append(title)
    parts.append(Text(finding.summary))
    parts.append(Text(f"nodes: {', '.join(finding.nodes) or 'cluster'}", style="dim"))

    parts.append(Text("\nEvidence", style="bold underline"))
    if not finding.evidence:
        parts.append(Text("  (the check gave no evidence lines)", style="dim"))
    for evidence in finding.evidence:
        where = f"{evidence.node or 'cluster'} {evidence.source}"
        if evidence.line is not None:
            where += f" line {evidence.line}"
        parts.append(Text.assemble(("  " + where + ": ", "cyan"), (evidence.item, "")))

    if spec is not None:
        sections = spec.sections()
        for heading in EXPLANATION_HEADINGS:
            body = sections.get(heading)
            if body:
                parts.append(Text(f"\n{heading}", style="bold underline"))
                parts.append(styled_literals(reflow(body)))

    parts.append(Text("\nFixes", style="bold underline"))
    if finding.fixes:
        parts.append(Text(f"  {', '.join(finding.fixes)} — press f for the fix plan"))
    else:
        parts.append(Text("  no fixer addresses this finding", style="dim"))
    return Text("\n").join(parts)


class FindingDetail(VerticalScroll):
    """A scrolling pane that shows one finding."""

    DEFAULT_CSS = """
    FindingDetail {
        height: 1fr;
        border-top: tall $primary-background;
        padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        yield Static("No finding selected.", id="detail-body")

    def show(self, finding: Finding | None, spec: CheckSpec | None, placeholder: str = "No finding selected.") -> None:
        """Show a finding, or ``placeholder`` when there is none."""
        body = self.query_one("#detail-body", Static)
        if finding is None:
            body.update(Text(placeholder, style="dim"))
        else:
            body.update(render_finding(finding, spec))
        self.scroll_home(animate=False)
