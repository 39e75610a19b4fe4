"""Run the TUI alone: ``python -m netdoctor.tui [--bundle PATH | --snapshot FILE | --netns NS,... | --lab NAME]``."""

from __future__ import annotations

from pathlib import Path

import click

from netdoctor.sources import SourceError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--netns", metavar="NS[,NS...]", help="Collect from these network namespaces, one node each.")
@click.option("--snapshot", "snapshot_file", type=click.Path(path_type=Path), help="Read a snapshot JSON file.")
@click.option("--bundle", type=click.Path(path_type=Path), help="Read a support bundle (directory or archive).")
@click.option("--lab", metavar="NAME", help="Collect from the nodes of a lab built by 'netdoctor lab up'.")
@click.option("--refresh", "refresh_interval", type=click.FloatRange(min=1.0), default=None,
              help="Refresh automatically every this many seconds.")
def main(netns: str | None, snapshot_file: Path | None, bundle: Path | None, lab: str | None,
         refresh_interval: float | None) -> None:
    """Open the netdoctor TUI on one source (the local node when none is given)."""
    from netdoctor.tui import run

    try:
        run(netns=netns, snapshot=snapshot_file, bundle=bundle, lab=lab, refresh_interval=refresh_interval)
    except SourceError as error:
        raise click.UsageError(str(error)) from None


if __name__ == "__main__":
    main()
