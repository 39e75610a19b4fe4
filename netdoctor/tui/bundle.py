"""The ``b`` dialog: capture a support bundle of the current live source, with its own progress bar.

The capture runs :func:`netdoctor.supportbundle.write_bundle` in a thread
worker (group ``bundle``); its progress reaches the dialog as
:class:`BundleProgress` messages, merged so that a burst of steps redraws once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, ProgressBar
from textual.worker import Worker, WorkerState, get_current_worker

from netdoctor.target import Target

logger = logging.getLogger(__name__)


@dataclass
class BundleProgress(Message):
    """The capture reached step ``done`` of ``total``, on ``node``, running ``step``."""

    done: int
    total: int
    node: str
    step: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, BundleProgress)


def bundle_path(directory: Path) -> Path:
    """Return a new bundle file name in ``directory``, stamped with the UTC time."""
    return directory / f"netdoctor-bundle-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.tar.gz"


class BundleScreen(ModalScreen[Path | None]):
    """Shows the capture's progress and result; Escape closes it once the capture has ended."""

    DEFAULT_CSS = """
    BundleScreen {
        align: center middle;
    }
    BundleScreen > Vertical {
        width: 80;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="close-bundle", tooltip="Close the bundle dialog"),
    ]

    def __init__(self, targets: list[Target], source: str, output: Path) -> None:
        super().__init__()
        self.targets = targets
        self.source = source
        self.output = output
        self.result: Path | None = None
        self.running = True

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Capturing a support bundle of {self.source} into {self.output}", id="bundle-title")
            yield ProgressBar(total=None, show_eta=False, id="bundle-bar")
            yield Label("planning…", id="bundle-step")

    def on_mount(self) -> None:
        self._capture()

    @work(thread=True, exclusive=True, group="bundle", exit_on_error=False, name="bundle")
    def _capture(self) -> str:
        from netdoctor.supportbundle import write_bundle

        worker = get_current_worker()

        def progress(done: int, total: int, node: str, step: str) -> None:
            if not worker.is_cancelled:
                self.post_message(BundleProgress(done, total, node, step))

        result = write_bundle(self.targets, self.output, source=self.source, progress=progress)
        return (
            f"wrote {result.path}: {result.nodes} node(s), {result.steps} step(s), {result.failed_steps} failed, "
            f"{len(result.truncated)} cut; press Escape to close"
        )

    def on_bundle_progress(self, message: BundleProgress) -> None:
        self.query_one("#bundle-bar", ProgressBar).update(total=message.total, progress=message.done)
        where = f"{message.node}: {message.step}" if message.node else message.step
        self.query_one("#bundle-step", Label).update(where[:76])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "bundle" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.running = False
        label = self.query_one("#bundle-step", Label)
        if event.state == WorkerState.SUCCESS:
            self.result = self.output
            label.update(str(event.worker.result))
            return
        error = event.worker.error
        logger.error("bundle capture of %s failed", self.source, exc_info=error)
        label.update(f"capture failed: {type(error).__name__}: {error}; press Escape to close")

    def action_close(self) -> None:
        if self.running:
            self.notify("The capture is still running.", severity="warning")
            return
        self.dismiss(self.result)
