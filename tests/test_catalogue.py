"""Conformance of the check catalogue: ids, registration, documentation and backends."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import netdoctor.checks
from netdoctor import engine
from netdoctor.checks import CATALOGUE
from netdoctor.model import Severity

KEBAB_CASE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
CHECK_IDS = sorted(CATALOGUE)


def import_all_check_modules() -> list[str]:
    """Import every module of ``netdoctor.checks`` and return their short names."""
    names = []
    for module in pkgutil.iter_modules(netdoctor.checks.__path__):
        importlib.import_module(f"netdoctor.checks.{module.name}")
        names.append(module.name)
    return sorted(names)


def spec_of(check_id: str) -> engine.CheckSpec:
    (spec,) = engine.load_checks([check_id])
    return spec


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_id_is_kebab_case(check_id: str) -> None:
    assert KEBAB_CASE.match(check_id), f"{check_id!r} is not kebab-case"


def test_catalogue_matches_registrations() -> None:
    modules = import_all_check_modules()
    registered = {check_id: spec.function.__module__ for check_id, spec in engine._REGISTRY.items()}

    assert set(CATALOGUE.values()) <= set(modules), "the catalogue names modules that do not exist"
    assert set(registered) == set(CATALOGUE)
    for check_id, module in CATALOGUE.items():
        assert registered[check_id] == f"netdoctor.checks.{module}", check_id


def test_catalogue_ids_unique_ignoring_case() -> None:
    lowered = [check_id.lower() for check_id in CATALOGUE]

    assert len(lowered) == len(set(lowered))


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_doc_has_five_headings(check_id: str) -> None:
    spec = spec_of(check_id)
    sections = spec.sections()

    assert sections["Summary"], f"{check_id}: the docstring needs a summary line before the headings"
    for heading in engine.DOC_HEADINGS:
        assert sections.get(heading), f"{check_id}: missing or empty section {heading!r}"
    positions = [spec.doc.index(f"{heading}:") for heading in engine.DOC_HEADINGS]
    assert positions == sorted(positions), f"{check_id}: sections out of order"


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_metadata_is_valid(check_id: str) -> None:
    spec = spec_of(check_id)

    assert spec.title.strip()
    assert isinstance(spec.severity, Severity)
    assert spec.backends, f"{check_id}: no backends"
    assert set(spec.backends) <= set(engine.BACKENDS)
    assert len(spec.backends) == len(set(spec.backends))
    assert "any" not in spec.backends or spec.backends == ("any",), f"{check_id}: 'any' combined with others"


CASES = Path(__file__).resolve().parent.parent / "fixtures" / "cases"

#: Checks whose fixture pair is still being written; each is an expected failure
#: (strict), so the mark has to go once its pair exists.
PAIRS_PENDING: frozenset[str] = frozenset()


def _pair_params() -> list[object]:
    params = []
    for check_id in CHECK_IDS:
        marks = [pytest.mark.xfail(strict=True, reason="fixture pair not written yet")] if check_id in PAIRS_PENDING else []
        params.append(pytest.param(check_id, id=check_id, marks=marks))
    return params


@pytest.mark.parametrize("check_id", _pair_params())
def test_check_has_fixture_pair(check_id: str) -> None:
    for outcome in ("pass", "fail"):
        expected_file = CASES / f"{check_id}-{outcome}" / "expected.json"
        assert expected_file.is_file(), f"{check_id}: no fixture case {expected_file.parent.name}"
        expected = json.loads(expected_file.read_text())
        if outcome == "fail":
            assert check_id in {fault["kind"] for fault in expected["faults"]}, f"{expected_file}: fault not listed"
        else:
            assert check_id in expected["must_not_report"], f"{expected_file}: id not in must_not_report"
