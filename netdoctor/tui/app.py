"""The netdoctor Textual app: header, nodes pane, findings, detail, mesh and raw views.

Loading and checking run in one thread worker (group ``refresh``), so a slow or
unreachable node never blocks input; the worker reports per-node progress as
messages and its errors reach one handler, :meth:`NetdoctorApp.on_worker_state_changed`.
The worker sends the loaded snapshot before it runs the checks, so the header,
the nodes pane and the raw view fill in while a large cluster is still checked,
and the findings, badges and mesh follow with the report.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from netdoctor.engine import CheckSpec, Report, load_checks
from netdoctor.mesh import PathMatrix, PathResult, PathStatus, path_matrix
from netdoctor.sources import SourceError
from netdoctor.tui.detail import FindingDetail
from netdoctor.tui.findings import FindingFilter, FindingsTable
from netdoctor.tui.fix_plan import FixPlanScreen
from netdoctor.tui.help import HelpScreen
from netdoctor.tui.mesh_view import MeshView
from netdoctor.tui.messages import (
    CellChosen,
    FindingChosen,
    NodeChosen,
    NodeProgress,
    ReportReady,
    SnapshotLoaded,
)
from netdoctor.tui.nodes import NodesTree
from netdoctor.tui.progress import RefreshStatus
from netdoctor.tui.raw import RawView
from netdoctor.tui.runbook import runbook_markdown
from netdoctor.tui.source import SnapshotSource, diagnose

logger = logging.getLogger(__name__)

#: Largest cluster whose broken pairs are all evaluated during a refresh; larger
#: matrices are evaluated only where the mesh view looks.
MESH_SUMMARY_LIMIT = 300

#: The runbook file written by ``e``, in the app's output directory.
RUNBOOK_NAME = "netdoctor-runbook.md"


class NetdoctorApp(App[None]):
    """Browse one cluster snapshot: findings, their evidence and explanation, the node mesh and the raw sources."""

    TITLE = "netdoctor"

    CSS = """
    #findings-pane {
        width: 1fr;
    }
    #filter {
        display: none;
        height: 3;
    }
    #filter.visible {
        display: block;
    }
    #mesh-summary, #mesh-reason {
        height: auto;
        padding: 0 1;
    }
    #mesh-reason {
        border-top: tall $primary-background;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="Reload or collect the snapshot and rerun the checks"),
        Binding("slash", "filter", "Filter", key_display="/", id="filter",
                tooltip="Filter findings by words, node:NAME and check:ID"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter",
                tooltip="Clear the findings filter and the node selection"),
        Binding("f", "fix_plan", "Fix plan", id="fix-plan",
                tooltip="Preview the fix plan of the selected finding or node"),
        Binding("1", "show_tab('findings-tab')", "Findings", id="show-findings", tooltip="Show the findings"),
        Binding("2", "show_tab('mesh-tab')", "Mesh", id="show-mesh", tooltip="Show the node-to-node path matrix"),
        Binding("3", "show_tab('raw-tab')", "Raw", id="show-raw", tooltip="Show a captured source as text"),
        Binding("e", "export_runbook", "Runbook", id="export-runbook",
                tooltip=f"Write the findings as a Markdown runbook ({RUNBOOK_NAME})"),
        Binding("b", "capture_bundle", "Bundle", show=False, id="capture-bundle",
                tooltip="Capture a support bundle"),
        Binding("question_mark", "help", "Help", key_display="?", id="help", tooltip="Show keys and filter syntax"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave netdoctor"),
    ]

    def __init__(
        self,
        source: SnapshotSource,
        *,
        refresh_interval: float | None = None,
        output_dir: Path | None = None,
    ) -> None:
        super().__init__()
        #: Where the snapshot comes from.
        self.source = source
        #: Seconds between automatic refreshes, or None for manual refresh only.
        self.refresh_interval = refresh_interval
        #: The directory the runbook is written to (the working directory by default).
        self.output_dir = output_dir or Path.cwd()
        #: The report shown, or None before the first load completes.
        self.report: Report | None = None
        #: Check specs by id, for the explanations.
        self.specs: dict[str, CheckSpec] = {}
        #: The path matrix of the report's snapshot.
        self.matrix: PathMatrix | None = None
        self._node_filter: str | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with TabbedContent(initial="findings-tab", id="tabs"):
            with TabPane("Findings", id="findings-tab"), Horizontal():
                yield NodesTree(id="nodes")
                with Vertical(id="findings-pane"):
                    yield Input(placeholder="filter: words, node:NAME, check:ID", id="filter")
                    yield FindingsTable(id="findings")
                    yield FindingDetail(id="detail")
            with TabPane("Mesh", id="mesh-tab"):
                yield Label("", id="mesh-summary")
                yield MeshView(id="mesh")
                yield Static("", id="mesh-reason")
            with TabPane("Raw", id="raw-tab"):
                yield RawView(id="raw")
        yield RefreshStatus(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.source.describe()
        self.query_one(FindingsTable).focus()
        # The first load starts after the first paint: a CPU-bound load in the worker
        # thread holds the GIL for long stretches and would delay the paint.
        self.call_after_refresh(self.action_refresh)
        if self.refresh_interval:
            self.set_interval(self.refresh_interval, self.action_refresh, name="auto-refresh")

    # Loading

    def action_refresh(self) -> None:
        """Start loading the snapshot in the refresh worker; a running refresh is cancelled."""
        self.query_one(RefreshStatus).start(self.source.describe())
        self._load()

    @work(thread=True, exclusive=True, group="refresh", exit_on_error=False, name="refresh")
    def _load(self) -> None:
        worker = get_current_worker()

        def progress(node: str, state: str) -> None:
            if not worker.is_cancelled:
                self.post_message(NodeProgress(node, state))

        snapshot = self.source.load(progress)
        if worker.is_cancelled:
            return
        self.post_message(SnapshotLoaded(snapshot))
        report = diagnose(snapshot)
        specs = {spec.id: spec for spec in load_checks(report.checks)}
        matrix = path_matrix(snapshot)
        broken = matrix.broken_pairs() if len(matrix) <= MESH_SUMMARY_LIMIT else None
        if not worker.is_cancelled:
            self.post_message(ReportReady(report, specs, matrix, broken))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "refresh" or event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, SourceError):
            message = " ".join(str(error).split())
        else:
            logger.error("refresh of %s failed", self.source.describe(), exc_info=error)
            message = f"refresh failed: {type(error).__name__}: {error}"
        self.query_one(RefreshStatus).finish(message)
        self.notify(message, title="Cannot load the snapshot", severity="error", timeout=10)

    def on_node_progress(self, message: NodeProgress) -> None:
        self.query_one(NodesTree).set_state(message.node, message.state)
        self.query_one(RefreshStatus).node_state(message.node, message.state)

    def on_snapshot_loaded(self, message: SnapshotLoaded) -> None:
        snapshot = message.snapshot
        collected = snapshot.collected_at or "unknown time"
        self.sub_title = f"{self.source.describe()} · {len(snapshot.nodes)} nodes · snapshot {collected}"
        self.query_one(NodesTree).show_snapshot(snapshot)
        self.query_one(RawView).set_snapshot(snapshot)
        self.query_one(RefreshStatus).checking(f"checking {len(snapshot.nodes)} nodes…")

    def on_report_ready(self, message: ReportReady) -> None:
        self.report = message.report
        self.specs = message.specs
        self.matrix = message.matrix
        snapshot = message.report.snapshot
        self.sub_title = self._header_text(message.report)

        self.query_one(NodesTree).show_report(message.report)
        self.query_one(FindingsTable).set_findings(message.report.findings)
        self.query_one(MeshView).set_matrix(message.matrix)
        self.query_one("#mesh-summary", Label).update(self._mesh_summary(message.matrix, message.broken))

        report = message.report
        severities = sorted({finding.severity for finding in report.findings}, reverse=True)
        counts = ", ".join(f"{report.count(severity)} {severity.label}" for severity in severities) or "no findings"
        self.query_one(RefreshStatus).finish(
            f"{len(snapshot.nodes)} nodes, {counts}, {len(report.gaps)} gaps; {len(report.checks)} checks run"
        )

    def _header_text(self, report: Report) -> str:
        backends = Counter(", ".join(found) or "no backend" for found in report.backends.values())
        backend_text = "; ".join(f"{name} ×{count}" for name, count in sorted(backends.items()))
        collected = report.snapshot.collected_at or "unknown time"
        return f"{self.source.describe()} · {len(report.snapshot.nodes)} nodes · {backend_text} · snapshot {collected}"

    @staticmethod
    def _mesh_summary(matrix: PathMatrix, broken: list[PathResult] | None) -> Text:
        count = len(matrix)
        pairs = count * (count - 1)
        if broken is None:
            return Text(f"{count} nodes, {pairs:,} pairs; move the cursor to see each pair's verdict")
        if not broken:
            return Text(f"{count} nodes: every one of {pairs:,} pairs has a path", style="green")
        listed = ", ".join(f"{result.source}→{result.target}" for result in broken[:5])
        more = f" and {len(broken) - 5} more" if len(broken) > 5 else ""
        return Text(f"{count} nodes: {len(broken)} of {pairs:,} pairs broken: {listed}{more}", style="bold red")

    # Findings, filter and detail

    def on_finding_chosen(self, message: FindingChosen) -> None:
        finding = message.finding
        spec = self.specs.get(finding.check) if finding is not None else None
        placeholder = "No finding selected."
        if finding is None and self.report is not None:
            if not self.report.findings:
                placeholder = (f"No findings: {len(self.report.checks)} checks ran on "
                               f"{len(self.report.snapshot.nodes)} node(s) and found nothing to report.")
            elif not self.query_one(FindingsTable).shown:
                placeholder = "No finding matches the filter."
        self.query_one(FindingDetail).show(finding, spec, placeholder)

    def on_node_chosen(self, message: NodeChosen) -> None:
        self._node_filter = message.node
        self._apply_filter()

    def action_filter(self) -> None:
        """Show the filter box and focus it."""
        self.action_show_tab("findings-tab")
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        """Clear the filter text and the node selection, and hide the filter box."""
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self._node_filter = None
        self._apply_filter()
        self.query_one(FindingsTable).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._apply_filter()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(FindingsTable).focus()

    def _apply_filter(self) -> None:
        text = self.query_one("#filter", Input).value
        finding_filter = FindingFilter.parse(text, self._node_filter)
        table = self.query_one(FindingsTable)
        table.set_filter(finding_filter)
        description = finding_filter.describe()
        table.border_title = f"filter: {description}" if description else None

    # Mesh

    def on_cell_chosen(self, message: CellChosen) -> None:
        result = message.result
        style = {PathStatus.OK: "green", PathStatus.BROKEN: "bold red"}.get(result.status, "yellow")
        self.query_one("#mesh-reason", Static).update(Text.assemble(
            (f"{result.source} → {result.target}: {result.status.value}. ", style), result.reason
        ))

    # Actions

    def action_show_tab(self, tab: str) -> None:
        """Switch to a tab by id and focus its main widget."""
        self.query_one(TabbedContent).active = tab
        target = {"findings-tab": FindingsTable, "mesh-tab": MeshView, "raw-tab": RawView}[tab]
        widget = self.query_one(target)
        if tab == "raw-tab":
            self.query_one("#raw-search", Input).focus()
        else:
            widget.focus()

    def action_fix_plan(self) -> None:
        """Open the fix plan of the selected node (when the nodes pane has focus) or finding."""
        if self.report is None:
            self.notify("The snapshot is still loading.", severity="warning")
            return
        tree = self.query_one(NodesTree)
        if tree.has_focus and tree.cursor_node is not None and tree.cursor_node.data is not None:
            node = tree.cursor_node.data.node
            self._open_fix_plan(f"Fix plan for node {node}", nodes=(node,))
            return
        finding = self.query_one(FindingsTable).current
        if finding is None:
            self.notify("Select a finding or a node first.", severity="warning")
            return
        self._open_fix_plan(f"Fix plan for {finding.check}: {finding.summary}", nodes=finding.nodes,
                            checks=(finding.check,))

    def _open_fix_plan(self, title: str, *, nodes: tuple[str, ...], checks: tuple[str, ...] = ()) -> None:
        assert self.report is not None
        try:
            bindings = self.source.bindings()
            etcd_endpoint = self.source.etcd_endpoint()
        except SourceError as error:
            self.notify(str(error), severity="error")
            return
        screen = FixPlanScreen(title, self.report, nodes=nodes, checks=checks, bindings=bindings,
                               etcd_endpoint=etcd_endpoint, output_dir=self.output_dir,
                               file_source=None if self.source.is_live else self.source.describe())

        def closed(changed: bool | None) -> None:
            if changed:
                self.action_refresh()

        self.push_screen(screen, closed)

    def action_export_runbook(self) -> None:
        """Write the report as a Markdown runbook into the output directory."""
        if self.report is None:
            self.notify("The snapshot is still loading.", severity="warning")
            return
        path = self.output_dir / RUNBOOK_NAME
        try:
            path.write_text(runbook_markdown(self.report, self.specs, self.source.describe()), encoding="utf-8")
        except OSError as error:
            self.notify(f"cannot write {path}: {error.strerror or error}", severity="error")
            return
        self.notify(f"wrote {path}", title="Runbook exported")

    def action_capture_bundle(self) -> None:
        """Capture a support bundle of the live source into the output directory, in a progress dialog."""
        from netdoctor.tui.bundle import BundleScreen, bundle_path

        if not self.source.is_live:
            self.notify("A bundle is captured from a live source (a node, --netns or --lab).", severity="warning")
            return
        try:
            targets = self.source.targets()
        except SourceError as error:
            self.notify(" ".join(str(error).split()), severity="error")
            return

        def closed(path: Path | None) -> None:
            if path is not None:
                self.notify(f"wrote {path}", title="Support bundle written")

        self.push_screen(BundleScreen(targets, self.source.describe(), bundle_path(self.output_dir)), closed)

    def action_help(self) -> None:
        """Show the key bindings and filter syntax."""
        self.push_screen(HelpScreen([binding for binding in self.BINDINGS if isinstance(binding, Binding)]))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.id not in (None, "quit", "clear-filter"):
                yield SystemCommand(binding.description, binding.tooltip, self._runner(binding.action))

    def _runner(self, action: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await self.run_action(action)

        return run
