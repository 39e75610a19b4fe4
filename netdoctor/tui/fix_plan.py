"""The fix plan dialog for a finding or a node."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from netdoctor.model import Finding


def plan_text(title: str, findings: list[Finding]) -> Text:
    """Render the fixes that address the given findings, grouped by fixer id."""
    text = Text()
    text.append(f"{title}\n\n", style="bold")
    by_fixer: dict[str, list[Finding]] = {}
    for finding in findings:
        for fixer in finding.fixes:
            by_fixer.setdefault(fixer, []).append(finding)
    if not by_fixer:
        text.append("No fixer addresses these findings; see each finding's explanation for the manual remedy.\n")
        return text
    for fixer, addressed in sorted(by_fixer.items()):
        text.append(f"{fixer}\n", style="bold cyan")
        for finding in addressed:
            text.append(f"  for {finding.check} on {', '.join(finding.nodes)}: {finding.summary}\n")
    # TODO: show each step with its safety class, and apply/undo, once the fixers framework can build plans.
    text.append(
        "\nThis installation cannot build fix plans yet, so the steps and their safety classes "
        "are not shown and nothing can be applied from here.\n",
        style="dim",
    )
    return text


class FixPlanScreen(ModalScreen[None]):
    """A modal that previews the fix plan of a finding or of every finding on a node."""

    DEFAULT_CSS = """
    FixPlanScreen {
        align: center middle;
    }
    FixPlanScreen > Vertical {
        width: 80%;
        height: 70%;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    FixPlanScreen #fix-hint {
        dock: bottom;
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f", "close", "Close", id="fix.close", tooltip="Close the fix plan")]

    def __init__(self, title: str, findings: list[Finding]) -> None:
        super().__init__()
        #: The findings whose fixes are shown.
        self.findings = findings
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll():
                yield Static(plan_text(self._title, self.findings), id="fix-body")
            yield Label("Escape closes", id="fix-hint")

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
