"""The help dialog: the key bindings and the filter syntax."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

FILTER_HELP = """\
## Filter

Press `/` and type. Every word must occur in the severity, check id, node names
or summary (case-insensitive). `node:NAME` keeps findings of one node and
`check:ID` keeps one check, for example `/ mtu node:node2`. Selecting a node
in the nodes pane sets `node:` too; select the `cluster` line to clear it.
`Escape` clears the filter.

## Mesh view

Rows are source nodes and columns are target nodes. A cell reads `●` when the
source has a route or tunnel to the target's pod subnet, `✖` when it is broken,
`?` when the snapshot lacks the data and `·` on the diagonal. Arrow keys move
the cursor; the line under the matrix gives the reason.
"""


class HelpScreen(ModalScreen[None]):
    """A modal that lists the app's bindings with their ids, so users can remap keys."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 80%;
        height: 80%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self._entries = bindings

    def compose(self) -> ComposeResult:
        lines = ["# netdoctor keys", "", "| key | action | binding id |", "|---|---|---|"]
        for binding in self._entries:
            key = binding.key_display or binding.key
            lines.append(f"| `{key}` | {binding.tooltip or binding.description} | `{binding.id or ''}` |")
        lines += ["", "`Ctrl+P` opens the command palette, which lists every action.", "", FILTER_HELP]
        with VerticalScroll():
            yield Markdown("\n".join(lines), id="help-text")

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
