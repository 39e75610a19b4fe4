"""SVG snapshots of the main screens at 80x24 and 160x48, from stored snapshot files.

The files fix the collection time, MACs and ports, and the header shows no
clock, so the pictures change only when the UI does. Update them with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tui_support

from netdoctor.tui.app import NetdoctorApp
from netdoctor.tui.source import SnapshotSource

SIZES = [(80, 24), (160, 48)]


class _SnapshotApp(NetdoctorApp):
    """The app over a stored file, with the path shown relative to the repository."""

    def __init__(self, path: Path) -> None:
        super().__init__(SnapshotSource(snapshot=path.relative_to(Path(__file__).resolve().parent.parent)))


async def _wait(pilot: Any) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _app(path: Path) -> _SnapshotApp:
    import os

    os.chdir(Path(__file__).resolve().parent.parent)
    return _SnapshotApp(path)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_findings_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(_app(tui_support.CALICO_3_NODES), terminal_size=size, run_before=_wait)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_mesh_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_mesh(pilot: Any) -> None:
        await _wait(pilot)
        await pilot.press("2", "down", "down", *["right"] * 5)
        await pilot.pause()

    assert snap_compare(_app(tui_support.LAB_8_NODES), terminal_size=size, run_before=open_mesh)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_raw_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_raw(pilot: Any) -> None:
        await _wait(pilot)
        await pilot.press("3", *"via")
        await pilot.pause()

    assert snap_compare(_app(tui_support.LAB_8_NODES), terminal_size=size, run_before=open_raw)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_fix_plan_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_fix(pilot: Any) -> None:
        await _wait(pilot)
        await pilot.press("f")
        # The dialog builds its plan in a worker; on a busy machine one pause is not enough.
        await _wait(pilot)

    assert snap_compare(_app(tui_support.LAB_8_NODES), terminal_size=size, run_before=open_fix)
