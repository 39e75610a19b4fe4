"""The TUI over a generated 1,000-node snapshot: it loads, filters, and renders only what is visible.

Timings are measured by hand, not asserted here, because the test machine's
speed varies; this test checks the structure that keeps the UI fast.
"""

from __future__ import annotations

import tui_support

from netdoctor.model import ClusterSnapshot
from netdoctor.tui.app import NetdoctorApp
from netdoctor.tui.findings import ROW_BATCH, FindingFilter, FindingsTable
from netdoctor.tui.mesh_view import MeshView
from netdoctor.tui.source import ProgressCallback, SnapshotSource


class _MemorySource(SnapshotSource):
    """A source that returns a snapshot built in memory."""

    def __init__(self, snapshot: ClusterSnapshot) -> None:
        super().__init__()
        object.__setattr__(self, "_result", snapshot)

    def describe(self) -> str:
        return "generated snapshot"

    def load(self, progress: ProgressCallback | None = None) -> ClusterSnapshot:
        return self._result  # type: ignore[attr-defined, no-any-return]


@tui_support.run_async
async def test_thousand_nodes_mesh_renders_visible_cells() -> None:
    snapshot = tui_support.direct_routing_cluster(1000, missing=(998, 999))
    app = NetdoctorApp(_MemorySource(snapshot))

    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.matrix is not None
        assert len(app.matrix) == 1000

        await pilot.press("2")
        await pilot.pause()
        view = app.query_one(MeshView)
        visible_rows = view.size.height
        visible_columns = view.size.width // 2
        assert app.matrix.evaluated() <= visible_rows * visible_columns

        await pilot.press("end", *["right"] * 120)
        await pilot.pause()
        assert view.cursor == (999, 120)
        assert view.scroll_offset.y > 900
        assert app.matrix.evaluated() <= 3 * visible_rows * visible_columns

        summary = str(app.query_one("#mesh-summary").content)
        assert "1000 nodes" in summary


@tui_support.run_async
async def test_filter_over_many_findings() -> None:
    app = NetdoctorApp(_MemorySource(tui_support.direct_routing_cluster(3)))

    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(FindingsTable)
        table.set_findings(tui_support.sample_findings(5000))
        await pilot.pause()
        assert len(table.shown) == 5000
        assert table.shown[0].severity.label == "error"

        await pilot.press("slash", *"number 4999")
        await pilot.pause()
        assert [finding.summary for finding in table.shown] == ["fault number 4999"]
        assert table.row_count == 1


@tui_support.run_async
async def test_findings_rows_added_in_batches() -> None:
    app = NetdoctorApp(_MemorySource(tui_support.direct_routing_cluster(3)))

    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(FindingsTable)

        table.set_findings(tui_support.sample_findings(5000))
        assert len(table.shown) == 5000
        assert table.row_count == ROW_BATCH
        for _ in range(200):
            if table.row_count == 5000:
                break
            await pilot.pause(0.05)
        assert table.row_count == 5000

        # A new filter drops the batches still due from the previous one.
        table.set_findings(tui_support.sample_findings(5000))
        table.set_filter(FindingFilter.parse("error"))
        for _ in range(100):
            await pilot.pause(0.02)
        assert table.row_count == len(table.shown)
        assert {finding.severity.label for finding in table.shown} == {"error"}

        table.move_cursor(row=len(table.shown) - 1, animate=False)
        last = table.current
        table.set_filter(FindingFilter.parse(""))
        assert table.current == last
        assert table.row_count >= table.shown.index(last) + 1
