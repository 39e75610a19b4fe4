"""The fix plan dialog: preview each step with its safety class, apply after confirmation, undo, or save a script."""

from __future__ import annotations

import logging
import os
import re
import shlex
import time
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Log, Static

from netdoctor.engine import Report
from netdoctor.fix import FixPlan, NodeBinding, PlanError, Safety, build_plans, render_step
from netdoctor.tui.confirm import ConfirmScreen

logger = logging.getLogger(__name__)

SAFETY_STYLES = {Safety.SAFE: "green", Safety.DISRUPTIVE: "bold yellow", Safety.DISPLAY_ONLY: "dim"}

#: The shell script written by ``s``, in the output directory.
SCRIPT_NAME = "netdoctor-fix-plan.sh"


def plan_text(title: str, plans: list[FixPlan]) -> Text:
    """Render plans step by step: safety class, title, why, and the exact commands."""
    text = Text()
    text.append(f"{title}\n", style="bold")
    if not plans:
        text.append("\nNo fixer has a step for this. See the finding's explanation for the manual remedy.\n")
        return text
    for plan in plans:
        where = f" (netns {plan.netns})" if plan.netns else ""
        text.append(f"\nnode {plan.node}{where}\n", style="bold cyan")
        for number, step in enumerate(plan.steps, 1):
            text.append(f"  {number}. ")
            text.append(f"[{step.safety.label}]", style=SAFETY_STYLES[step.safety])
            text.append(f" {step.title}\n")
            if step.why:
                text.append(f"     {step.why}\n", style="dim")
            for line, is_command in _command_lines(render_step(plan, step)):
                text.append(f"     {'$ ' if is_command else '  '}{line}\n")
    return text


_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?\s*$")


def _command_lines(lines: list[str]) -> list[tuple[str, bool]]:
    """Pair each rendered line with whether it starts a command; here-document lines do not."""
    result = []
    terminator = None
    for line in lines:
        if terminator is not None:
            result.append((line, False))
            if line.strip() == terminator:
                terminator = None
            continue
        result.append((line, True))
        match = _HEREDOC.search(line)
        if match:
            terminator = match.group(1)
    return result


def script_text(plans: list[FixPlan]) -> str:
    """Render plans as a shell script; display-only steps are kept as comments to run by hand."""
    lines = ["#!/bin/sh", "# Written by the netdoctor TUI. Review every step before running it.", "set -e"]
    for plan in plans:
        lines.append(f"\n# node {plan.node}")
        for step in plan.steps:
            lines.append(f"# [{step.safety.label}] {step.title}")
            commands = render_step(plan, step)
            if step.safety == Safety.DISPLAY_ONLY or step.action is None:
                lines.extend(f"# {command}" for command in commands)
            else:
                lines.extend(commands)
    return "\n".join(lines) + "\n"


def apply_blocker(plans: list[FixPlan], source: str | None = None) -> str | None:
    """Return why these plans cannot be applied from here, or None when they can.

    ``source`` names a file source (``snapshot FILE``, ``bundle DIR``) that the
    TUI read: such a snapshot describes another machine or a moment that has
    passed, whatever source its file records, so nothing is applied from it.
    """
    if not any(step.action is not None and step.safety != Safety.DISPLAY_ONLY for plan in plans for step in plan.steps):
        return "the plan has no step that can be applied automatically"
    if source is not None:
        return f"the {source} describes another machine; save the script (s) and run it there"
    sources = {plan.source for plan in plans if not plan.applicable}
    if sources:
        return (f"the snapshot comes from a {', '.join(sorted(sources))}, which describes another machine; "
                f"save the script (s) and run it there")
    if os.geteuid() != 0:
        return "applying changes routes, links and firewall rules, which needs root; save the script (s) instead"
    return None


