"""Every capture case must get the verdict its ``expected.json`` gives.

Cases come from ``fixtures/cases/`` and, when present, the shared case folder
beside the repository. A case passes when each expected fault's check reports
(at least) the listed nodes and no check in ``must_not_report`` reports at all.
A case whose expected check is not in the catalogue yet is an expected failure,
strict, so it turns into a pass the moment the check is registered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netdoctor.capture.bundle import load_bundle
from netdoctor.engine import catalogue, load_checks, run_checks

REPOSITORY = Path(__file__).resolve().parent.parent
CASE_ROOTS = [REPOSITORY / "fixtures" / "cases", REPOSITORY.parent / "shared" / "cases"]


def _case_dirs() -> list[Path]:
    found = []
    for root in CASE_ROOTS:
        if root.is_dir():
            found.extend(sorted(path for path in root.iterdir() if (path / "expected.json").is_file()))
    return found


def _params() -> list[object]:
    registered = set(catalogue())
    params = []
    for case in _case_dirs():
        expected = json.loads((case / "expected.json").read_text())
        missing = sorted({fault["kind"] for fault in expected.get("faults", [])} - registered)
        marks = [pytest.mark.xfail(strict=True, reason=f"check not registered yet: {', '.join(missing)}")] if missing else []
        params.append(pytest.param(case, id=f"{case.parent.parent.name}/{case.name}", marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_case_verdict(case: Path) -> None:
    expected = json.loads((case / "expected.json").read_text())
    snapshot = load_bundle(case)
    report = run_checks(snapshot, load_checks())

    assert not report.gaps, f"the case did not load or check cleanly: {report.gaps}"

    reported: dict[str, set[str]] = {}
    for finding in report.findings:
        reported.setdefault(finding.check, set()).update(finding.nodes)

    for fault in expected.get("faults", []):
        kind = fault["kind"]
        assert kind in reported, f"{kind} not reported; expected on {fault['nodes']}"
        missing_nodes = set(fault["nodes"]) - reported[kind]
        assert not missing_nodes, f"{kind} not reported on {sorted(missing_nodes)}"

    for kind in expected.get("must_not_report", []):
        summaries = [finding.summary for finding in report.findings if finding.check == kind]
        assert not summaries, f"false positive {kind}: {summaries}"
