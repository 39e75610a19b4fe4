"""Smoke test of the TUI and startup benchmarks at their ``--quick`` sizes: they run and report timings.

Nothing here compares a timing with a limit; the figures are read from
``scripts/bench`` on a quiet machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_tui_figures_quick() -> None:
    import bench_tui

    figures = bench_tui.figures(quick=True)

    assert [figure.name.split(",")[0] for figure in figures] == [
        "TUI first frame", "TUI findings shown", "TUI filter keystroke",
    ]
    for figure in figures:
        assert figure.measured.median > 0, figure.name
        assert figure.floor.median > 0, figure.name
    keystrokes = figures[2]
    assert len(keystrokes.measured.runs) == len(bench_tui.FILTER_TEXT)
    snapshots = figures[0].notes["snapshots"]
    assert [snapshot["nodes"] for snapshot in snapshots] == [bench_tui.SMALL_NODES, bench_tui.QUICK_LARGE_NODES]


def test_startup_figures_quick() -> None:
    import bench_startup

    figures = bench_startup.figures(quick=True)

    assert len(figures) == 2
    for figure in figures:
        assert figure.measured.median > 0, figure.name
        assert figure.floor.median > 0, figure.name
    assert figures[0].target == 3.0
    modules = [row["module"] for row in figures[0].notes["slowest_imports"]]
    assert "netdoctor.cli" in modules


def test_benchmarks_registered() -> None:
    import run

    assert {"tui", "startup"} <= set(run.MODULES)
