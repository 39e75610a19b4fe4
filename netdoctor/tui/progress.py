"""The refresh status line: what is being collected, with a progress bar, and the last error."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class RefreshStatus(Horizontal):
    """Shows per-node collection progress while a refresh runs, and a one-line status otherwise."""

    DEFAULT_CSS = """
    RefreshStatus {
        height: 1;
        background: $boost;
    }
    RefreshStatus #refresh-label {
        width: 1fr;
    }
    RefreshStatus ProgressBar {
        width: 40;
    }
    RefreshStatus.idle ProgressBar {
        display: none;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._states: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Label("loading…", id="refresh-label")
        yield ProgressBar(total=None, show_eta=False, id="refresh-bar")

    def start(self, what: str) -> None:
        """Show that a refresh of ``what`` began."""
        self._states = {}
        self.remove_class("idle")
        self.query_one("#refresh-label", Label).update(f"loading {what}…")
        self.query_one("#refresh-bar", ProgressBar).update(total=None, progress=0)

    def node_state(self, node: str, state: str) -> None:
        """Record one node's collection state and update the bar."""
        self._states[node] = state
        finished = sum(1 for value in self._states.values() if value in ("done", "failed"))
        failed = [name for name, value in self._states.items() if value == "failed"]
        current = [name for name, value in self._states.items() if value == "collecting"]
        text = f"collecting {', '.join(current) or '…'} ({finished}/{len(self._states)} nodes)"
        if failed:
            text += f", failed: {', '.join(failed)}"
        self.query_one("#refresh-label", Label).update(text)
        self.query_one("#refresh-bar", ProgressBar).update(total=len(self._states), progress=finished)

    def checking(self, text: str) -> None:
        """Show that the snapshot is loaded and the checks are running, with an indeterminate bar."""
        self.remove_class("idle")
        self.query_one("#refresh-label", Label).update(text)
        self.query_one("#refresh-bar", ProgressBar).update(total=None, progress=0)

    def finish(self, text: str) -> None:
        """Hide the bar and show a final status."""
        self.add_class("idle")
        self.query_one("#refresh-label", Label).update(text)
