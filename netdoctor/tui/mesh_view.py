"""The mesh view: an N x N matrix of path verdicts that renders only the cells on screen.

Row and column labels stay in place while the cells scroll, so a 1,000-node
matrix stays readable. The cursor cell's verdict is sent as :class:`CellChosen`.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from netdoctor.mesh import PathMatrix, PathStatus
from netdoctor.tui.messages import CellChosen

#: Screen columns per matrix cell.
CELL_WIDTH = 2
#: Widest node name shown in a row label.
MAX_LABEL_NAME = 16

CELL_LOOKS = {
    PathStatus.OK: ("●", Style(color="green")),
    PathStatus.BROKEN: ("✖", Style(color="red", bold=True)),
    PathStatus.UNKNOWN: ("?", Style(color="yellow", dim=True)),
    PathStatus.SELF: ("·", Style(dim=True)),
}
_CURSOR = Style(reverse=True)
_LABEL = Style(bold=True)
_HEADER = Style(dim=True)
_HEADER_CURSOR = Style(bold=True, color="cyan")


class MeshView(ScrollView, can_focus=True):
    """Rows are source nodes, columns are target nodes; each cell shows whether a path to the target's pods exists."""

    DEFAULT_CSS = """
    MeshView {
        height: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1, 0)", "Up", show=False),
        Binding("down", "move(1, 0)", "Down", show=False),
        Binding("left", "move(0, -1)", "Left", show=False),
        Binding("right", "move(0, 1)", "Right", show=False),
        Binding("pageup", "move(-20, 0)", "Page up", show=False),
        Binding("pagedown", "move(20, 0)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        #: The matrix shown, or None before the first report.
        self.matrix: PathMatrix | None = None
        #: The cursor as ``(row, column)``.
        self.cursor: tuple[int, int] = (0, 0)
        self._label_width = 0
        self._header_height = 0

    def set_matrix(self, matrix: PathMatrix) -> None:
        """Show a new matrix, keeping the cursor inside it."""
        self.matrix = matrix
        count = len(matrix)
        digits = len(str(max(count, 1)))
        names = max((len(name) for name in matrix.names), default=0)
        self._label_width = digits + 1 + min(names, MAX_LABEL_NAME) + 1
        self._header_height = digits
        self.virtual_size = Size(self._label_width + count * CELL_WIDTH, self._header_height + count)
        row, column = self.cursor
        self.cursor = (min(row, max(count - 1, 0)), min(column, max(count - 1, 0)))
        self.refresh()
        self._announce()

    def select(self, row: int, column: int) -> None:
        """Move the cursor to a cell, scroll it into view and announce its verdict."""
        if self.matrix is None or not len(self.matrix):
            return
        last = len(self.matrix) - 1
        self.cursor = (max(0, min(row, last)), max(0, min(column, last)))
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def action_move(self, rows: int, columns: int) -> None:
        """Move the cursor by rows and columns."""
        self.select(self.cursor[0] + rows, self.cursor[1] + columns)

    def action_jump(self, index: int) -> None:
        """Move the cursor to the first (0) or last (-1) row."""
        if self.matrix is not None:
            self.select(index % max(len(self.matrix), 1), self.cursor[1])

    def _visible_cells(self) -> tuple[int, int]:
        columns = max(1, (self.size.width - self._label_width) // CELL_WIDTH)
        rows = max(1, self.size.height - self._header_height)
        return rows, columns

    def _scroll_to_cursor(self) -> None:
        rows, columns = self._visible_cells()
        row, column = self.cursor
        first_row = int(self.scroll_offset.y)
        first_column = int(self.scroll_offset.x) // CELL_WIDTH
        if row < first_row:
            first_row = row
        elif row >= first_row + rows:
            first_row = row - rows + 1
        if column < first_column:
            first_column = column
        elif column >= first_column + columns:
            first_column = column - columns + 1
        self.scroll_to(x=first_column * CELL_WIDTH, y=first_row, animate=False, immediate=True)

    def _announce(self) -> None:
        if self.matrix is not None and len(self.matrix):
            self.post_message(CellChosen(self.matrix.cell(*self.cursor)))

    def on_click(self, event: events.Click) -> None:
        if self.matrix is None or event.x < self._label_width or event.y < self._header_height:
            return
        column = int(self.scroll_offset.x) // CELL_WIDTH + (event.x - self._label_width) // CELL_WIDTH
        row = int(self.scroll_offset.y) + event.y - self._header_height
        if row < len(self.matrix) and column < len(self.matrix):
            self.select(row, column)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self.matrix is None or not len(self.matrix):
            text = "no nodes" if y == 0 and self.matrix is not None else ""
            return Strip([Segment(text.ljust(width))])
        first_column = int(self.scroll_offset.x) // CELL_WIDTH
        columns = range(first_column, min(len(self.matrix), first_column + self._visible_cells()[1]))
        if y < self._header_height:
            segments = self._header_segments(y, columns)
        else:
            row = int(self.scroll_offset.y) + y - self._header_height
            if row >= len(self.matrix):
                return Strip([Segment(" " * width)])
            segments = self._row_segments(row, columns)
        return Strip(segments).adjust_cell_length(width)

    def _header_segments(self, y: int, columns: range) -> list[Segment]:
        assert self.matrix is not None
        digits = self._header_height
        segments = [Segment(" " * self._label_width)]
        for column in columns:
            number = str(column + 1).rjust(digits)
            style = _HEADER_CURSOR if column == self.cursor[1] else _HEADER
            segments.append(Segment(number[y].ljust(CELL_WIDTH), style))
        return segments

    def _row_segments(self, row: int, columns: range) -> list[Segment]:
        assert self.matrix is not None
        digits = self._header_height
        name = self.matrix.names[row][:MAX_LABEL_NAME]
        label = f"{row + 1:>{digits}} {name}".ljust(self._label_width)
        segments = [Segment(label, _HEADER_CURSOR if row == self.cursor[0] else _LABEL)]
        for column in columns:
            mark, style = CELL_LOOKS[self.matrix.cell(row, column).status]
            if (row, column) == self.cursor:
                style = style + _CURSOR
            segments.append(Segment(mark.ljust(CELL_WIDTH), style))
        return segments
