"""Conformance of the fixer registry with the check catalogue and with what the modules register."""

from __future__ import annotations

import re

from netdoctor.engine import catalogue
from netdoctor.fix import Safety, fixer_catalogue, fixes_for, load_fixers
from netdoctor.fixers import FIXES

KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def test_every_fixer_id_registered() -> None:
    specs = load_fixers()

    assert [spec.id for spec in specs] == sorted(fixer_catalogue())
    for spec in specs:
        assert KEBAB.match(spec.id), spec.id
        assert spec.doc, f"fixer {spec.id} has no docstring"


def test_every_referenced_fixer_exists() -> None:
    index = fixer_catalogue()
    for check_id, fixer_ids in FIXES.items():
        assert check_id in catalogue(), f"FIXES names unknown check {check_id}"
        for fixer_id in fixer_ids:
            assert fixer_id in index, f"{check_id} references unknown fixer {fixer_id}"


def test_every_check_has_a_fixer() -> None:
    for check_id in catalogue():
        assert fixes_for(check_id), f"check {check_id} has no fixer"


def test_fixer_checks_match_index() -> None:
    for spec in load_fixers():
        for check_id in spec.checks:
            assert spec.id in FIXES[check_id], f"{spec.id} declares {check_id}, but FIXES does not list it there"


def test_disruptive_fixers_say_why() -> None:
    for spec in load_fixers():
        doc = spec.doc.lower()
        assert any(level in doc for level in ("safe", "disruptive", "display-only")), (
            f"fixer {spec.id} does not state its safety level and why")


def test_safety_levels_ordered() -> None:
    assert Safety.DISPLAY_ONLY < Safety.DISRUPTIVE < Safety.SAFE
    assert Safety.parse("display-only") is Safety.DISPLAY_ONLY
    assert Safety.DISRUPTIVE.label == "disruptive"
