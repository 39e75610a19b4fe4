"""Smoke test of the collection benchmark at its quick size: it builds, measures and cleans up."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import nslib
import pytest

pytestmark = [nslib.needs_root, pytest.mark.netns]

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench_collect() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_collect

        yield bench_collect
    finally:
        sys.path.remove(str(BENCHMARKS))


def namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def test_quick_figures_measured(bench_collect: ModuleType) -> None:
    before = namespaces()

    figures = bench_collect.figures(quick=True)

    assert [figure.name for figure in figures] == [
        "collect: 2,000 routes", "collect: node with 2,000 routes, 50 interfaces",
    ]
    for figure in figures:
        assert figure.measured.median > 0
        assert figure.floor.median > 0
        assert all(run > 0 for run in figure.measured.runs + figure.floor.runs)
        assert figure.measured.peak_rss_mib is not None and figure.measured.peak_rss_mib > 0
        assert figure.floor.peak_rss_mib is not None and figure.floor.peak_rss_mib > 0
        assert figure.notes["kernel_routes_read"] >= 2_000
    assert namespaces() - before == set()


def test_node_deleted_on_interrupt(bench_collect: ModuleType) -> None:
    before = namespaces()

    with pytest.raises(KeyboardInterrupt), bench_collect.large_node(10, 4) as namespace:
        assert namespace in namespaces()
        raise KeyboardInterrupt

    assert namespaces() - before == set()
