"""The vectorised route lookups give the same report as the Python ones.

Clusters with many node × pod subnet pairs resolve them with numpy
(:mod:`netdoctor.bulk`); smaller ones in Python. Each snapshot here is
checked both ways, by moving the threshold, and the findings must be equal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_cases import _case_dirs

from netdoctor import facts, synthetic
from netdoctor.capture.bundle import load_bundle
from netdoctor.engine import load_checks, run_checks
from netdoctor.model import ClusterSnapshot, Finding


def _findings(make: Callable[[], ClusterSnapshot], monkeypatch: pytest.MonkeyPatch,
              pairs: int) -> tuple[tuple[Finding, ...], tuple[object, ...]]:
    monkeypatch.setattr(facts, "BULK_MIN_PAIRS", pairs)
    # A new snapshot object, so the facts cached for the other run are not reused.
    snapshot = make()
    report = run_checks(snapshot, load_checks())
    primed = [node.routes for node in facts.cluster_facts(snapshot).nodes.values() if node.routes is not None]
    vectorised = [index._bulk_rows is not None for index in primed if index.primed_rows()]
    return report.findings, (report.gaps, vectorised)


def _both_ways(make: Callable[[], ClusterSnapshot],
               monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[Finding, ...], list[bool]]:
    """Return the findings, equal both ways, and per primed node whether numpy resolved its routes."""
    python, (python_gaps, python_used) = _findings(make, monkeypatch, 1 << 62)
    vectorised, (vectorised_gaps, vectorised_used) = _findings(make, monkeypatch, 0)
    assert not any(python_used)
    assert vectorised == python
    assert vectorised_gaps == python_gaps
    return vectorised, vectorised_used


@pytest.mark.parametrize(
    ("backend", "faults"),
    [(backend, [fault for fault, (_, backends) in synthetic.FAULTS.items() if backend in backends])
     for backend in synthetic.BACKENDS],
)
def test_synthetic_faults_same_both_ways(backend: str, faults: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    found, used = _both_ways(lambda: synthetic.generate(backend, 14, faults, seed=3), monkeypatch)
    assert {finding.check for finding in found} >= synthetic.expected_checks(faults)
    assert used and all(used)


@pytest.mark.parametrize("case", _case_dirs(), ids=lambda case: f"{case.parent.parent.name}/{case.name}")
def test_case_same_both_ways(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _both_ways(lambda: load_bundle(case), monkeypatch)
