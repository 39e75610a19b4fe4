"""The findings table, sorted by severity, and the filter typed after ``/``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from netdoctor.model import Finding, Severity
from netdoctor.tui.messages import FindingChosen

logger = logging.getLogger(__name__)

#: Column caps in cells: longer check ids and node lists are cut, a longer summary scrolls.
CHECK_WIDTH = 30
NODES_WIDTH = 40
SUMMARY_WIDTH = 160

#: Rows added to the table in one go. A rebuild adds the first batch (and every row up to
#: the cursor) at once and the rest one batch per frame, so a keystroke in the filter is
#: drawn after one batch however many findings match. DataTable measures every cell of a
#: new row: 5,000 rows took about 0.5 s on a 2-core x86 VM, so batching matters there.
ROW_BATCH = 200

SEVERITY_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """A filter over findings: words that must all occur, and optional node and check ids.

    The text form is ``WORD... node:NAME check:ID``; words match the severity,
    check id, node names and summary, case-insensitively.
    """

    words: tuple[str, ...] = ()
    node: str | None = None
    check: str | None = None

    @classmethod
    def parse(cls, text: str, node: str | None = None) -> FindingFilter:
        """Parse the filter text; ``node`` is the node chosen in the nodes pane, overridden by ``node:``."""
        words: list[str] = []
        check = None
        for token in text.split():
            key, sep, value = token.partition(":")
            if sep and key == "node" and value:
                node = value
            elif sep and key == "check" and value:
                check = value
            else:
                words.append(token.lower())
        return cls(tuple(words), node, check)

    def matches(self, finding: Finding, haystack: str) -> bool:
        """Tell whether a finding passes; ``haystack`` is its lower-cased searchable text."""
        if self.node is not None and self.node not in finding.nodes:
            return False
        if self.check is not None and finding.check != self.check:
            return False
        return all(word in haystack for word in self.words)

    def describe(self) -> str:
        """Return the filter as the table's title shows it."""
        parts = list(self.words)
        if self.node:
            parts.append(f"node:{self.node}")
        if self.check:
            parts.append(f"check:{self.check}")
        return " ".join(parts)


def searchable_text(finding: Finding) -> str:
    """Return the lower-cased text that filter words match against."""
    return " ".join((finding.severity.label, finding.check, " ".join(finding.nodes), finding.summary)).lower()


class FindingsTable(DataTable[Text | str]):
    """Findings, worst first, one row each; the row cursor selects the finding shown in the detail pane."""

    DEFAULT_CSS = """
    FindingsTable {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        #: The findings that pass the filter, in table order. The table's rows lag behind
        #: this list while batches are added.
        self.shown: list[Finding] = []
        self._findings: list[tuple[Finding, str]] = []
        self._filter = FindingFilter()
        #: Counts rebuilds, so that a batch of rows left over from an earlier rebuild is dropped.
        self._generation = 0

    def _add_columns(self) -> None:
        # Widths come from every shown finding, so the header is drawn at its final width at
        # once rather than widening when later rows arrive or the table measures its cells.
        rows = [_row_text(finding) for finding in self.shown]

        def width(index: int, title: str, cap: int) -> int:
            return min(cap, max([len(title), *(len(row[index]) for row in rows)]))

        self.add_column("sev", key="severity", width=7)
        self.add_column("check", key="check", width=width(0, "check", CHECK_WIDTH))
        self.add_column("nodes", key="nodes", width=width(1, "nodes", NODES_WIDTH))
        self.add_column("summary", key="summary", width=width(2, "summary", SUMMARY_WIDTH))

    @property
    def current(self) -> Finding | None:
        """The finding under the cursor, if any."""
        if not self.shown or not 0 <= self.cursor_row < len(self.shown):
            return None
        return self.shown[self.cursor_row]

    def set_findings(self, findings: tuple[Finding, ...] | list[Finding]) -> None:
        """Replace the findings; they are shown sorted by severity, then check, nodes and summary."""
        ordered = sorted(findings, key=Finding.sort_key)
        self._findings = [(finding, searchable_text(finding)) for finding in ordered]
        self._rebuild()

    def set_filter(self, finding_filter: FindingFilter) -> None:
        """Show only the findings that pass ``finding_filter``."""
        self._filter = finding_filter
        self._rebuild()

    def _rebuild(self) -> None:
        previous = self.current
        self.shown = [finding for finding, text in self._findings if self._filter.matches(finding, text)]
        self._generation += 1
        self.clear(columns=True)
        self._add_columns()

        cursor = self.shown.index(previous) if previous is not None and previous in self.shown else None
        first = ROW_BATCH if cursor is None else cursor + ROW_BATCH
        self.add_rows(_row_cells(finding) for finding in self.shown[:first])
        if cursor is not None:
            self.move_cursor(row=cursor, animate=False)
        self.post_message(FindingChosen(self.current))
        if len(self.shown) > first:
            self.call_after_refresh(self._add_batch, self._generation, first)

    def _add_batch(self, generation: int, start: int) -> None:
        if generation != self._generation:
            return
        end = start + ROW_BATCH
        self.add_rows(_row_cells(finding) for finding in self.shown[start:end])
        if end < len(self.shown):
            self.call_after_refresh(self._add_batch, generation, end)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(FindingChosen(self.current))


def _row_text(finding: Finding) -> tuple[str, str, str]:
    """Return the check, nodes and summary cells of a finding, with more than three nodes cut to ``+N``."""
    nodes = ", ".join(finding.nodes[:3]) + (f" +{len(finding.nodes) - 3}" if len(finding.nodes) > 3 else "")
    return finding.check, nodes, finding.summary


def _row_cells(finding: Finding) -> tuple[Text, str, str, str]:
    severity = Text(finding.severity.label, style=SEVERITY_STYLES[finding.severity])
    return (severity, *_row_text(finding))
