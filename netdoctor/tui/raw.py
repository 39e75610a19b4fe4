"""The raw view: any captured source of any node as text, with a search that keeps matching lines."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Log, Select

from netdoctor.model import ClusterSnapshot
from netdoctor.tui.rawtext import RAW_SOURCES, available_sources, source_lines


class RawView(Vertical):
    """A node picker, a source picker, a search box and the source's lines."""

    DEFAULT_CSS = """
    RawView #raw-bar {
        height: 3;
    }
    RawView #raw-node {
        width: 30;
    }
    RawView #raw-source {
        width: 30;
    }
    RawView #raw-search {
        width: 1fr;
    }
    RawView #raw-status {
        height: 1;
        color: $text-muted;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._snapshot: ClusterSnapshot | None = None
        self._lines: list[str] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="raw-bar"):
            yield Select[str]([], prompt="node", id="raw-node", allow_blank=True)
            yield Select[str]([], prompt="source", id="raw-source", allow_blank=True)
            yield Input(placeholder="search (case-insensitive)", id="raw-search")
        yield Label("", id="raw-status")
        yield Log(id="raw-log", highlight=False)

    def set_snapshot(self, snapshot: ClusterSnapshot) -> None:
        """Offer the nodes of a new snapshot, keeping the chosen node and source when they still exist."""
        self._snapshot = snapshot
        node_select = self.query_one("#raw-node", Select)
        previous = node_select.value
        node_select.set_options([(name, name) for name in snapshot.node_names])
        if isinstance(previous, str) and previous in snapshot.node_names:
            node_select.value = previous
        elif snapshot.nodes:
            node_select.value = snapshot.nodes[0].name
        self._load()

    def show_source(self, node: str, source: str) -> None:
        """Show one source of one node; an unknown node or source leaves the view unchanged."""
        if self._snapshot is None or node not in self._snapshot.node_names:
            return
        self.query_one("#raw-node", Select).value = node
        self._offer_sources()
        source_select = self.query_one("#raw-source", Select)
        if source in available_sources(self._snapshot.node(node)):
            source_select.value = source
        self._load()

    def _offer_sources(self) -> None:
        assert self._snapshot is not None
        node = self.query_one("#raw-node", Select).value
        source_select = self.query_one("#raw-source", Select)
        if not isinstance(node, str):
            source_select.set_options([])
            return
        previous = source_select.value
        sources = available_sources(self._snapshot.node(node))
        source_select.set_options([(f"{name} ({RAW_SOURCES[name]})", name) for name in sources])
        if isinstance(previous, str) and previous in sources:
            source_select.value = previous
        elif sources:
            source_select.value = "routes" if "routes" in sources else sources[0]

    @on(Select.Changed, "#raw-node")
    def _node_changed(self) -> None:
        if self._snapshot is not None:
            self._load()

    @on(Select.Changed, "#raw-source")
    def _source_changed(self) -> None:
        self._show()

    @on(Input.Changed, "#raw-search")
    def _search_changed(self) -> None:
        self._show()

    def _load(self) -> None:
        self._offer_sources()
        self._show()

    def _show(self) -> None:
        log = self.query_one("#raw-log", Log)
        status = self.query_one("#raw-status", Label)
        node = self.query_one("#raw-node", Select).value
        source = self.query_one("#raw-source", Select).value
        log.clear()
        if self._snapshot is None or not isinstance(node, str) or not isinstance(source, str):
            status.update("no source captured")
            return
        self._lines = source_lines(self._snapshot.node(node), source)
        query = self.query_one("#raw-search", Input).value.strip().lower()
        if query:
            numbered = [f"{number:>5}  {line}" for number, line in enumerate(self._lines, 1) if query in line.lower()]
            status.update(f"{node} {source}: {len(numbered):,} of {len(self._lines):,} lines match {query!r}")
        else:
            numbered = [f"{number:>5}  {line}" for number, line in enumerate(self._lines, 1)]
            status.update(f"{node} {source}: {len(self._lines):,} lines")
        log.write_lines(numbered, scroll_end=False)
        log.scroll_home(animate=False)
