"""Run the TUI alone: ``python -m netdoctor.tui [--bundle PATH | --snapshot FILE | --netns NS,... | --lab NAME]``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from netdoctor.commandline import ArgumentParser, CommandError, number_in_range, range_text, run


def main(argv: Sequence[str] | None = None, prog_name: str = "python -m netdoctor.tui") -> int:
    """Open the netdoctor TUI on the source that ``argv`` names; return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = ArgumentParser(
        prog=prog_name, description="Open the netdoctor TUI on one source (the local node when none is given)."
    )
    parser.add_argument("--netns", metavar="NS[,NS...]", help="Collect from these network namespaces, one node each.")
    parser.add_argument("--snapshot", dest="snapshot_file", type=Path, metavar="PATH", help="Read a snapshot JSON file.")
    parser.add_argument("--bundle", type=Path, metavar="PATH", help="Read a support bundle (directory or archive).")
    parser.add_argument("--lab", metavar="NAME", help="Collect from the nodes of a lab built by 'netdoctor lab up'.")
    parser.add_argument("--refresh", dest="refresh_interval", type=number_in_range(float, minimum=1.0),
                        metavar="SECONDS",
                        help=f"Refresh automatically every this many seconds.  [{range_text(1.0, None)}]")

    def open_tui() -> None:
        args = parser.parse_args(arguments)
        from netdoctor.sources import SourceError
        from netdoctor.tui import run as run_tui

        try:
            run_tui(netns=args.netns, snapshot=args.snapshot_file, bundle=args.bundle, lab=args.lab,
                    refresh_interval=args.refresh_interval)
        except SourceError as error:
            raise CommandError(str(error)) from None

    return run(open_tui)


if __name__ == "__main__":
    sys.exit(main())
