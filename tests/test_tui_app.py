"""Pilot tests of the TUI over the stored snapshots, the shared capture cases and real namespaces."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nslib
import pytest
import tui_support
from textual.widgets import Static

from netdoctor.engine import Report
from netdoctor.mesh import PathStatus
from netdoctor.model import ClusterSnapshot
from netdoctor.tui import app as app_module
from netdoctor.tui.app import RUNBOOK_NAME, NetdoctorApp
from netdoctor.tui.detail import styled_literals
from netdoctor.tui.findings import FindingFilter, FindingsTable
from netdoctor.tui.fix_plan import FixPlanScreen
from netdoctor.tui.help import HelpScreen
from netdoctor.tui.mesh_view import MeshView
from netdoctor.tui.nodes import NodesTree
from netdoctor.tui.source import ProgressCallback, SnapshotSource, diagnose


def _text(parent: Any, selector: str) -> str:
    """Return the plain text of a Static or Label."""
    return str(parent.query_one(selector, Static).content)


async def _loaded(app: NetdoctorApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("case", tui_support.case_dirs(), ids=lambda path: path.name)
@tui_support.run_async
async def test_case_findings_match_engine(case: Path) -> None:
    source = SnapshotSource(bundle=case)
    expected = diagnose(source.load()).findings
    app = NetdoctorApp(source)

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        table = app.query_one(FindingsTable)

        assert app.report is not None
        assert table.shown == sorted(expected, key=lambda finding: finding.sort_key())
        assert f"{len(app.report.snapshot.nodes)} nodes" in app.sub_title
        await pilot.press("down", "up")
        await pilot.pause()
        detail = _text(app, "#detail-body")
        if expected:
            assert expected[0].summary in detail
        else:
            assert detail.startswith("No findings: ")


@tui_support.run_async
async def test_filter_by_word_node_and_check() -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.CALICO_3_NODES))

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        table = app.query_one(FindingsTable)
        assert {finding.check for finding in table.shown} == {"blackhole-route", "route-missing"}

        await pilot.press("slash", *"blackhole")
        await pilot.pause()
        assert [finding.check for finding in table.shown] == ["blackhole-route"]

        await pilot.press("escape")
        await pilot.press("slash", *"check:route-missing")
        await pilot.pause()
        assert [finding.check for finding in table.shown] == ["route-missing"]

        await pilot.press("escape")
        await pilot.press("slash", *"node:node2")
        await pilot.pause()
        assert table.shown == []


def test_filter_parse_tokens() -> None:
    parsed = FindingFilter.parse("MTU node:n2 check:mtu-mismatch docker0", node="n1")

    assert parsed.words == ("mtu", "docker0")
    assert parsed.node == "n2"
    assert parsed.check == "mtu-mismatch"


@tui_support.run_async
async def test_node_selection_filters_findings() -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.CALICO_3_NODES))

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        tree = app.query_one(NodesTree)
        tree.focus()
        await pilot.press("down", "down", "enter")
        await pilot.pause()

        assert app.query_one(FindingsTable).shown == []
        node2 = tree.root.children[1]
        assert node2.is_expanded
        labels = [str(child.label) for child in node2.children]
        assert labels[0].startswith("interfaces")
        assert labels[1].startswith("routes")


@tui_support.run_async
async def test_finding_detail_shows_evidence_and_explanation() -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.CALICO_3_NODES))

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        detail = _text(app, "#detail-body")

        assert "blackhole-route" in detail
        assert "node1 routes: blackhole 10.233.70.192/26 proto bird" in detail
        assert "Why it matters" in detail


@tui_support.run_async
async def test_mesh_shows_broken_pair_reason() -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.LAB_8_NODES))

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("2")
        await pilot.press("down", "down", *["right"] * 5)
        await pilot.pause()

        assert app.query_one(MeshView).cursor == (2, 5)
        reason = _text(app, "#mesh-reason")
        assert reason.startswith("node3 → node6: broken.")
        summary = _text(app, "#mesh-summary")
        assert "1 of 56 pairs broken: node3→node6" in summary


@tui_support.run_async
async def test_raw_view_search() -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.LAB_8_NODES))

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("3", *"flannel.1")
        await pilot.pause()

        status = _text(app, "#raw-status")
        lines = app.query_one("#raw-log").lines
        assert status.startswith("node1 routes:")
        assert "lines match 'flannel.1'" in status
        assert all("flannel.1" in line for line in lines)
        assert len([line for line in lines if " via " in line]) == 7


@tui_support.run_async
async def test_help_and_command_palette() -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.LAB_8_NODES))

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")

        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Refresh", "Filter", "Fix plan", "Mesh", "Raw", "Runbook", "Bundle", "Help"):
            assert title in titles


@tui_support.run_async
async def test_runbook_export(tmp_path: Path) -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.CALICO_3_NODES), output_dir=tmp_path)

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("e")
        await pilot.pause()

    text = (tmp_path / RUNBOOK_NAME).read_text()
    assert text.startswith("# netdoctor runbook")
    assert "[error] blackhole-route" in text
    assert "`blackhole 10.233.70.192/26 proto bird`" in text


@tui_support.run_async
async def test_fix_plan_from_bundle_cannot_apply(tmp_path: Path) -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.LAB_8_NODES), output_dir=tmp_path)

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("f")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FixPlanScreen)
        body = _text(screen, "#fix-body")
        assert "[safe] Add the route to node6's pod subnet 10.244.6.0/24" in body
        assert "ip -n nd-tui8-node3" not in body
        hint = _text(screen, "#fix-hint")
        assert hint.startswith("cannot apply here:")

        await pilot.press("a")
        await pilot.press("s")
        await pilot.pause()

    script = (tmp_path / "netdoctor-fix-plan.sh").read_text()
    assert "ip route add 10.244.6.0/24 via 10.244.6.0 dev flannel.1 onlink" in script


class _BlockedSource(SnapshotSource):
    """A source whose load waits until the test releases it, standing for a slow node."""

    def __init__(self, snapshot: ClusterSnapshot, gate: threading.Event) -> None:
        super().__init__()
        object.__setattr__(self, "_result", snapshot)
        object.__setattr__(self, "_gate", gate)

    def describe(self) -> str:
        return "slow source"

    def load(self, progress: ProgressCallback | None = None) -> ClusterSnapshot:
        if progress is not None:
            progress("node1", "done")
            progress("node2", "collecting")
        self._gate.wait(timeout=30)  # type: ignore[attr-defined]
        return self._result  # type: ignore[attr-defined, no-any-return]


@tui_support.run_async
async def test_slow_source_keeps_ui_responsive() -> None:
    gate = threading.Event()
    snapshot = tui_support.direct_routing_cluster(3)
    app = NetdoctorApp(_BlockedSource(snapshot, gate))

    async with app.run_test(size=(120, 40)) as pilot:
        # The worker's progress message arrives after the first frame; a busy machine delays it.
        for _ in range(100):
            status = _text(app, "#refresh-label")
            if "collecting node2" in status:
                break
            await pilot.pause(0.05)
        assert "collecting node2 (1/2 nodes)" in status
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert app.report is None

        await pilot.press("escape")
        gate.set()
        await _loaded(app, pilot)
        assert app.report is not None
        assert "3 nodes" in _text(app, "#refresh-label")


@tui_support.run_async
async def test_nodes_shown_while_checks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real checks run once the gate opens, and until then the app has only the snapshot.
    gate = threading.Event()

    def gated_diagnose(snapshot: ClusterSnapshot) -> Report:
        gate.wait(timeout=30)
        return diagnose(snapshot)

    monkeypatch.setattr(app_module, "diagnose", gated_diagnose)
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.CALICO_3_NODES))

    async with app.run_test(size=(120, 40)) as pilot:
        tree = app.query_one(NodesTree)
        for _ in range(100):
            if len(tree.root.children) == 3:
                break
            await pilot.pause(0.05)
        await pilot.pause()

        assert app.report is None
        assert len(tree.root.children) == 3
        assert "3 nodes" in app.sub_title
        assert "checking 3 nodes" in _text(app, "#refresh-label")
        assert app.query_one(FindingsTable).row_count == 0
        assert all(str(line.label).startswith("…") for line in tree.root.children)

        tree.root.children[0].expand()
        await pilot.pause()
        categories = [str(line.label) for line in tree.root.children[0].children]
        assert any(label.startswith("interfaces (") for label in categories)

        gate.set()
        await _loaded(app, pilot)
        assert app.report is not None
        assert app.query_one(FindingsTable).row_count > 0
        assert not any(str(line.label).startswith("…") for line in tree.root.children)


@tui_support.run_async
async def test_unreadable_source_reports_error(tmp_path: Path) -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tmp_path / "missing.json"))

    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(50):
            status = _text(app, "#refresh-label")
            if not status.startswith("loading"):
                break
            await pilot.pause(0.1)

        status = _text(app, "#refresh-label")
        assert "missing.json not found" in status
        assert app.report is None


@nslib.needs_root
@pytest.mark.netns
@tui_support.run_async
async def test_netns_source_and_refresh() -> None:
    with nslib.namespaces("tuia", "tuib") as (first, second):
        nslib.sh(f"ip -n {first.name} link add eth0 type veth peer name eth0 netns {second.name}")
        nslib.sh(f"ip -n {first.name} addr add 10.9.0.1/24 dev eth0")
        nslib.sh(f"ip -n {second.name} addr add 10.9.0.2/24 dev eth0")
        for namespace in (first, second):
            nslib.sh(f"ip -n {namespace.name} link set eth0 up")
        nslib.sh(f"ip -n {first.name} route add blackhole 10.77.0.0/24")
        app = NetdoctorApp(SnapshotSource(netns=f"{first.name},{second.name}"))

        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            assert app.report is not None
            assert app.report.snapshot.node_names == (first.name, second.name)

            await pilot.press("3", *"blackhole")
            await pilot.pause()
            assert app.query_one("#raw-log").lines == ["    1  blackhole 10.77.0.0/24"] or any(
                "blackhole 10.77.0.0/24" in line for line in app.query_one("#raw-log").lines)

            nslib.sh(f"ip -n {first.name} route del blackhole 10.77.0.0/24")
            await pilot.press("escape", "r")
            await _loaded(app, pilot)
            routes = app.report.snapshot.node(first.name).routes
            assert routes is not None
            assert all(route.destination != "10.77.0.0/24" for route in routes)


@pytest.fixture(scope="module")
def flannel_lab() -> Iterator[tuple[str, Path]]:
    """A 3-node flannel VXLAN lab whose node1 lost its route to node3's pods."""
    if os.geteuid() != 0 or shutil.which("etcd") is None:
        pytest.skip("the lab needs root and etcd")
    from netdoctor.lab.lifecycle import down, up
    from netdoctor.lab.state import ROOT_ENV

    root = Path(tempfile.mkdtemp(prefix="nd-tui-lab-"))
    name = f"tui{nslib.PREFIX.split('-')[1][-4:]}"
    previous = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(root)
    state = up(name, "flannel-vxlan", nodes=3, pods_per_node=1, state_dir=root / name)
    try:
        nslib.sh(f"ip -n {state.plan.node('node1').netns} route del {state.plan.node('node3').subnet}")
        yield name, root
    finally:
        down(name, root / name)
        shutil.rmtree(root, ignore_errors=True)
        if previous is None:
            os.environ.pop(ROOT_ENV, None)
        else:
            os.environ[ROOT_ENV] = previous


