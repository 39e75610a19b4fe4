"""The printed fix script for every capture case, pinned as text.

Each case's script lives in ``tests/fix_scripts/<case>.sh``. After a reviewed
change to a fixer, rewrite them with ``NETDOCTOR_UPDATE_SCRIPTS=1 pytest
tests/test_fix_render.py`` and read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netdoctor.capture.bundle import load_bundle
from netdoctor.engine import load_checks, run_checks
from netdoctor.fix import Safety, build_plans, render_step
from netdoctor.runbook import render_runbook, render_script

REPOSITORY = Path(__file__).resolve().parent.parent
EXPECTED = Path(__file__).resolve().parent / "fix_scripts"
CASE_ROOTS = [REPOSITORY / "fixtures" / "cases", REPOSITORY.parent / "shared" / "cases"]


def _cases() -> list[Path]:
    found: list[Path] = []
    for root in CASE_ROOTS:
        if root.is_dir():
            found += sorted(path for path in root.iterdir() if (path / "expected.json").is_file())
    return found


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.name)
def test_case_script_matches_pinned(case: Path) -> None:
    report = run_checks(load_bundle(case), load_checks())
    script = render_script(build_plans(report), report.snapshot.source)
    expected = EXPECTED / f"{case.name}.sh"
    if os.environ.get("NETDOCTOR_UPDATE_SCRIPTS"):
        expected.write_text(script)
    assert expected.is_file(), f"no pinned script for {case.name}; run with NETDOCTOR_UPDATE_SCRIPTS=1 once"
    assert script == expected.read_text()


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.name)
def test_case_script_is_safe_to_paste(case: Path) -> None:
    report = run_checks(load_bundle(case), load_checks())
    plans = build_plans(report)
    script = render_script(plans, report.snapshot.source)
    commands = [line for line in script.splitlines() if line and not line.startswith("#")]
    safe_commands = [line for plan in plans for step in plan.steps if step.safety == Safety.SAFE
                     for line in render_step(plan, step)]
    for line in commands:
        assert line in safe_commands, f"unguarded command from a non-safe step: {line}"
    for word in (" -F", " --flush", "-P FORWARD ACCEPT", " -X"):
        assert word not in script


def test_blackhole_case_removes_then_notes_bgp() -> None:
    case = REPOSITORY.parent / "shared" / "cases" / "calico-stale-blackhole-for-moved-block"
    if not case.is_dir():
        pytest.skip("the shared case folder is not beside the repository")
    report = run_checks(load_bundle(case), load_checks())
    (plan,) = build_plans(report)

    kinds = [step.action.kind for step in plan.steps if step.action]
    assert kinds == ["route-del"]
    assert plan.steps[0].safety == Safety.DISRUPTIVE
    assert "# ip route del blackhole 10.233.70.192/26 proto bird" in render_script([plan], "test")
    # BIRD owns the routes to peers' blocks on a Calico node, so the route itself is only shown.
    notes = [step for step in plan.steps if step.action is None and step.check == "route-missing"]
    assert [step.safety for step in notes] == [Safety.DISPLAY_ONLY]


def test_runbook_has_every_section() -> None:
    case = REPOSITORY.parent / "shared" / "cases" / "flannel-docker0-mtu-mismatch"
    if not case.is_dir():
        pytest.skip("the shared case folder is not beside the repository")
    report = run_checks(load_bundle(case), load_checks())
    text = render_runbook(build_plans(report), report.snapshot.source)

    assert text.count("## node") == 3
    for heading in ("**Why:**", "**Commands:**", "**Verify:**", "**Roll back:**"):
        assert text.count(heading) == 9, heading
    assert "ip link set dev docker0 mtu 1500" in text
    # Pod veths are never lowered from the host side: their pods are recreated after Docker has --mtu.
    assert "Lower the MTU of veth62fa8c8" not in text
    assert text.index("Lower the MTU of docker0") < text.index("Start Docker with --mtu=1450")
    assert text.index("Start Docker with --mtu=1450") < text.index("Recreate the pods behind veth")


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.name)
def test_disruptive_steps_say_why(case: Path) -> None:
    report = run_checks(load_bundle(case), load_checks())
    for plan in build_plans(report):
        for step in plan.steps:
            if step.safety == Safety.DISRUPTIVE:
                assert "confirmation" in step.why, f"{plan.node} {step.id}: the why does not say what it interrupts"
