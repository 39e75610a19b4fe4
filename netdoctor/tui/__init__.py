"""The interactive terminal UI that ``netdoctor`` opens when it is given no subcommand.

Everything that imports Textual lives in this package; the rest of netdoctor
never imports it. :func:`run` is the entry point.
"""

from __future__ import annotations

from pathlib import Path


def run(
    *,
    netns: str | None = None,
    snapshot: Path | None = None,
    bundle: Path | None = None,
    lab: str | None = None,
    refresh_interval: float | None = None,
) -> None:
    """Open the TUI on one source: namespaces, a snapshot file, a bundle, a lab, or the local node.

    Raises :class:`netdoctor.sources.SourceError` when more than one source is given.
    A source that cannot be read is reported inside the UI.
    """
    from netdoctor.tui.app import NetdoctorApp
    from netdoctor.tui.source import SnapshotSource

    source = SnapshotSource(netns=netns, snapshot=snapshot, bundle=bundle, lab=lab)
    NetdoctorApp(source, refresh_interval=refresh_interval).run()