@nslib.needs_root
@pytest.mark.netns
@tui_support.run_async
async def test_lab_apply_and_undo_fix(flannel_lab: tuple[str, Path], tmp_path: Path) -> None:
    name, _ = flannel_lab
    netns = f"nd-{name}-node1"
    app = NetdoctorApp(SnapshotSource(lab=name), output_dir=tmp_path)

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        assert app.report is not None
        assert [(finding.check, finding.nodes) for finding in app.report.findings] == [("route-missing", ("node1",))]
        assert app.matrix is not None
        assert app.matrix.path("node1", "node3").status is PathStatus.BROKEN

        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FixPlanScreen)
        await pilot.press("a", "y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "10.244.3.0/24" in nslib.sh(f"ip -n {netns} route show 10.244.3.0/24").stdout
        results = app.screen.query_one("#fix-results").lines
        assert any("applied [safe] Add the route" in line for line in results)

        await pilot.press("u")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert nslib.sh(f"ip -n {netns} route show 10.244.3.0/24").stdout == ""

        await pilot.press("escape")
        await _loaded(app, pilot)
        assert [finding.check for finding in app.report.findings] == ["route-missing"]


def test_fix_plan_heredoc_lines_unprompted() -> None:
    from netdoctor.tui.fix_plan import _command_lines

    lines = ["mkdir -p /etc/sysctl.d", "cat > /etc/sysctl.d/90-netdoctor.conf <<'EOF'",
             "net.ipv4.ip_forward = 1", "EOF", "sysctl -p /etc/sysctl.d/90-netdoctor.conf"]

    assert [is_command for _, is_command in _command_lines(lines)] == [True, True, False, False, True]


@tui_support.run_async
async def test_clean_snapshot_says_no_findings(tmp_path: Path) -> None:
    from netdoctor import synthetic
    from netdoctor.model.serialize import dumps_snapshot

    path = tmp_path / "clean.json"
    path.write_text(dumps_snapshot(synthetic.generate("calico", 3)), encoding="utf-8")
    app = NetdoctorApp(SnapshotSource(snapshot=path))

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)

        assert app.query_one(FindingsTable).shown == []
        assert _text(app, "#detail-body").startswith("No findings: ")
        assert "on 3 node(s)" in _text(app, "#detail-body")


@tui_support.run_async
async def test_filter_without_match_says_so() -> None:
    app = NetdoctorApp(SnapshotSource(snapshot=tui_support.CALICO_3_NODES))

    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("slash", *"nothing-like-this")
        await pilot.pause()

        assert app.query_one(FindingsTable).shown == []
        assert _text(app, "#detail-body") == "No finding matches the filter."


def test_explanation_literals_lose_markers() -> None:
    text = styled_literals("Run ``ip route`` and ``bridge fdb``, then check ``x")
    assert text.plain == "Run ip route and bridge fdb, then check ``x"
    styled = [text.plain[span.start:span.end] for span in text.spans]
    assert styled == ["ip route", "bridge fdb"]