class FixPlanScreen(ModalScreen[bool]):
    """A modal that previews the fix plan of a finding or of a node; it returns True when it changed the node."""

    DEFAULT_CSS = """
    FixPlanScreen {
        align: center middle;
    }
    FixPlanScreen > Vertical {
        width: 90%;
        height: 85%;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    FixPlanScreen #fix-results {
        height: 8;
        border-top: tall $primary-background;
    }
    FixPlanScreen #fix-hint {
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "apply", "Apply", id="fix.apply", tooltip="Apply the plan after confirmation"),
        Binding("u", "undo", "Undo", id="fix.undo", tooltip="Revert the steps this dialog applied"),
        Binding("s", "save_script", "Save script", id="fix.save", tooltip=f"Write the plan as {SCRIPT_NAME}"),
        Binding("escape,q,f", "close", "Close", id="fix.close", tooltip="Close the fix plan"),
    ]

    def __init__(
        self,
        title: str,
        report: Report,
        *,
        nodes: tuple[str, ...] = (),
        checks: tuple[str, ...] = (),
        bindings: dict[str, NodeBinding] | None = None,
        etcd_endpoint: str | None = None,
        output_dir: Path,
        file_source: str | None = None,
    ) -> None:
        super().__init__()
        #: The file the snapshot was read from, which blocks applying; None for a live source.
        self.file_source = file_source
        self._title = title
        self._output_dir = output_dir
        self._changed = False
        #: The journal of the last apply, which undo reverts.
        self.journal: Path | None = None
        #: The plans shown, one per node.
        self.plans: list[FixPlan] = []
        self._error: str | None = None
        try:
            self.plans = build_plans(report, bindings, etcd_endpoint=etcd_endpoint, nodes=nodes, checks=checks)
        except PlanError as error:
            self._error = str(error)

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll():
                body = plan_text(self._title, self.plans)
                if self._error:
                    body.append(f"\ncannot build the plan: {self._error}\n", style="bold red")
                yield Static(body, id="fix-body")
            yield Log(id="fix-results", highlight=False)
            blocker = apply_blocker(self.plans, self.file_source)
            hint = "a apply · u undo · s save script · Esc close"
            if blocker:
                hint = f"cannot apply here: {blocker}. s save script · Esc close"
            yield Label(hint, id="fix-hint")

    def action_apply(self) -> None:
        """Ask for confirmation, then apply every step in a thread worker, showing results live."""
        blocker = apply_blocker(self.plans, self.file_source)
        if blocker:
            self.query_one(Log).write_line(f"cannot apply: {blocker}")
            return
        steps = [step for plan in self.plans for step in plan.steps]
        disruptive = sum(1 for step in steps if step.safety == Safety.DISRUPTIVE)
        question = f"Apply {len(steps)} step(s) on {', '.join(plan.node for plan in self.plans)}?"
        if disruptive:
            question += f"\n{disruptive} of them are disruptive and may interrupt traffic."

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._apply()

        self.app.push_screen(ConfirmScreen(question), answered)

    @work(thread=True, exclusive=True, group="fix", exit_on_error=False)
    def _apply(self) -> None:
        from netdoctor.fixapply import ApplyError, apply_plans

        journal = self._output_dir / f"netdoctor-fix-{time.strftime('%Y%m%d-%H%M%S')}.journal.json"
        self._echo(f"applying; journal {journal}")
        try:
            result = apply_plans(self.plans, journal, allow_disruptive=True, echo=self._echo)
        except (ApplyError, OSError) as error:
            self._echo(f"apply failed: {error}")
            return
        self.journal = journal
        self._changed = True
        counts = ", ".join(f"{count} {status}" for status, count in sorted(result.counts.items()))
        self._echo(f"done: {counts}" + (f"; stopped: {result.stopped}" if result.stopped else ""))

    def action_undo(self) -> None:
        """Revert what the last apply in this dialog changed."""
        if self.journal is None:
            self.query_one(Log).write_line("nothing to undo: no plan was applied from this dialog")
            return
        self._undo(self.journal)

    @work(thread=True, exclusive=True, group="fix", exit_on_error=False)
    def _undo(self, journal: Path) -> None:
        from netdoctor.fixapply import ApplyError, undo_journal

        try:
            reverted = undo_journal(journal, echo=self._echo)
        except (ApplyError, OSError) as error:
            self._echo(f"undo failed: {error}")
            return
        self._changed = True
        self._echo(f"undo done: {reverted} step(s) reverted")

    def _echo(self, line: str) -> None:
        logger.info("fix: %s", line)
        self.app.call_from_thread(self.query_one(Log).write_line, line)

    def action_save_script(self) -> None:
        """Write the plan as a shell script into the output directory."""
        path = self._output_dir / SCRIPT_NAME
        try:
            path.write_text(script_text(self.plans), encoding="utf-8")
        except OSError as error:
            self.query_one(Log).write_line(f"cannot write {path}: {error.strerror or error}")
            return
        self.query_one(Log).write_line(f"wrote {path}; review it, then run: sh {shlex.quote(str(path))}")

    def action_close(self) -> None:
        """Close the dialog; the result tells the app whether to refresh."""
        self.dismiss(self._changed)
