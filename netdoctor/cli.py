"""The ``netdoctor`` command line.

Exit status: 0 when no finding reaches the ``--fail-on`` severity, 1 when one
does, 2 for invalid usage or unreadable input. Only the command that runs has
its module imported and its options defined, and commands import Rich, the
collectors and the checks only when they need them, so that
``netdoctor check --json --snapshot FILE`` starts fast and loads no check it
does not run.
"""

from __future__ import annotations

import sys
from argparse import REMAINDER, SUPPRESS, Namespace
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from netdoctor.commandline import (
    ArgumentParser,
    CommandError,
    VersionAction,
    bold,
    choice,
    choice_metavar,
    echo,
    number_in_range,
    path_type,
    range_text,
    run,
    with_default,
)
from netdoctor.log import apply_configuration, configure, get_logger

if TYPE_CHECKING:
    from pathlib import Path

logger = get_logger(__name__)

SEVERITY_CHOICES = ("error", "warning", "info")

#: Every command: the function that defines its options (``module:function``) and its one-line summary.
#: A command's module is imported only when that command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "bundle": ("netdoctor.bundle_cli:add_bundle_command",
               "Capture the evidence of every node into one support bundle for 'netdoctor check --bundle'."),
    "check": ("netdoctor.cli:add_check_command",
              "Collect or load a snapshot, run the checks and report the findings."),
    "checks": ("netdoctor.cli:add_checks_command", "List the check catalogue: id, severity, backends and title."),
    "collect": ("netdoctor.cli:add_collect_command",
                "Collect a snapshot and write it as JSON, for 'netdoctor check --snapshot'."),
    "explain": ("netdoctor.cli:add_explain_command",
                ("Print a check's documentation: what it checks, why it matters, known problems, an example, "
                 "fix safety.")),
    "fix": ("netdoctor.fix_cli:add_fix_command",
            "Print the remedy for the current findings as a shell script, or apply or undo it."),
    "lab": ("netdoctor.lab.cli:add_lab_command", "Build, break and heal a practice cluster in network namespaces."),
    "runbook": ("netdoctor.fix_cli:add_runbook_command",
                ("Write a Markdown runbook for the findings: per node, each step with why, commands, verify and "
                 "roll back.")),
}

#: Commands whose modules log through :mod:`netdoctor.log`, so that their logging setup waits for the first
#: message, and a run that logs nothing never imports the logging module.
DEFERRED_LOGGING = ("check", "checks", "explain")

#: The options of live sources, as :func:`add_live_options` names them, for :func:`live_settings`.
LIVE_OPTIONS = ("lab_name", "lab_state_dir", "etcd_endpoints", "etcd_prefix", "etcd_api", "etcd_cacert",
                "etcd_cert", "etcd_key")

#: The help of ``--lab-state-dir``, shared by every command that reads a lab.
LAB_STATE_DIR_HELP = "The lab's state directory [default: $NETDOCTOR_LAB_ROOT/NAME or /run/netdoctor/lab/NAME]."


class InputError(CommandError):
    """Unreadable or invalid input: printed as one ``Error:`` line, exit status 2."""


def add_source_options(parser: ArgumentParser) -> None:
    """Add the options that choose where the snapshot comes from.

    The paths stay strings: importing pathlib would slow down every ``check``.
    """
    parser.add_argument(
        "--netns",
        metavar="NS[,NS...]",
        help="Collect from these network namespaces, one node per namespace, named after it.",
    )
    parser.add_argument(
        "--snapshot",
        dest="snapshot_file",
        metavar="PATH",
        help="Read a snapshot JSON file written by 'netdoctor collect'.",
    )
    parser.add_argument("--bundle", metavar="PATH", help="Read a support bundle (directory or archive).")


def add_live_options(parser: ArgumentParser) -> None:
    """Add the options of live sources: a practice lab, and where etcd is."""
    parser.add_argument("--lab", dest="lab_name", metavar="NAME",
                        help="Collect from the nodes of a lab built by 'netdoctor lab up'.")
    parser.add_argument("--lab-state-dir", type=path_type(file_okay=False), metavar="DIRECTORY",
                        help=LAB_STATE_DIR_HELP)
    parser.add_argument(
        "--etcd-endpoints",
        metavar="URL[,URL...]",
        help="Read flannel's keys from these etcd client URLs [default: $ETCDCTL_ENDPOINTS; a lab's own etcd].",
    )
    parser.add_argument("--etcd-prefix", default="/coreos.com/network", metavar="TEXT",
                        help=with_default("flannel's etcd key prefix.", "/coreos.com/network"))
    etcd_apis = ("v2", "v3", "auto")
    parser.add_argument(
        "--etcd-api",
        type=choice(*etcd_apis),
        default="auto",
        metavar=choice_metavar(*etcd_apis),
        help=with_default("Which etcd keyspace to read; auto reads both, which etcd keeps apart.", "auto"),
    )
    parser.add_argument("--etcd-cacert", type=path_type(dir_okay=False), metavar="FILE",
                        help="CA certificate that signed etcd's server certificate.")
    parser.add_argument("--etcd-cert", type=path_type(dir_okay=False), metavar="FILE",
                        help="Client certificate for etcd.")
    parser.add_argument("--etcd-key", type=path_type(dir_okay=False), metavar="FILE", help="Client key for etcd.")


def live_settings(args: Namespace) -> dict[str, Any]:
    """Return the values of the live-source options by name."""
    return {name: getattr(args, name) for name in LIVE_OPTIONS}


def _etcd_options(settings: dict[str, Any]) -> Any:
    from netdoctor.sources import EtcdOptions

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return EtcdOptions.from_environment(
        settings.pop("etcd_endpoints"),
        prefix=settings.pop("etcd_prefix"),
        api=settings.pop("etcd_api"),
        ca_cert=text(settings.pop("etcd_cacert")),
        cert=text(settings.pop("etcd_cert")),
        key=text(settings.pop("etcd_key")),
    )


def _load_snapshot(
    netns: str | None, snapshot_file: str | None, bundle: str | None, live: dict[str, Any] | None = None
) -> Any:
    from netdoctor.sources import SourceError, snapshot_from_options

    if snapshot_file is None:
        # Collectors, the bundle reader and the libraries they use log through the logging module directly.
        apply_configuration()
    live = dict(live or {})
    if snapshot_file is not None or bundle is not None:
        # A snapshot or bundle carries its own etcd keys; these options would be ignored.
        ignored = [f"--{name.replace('_', '-')}" for name in ("etcd_cacert", "etcd_cert", "etcd_key")
                   if live.get(name) is not None]
        if ignored:
            verb = "apply" if len(ignored) > 1 else "applies"
            raise InputError(f"{' and '.join(ignored)} {verb} to live sources only; a snapshot or bundle "
                             "carries its own etcd keys, so leave the option out")
    try:
        etcd = _etcd_options(live) if live else None
        return snapshot_from_options(
            netns=netns,
            snapshot=snapshot_file,
            bundle=bundle,
            lab=live.get("lab_name"),
            lab_state_dir=live.get("lab_state_dir"),
            etcd=etcd,
        )
    except SourceError as error:
        # Messages from other libraries (tarfile, for one) can span lines; the error stays one line.
        raise InputError(" ".join(str(error).split())) from None


def main(argv: Sequence[str] | None = None, prog_name: str = "netdoctor") -> int:
    """Run the ``netdoctor`` command line with ``argv`` and return its exit status.

    Without ``argv``, as the console script and ``python -m netdoctor`` call it,
    the arguments come from ``sys.argv`` and the interpreter is expected to exit
    right after.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    status = run(lambda: _main(arguments, prog_name))
    if argv is None:
        import gc

        # The interpreter's final garbage collection walks every object that is left: 4 to 7 ms after
        # 'check --json' of a 3-node snapshot, a tenth of the whole run (CPython 3.11, 2-vCPU VM). It
        # skips frozen objects, and the memory goes back to the system at exit all the same.
        gc.freeze()
    return status


class _MainParser(ArgumentParser):
    """The parser of ``netdoctor`` itself, whose help ends with the list of commands."""

    def format_help(self) -> str:
        import shutil
        import textwrap

        width = max(map(len, COMMANDS)) + 4
        columns = max(shutil.get_terminal_size().columns - 2, width + 30)
        listing = [
            textwrap.fill(summary, columns, initial_indent=f"  {name}".ljust(width), subsequent_indent=" " * width)
            for name, (_, summary) in sorted(COMMANDS.items())
        ]
        self.epilog = "commands:\n" + "\n".join(listing) + f"\n\nRun '{self.prog} COMMAND --help' for its options."
        return super().format_help()


def _main_parser(prog: str) -> ArgumentParser:
    parser = _MainParser(
        prog=prog,
        usage=f"{prog} [OPTIONS] [COMMAND] [ARGS]...",
        description="Diagnose the node networks of Kubernetes and Docker clusters.\n\n"
                    "With no command, open the interactive TUI on the local node or on the source "
                    "that --netns, --snapshot, --bundle or --lab names.",
    )
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="Log more to stderr: -v for progress, -vv for debugging.")
    add_source_options(parser)
    parser.add_argument("--lab", dest="lab_name", metavar="NAME",
                        help="Open the TUI on a practice lab built by 'netdoctor lab up'.")
    parser.add_argument("--refresh", dest="refresh_interval", type=number_in_range(float, minimum=1),
                        metavar="SECONDS",
                        help=f"In the TUI, collect and check again every SECONDS seconds.  [{range_text(1, None)}]")
    # The command's own arguments are parsed by its own parser, built only for the command that runs.
    parser.add_argument("command", nargs="?", help=SUPPRESS)
    parser.add_argument("arguments", nargs=REMAINDER, help=SUPPRESS)
    return parser


def _main(argv: list[str], prog: str) -> int | None:
    if argv and argv[0] in COMMANDS:
        # netdoctor's own options go before the command, so there are none to parse here.
        _configure_logging(argv[0], verbose=0)
        return run_command(prog, argv[0], argv[1:])

    args = _main_parser(prog).parse_args(argv)
    _configure_logging(args.command, args.verbose)

    sources = (args.netns, args.snapshot_file, args.bundle, args.lab_name, args.refresh_interval)
    if args.command is not None:
        if any(value is not None for value in sources):
            raise CommandError("source options before a command only apply to the TUI; put them after the command")
        return run_command(prog, args.command, args.arguments)
    _open_tui(args)
    return 0


def _configure_logging(command: str | None, verbose: int) -> None:
    # The logging module's WARNING, INFO and DEBUG levels.
    configure({0: 30, 1: 20}.get(verbose, 10), "%(levelname)s %(name)s: %(message)s")
    if command not in DEFERRED_LOGGING:
        apply_configuration()


def run_command(prog: str, name: str, argv: list[str]) -> int | None:
    """Import one command's module, parse its arguments and run it."""
    import importlib

    if name not in COMMANDS:
        raise CommandError(f"no such command {name!r}; choose from {', '.join(sorted(COMMANDS))} "
                           f"(see '{prog} --help')")
    target, summary = COMMANDS[name]
    module_name, function_name = target.split(":")
    parser = ArgumentParser(prog=f"{prog} {name}", description=summary)
    getattr(importlib.import_module(module_name), function_name)(parser)
    args = parser.parse_args(argv)
    result: int | None = args.handler(args)
    return result


def _open_tui(args: Namespace) -> None:
    import os
    from pathlib import Path

    from netdoctor.sources import SourceError, check_one_source

    # Mistakes in the options are reported before the missing terminal, which only the caller's setup can change.
    try:
        check_one_source(args.netns, args.lab_name, args.snapshot_file, args.bundle)
    except SourceError as error:
        raise InputError(str(error)) from None
    for option, path in (("--snapshot", args.snapshot_file), ("--bundle", args.bundle)):
        if path is not None and not os.path.exists(path):
            raise InputError(f"{option} {path}: no such file or directory")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("the TUI needs a terminal; run 'netdoctor check' for a report, or 'netdoctor --help'")

    from netdoctor.tui import run as run_tui

    snapshot = None if args.snapshot_file is None else Path(args.snapshot_file)
    bundle = None if args.bundle is None else Path(args.bundle)
    try:
        run_tui(netns=args.netns, snapshot=snapshot, bundle=bundle, lab=args.lab_name,
                refresh_interval=args.refresh_interval)
    except SourceError as error:
        raise InputError(" ".join(str(error).split())) from None


def add_check_command(parser: ArgumentParser) -> None:
    """Define the options of ``netdoctor check``."""
    add_source_options(parser)
    add_live_options(parser)
    parser.add_argument("--json", dest="as_json", action="store_true", help="Print the netdoctor.check/1 JSON report.")
    parser.add_argument(
        "--fail-on",
        type=choice(*SEVERITY_CHOICES),
        default="error",
        metavar=choice_metavar(*SEVERITY_CHOICES),
        help=with_default("Exit 1 when a finding has this severity or a higher one.", "error"),
    )
    parser.add_argument("--check", dest="check_ids", action="append", metavar="ID",
                        help="Run only this check (repeatable).")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="Exit 2 after the report when it has any gap: a source that was not collected or did not parse, "
        "or a check that failed or could not decide on a node.",
    )
    parser.set_defaults(handler=check)


def check(args: Namespace) -> int:
    """Collect or load a snapshot, run the checks and report the findings."""
    import gc

    # Importing the model and the checks and running them allocates many objects and few reference
    # cycles, so the cyclic garbage collector pauses for the whole command, as it does while a snapshot
    # loads. Its collections otherwise took about 2 ms of 'check --json' on a 3-node snapshot.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _check(args)
    finally:
        if enabled:
            gc.enable()


def _check(args: Namespace) -> int:
    from netdoctor.engine import UnknownCheckError, load_checks, run_checks
    from netdoctor.model import SchemaError, Severity
    from netdoctor.model.table import columns_checked_when_read
    from netdoctor.report import attach_fixes, dumps_report, exit_code
    from netdoctor.sources import invalid_snapshot

    # Check ids are validated before collecting, so a typo fails fast.
    try:
        specs = load_checks(args.check_ids or None)
    except UnknownCheckError as error:
        raise InputError(str(error)) from None

    # A snapshot file's integer columns are checked as the checks read them, because no finding depends on the
    # columns that no check reads.
    with columns_checked_when_read():
        snapshot = _load_snapshot(args.netns, args.snapshot_file, args.bundle, live_settings(args))
    try:
        report = attach_fixes(run_checks(snapshot, specs))
        text = dumps_report(report) if args.as_json else None
    except SchemaError as error:
        raise InputError(str(invalid_snapshot(args.snapshot_file or "the snapshot", error))) from None

    if text is not None:
        echo(text, nl=False)
    else:
        from netdoctor.report import make_console, render_human

        render_human(report, make_console())

    if args.strict and report.gaps:
        where = "in the report's gaps" if args.as_json else "listed above"
        checks = sum(1 for gap in report.gaps if gap.check_id is not None)
        parts = [f"{len(report.gaps) - checks} not collected"] if checks < len(report.gaps) else []
        parts += [f"{checks} not checked"] if checks else []
        echo(f"Error: --strict: the report is incomplete ({len(report.gaps)} gap(s): {', '.join(parts)}; {where})",
             err=True)
        return 2
    return exit_code(report, Severity.parse(args.fail_on))


def add_collect_command(parser: ArgumentParser) -> None:
    """Define the options of ``netdoctor collect``."""
    add_source_options(parser)
    add_live_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=path_type(dir_okay=False, output=True),
        required=True,
        metavar="FILE",
        help="Write the snapshot JSON to this file ('-' for stdout).",
    )
    parser.set_defaults(handler=collect)


def collect(args: Namespace) -> None:
    """Collect a snapshot and write it as JSON, for 'netdoctor check --snapshot'."""
    from netdoctor.model.serialize import dumps_snapshot

    output: Path = args.output
    snapshot = _load_snapshot(args.netns, args.snapshot_file, args.bundle, live_settings(args))
    text = dumps_snapshot(snapshot)
    if str(output) == "-":
        echo(text)
        return

    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write {output}: {error.strerror or error}") from None
    echo(f"wrote {output}: {len(snapshot.nodes)} node(s), {len(snapshot.gaps)} gap(s)", err=True)


def add_checks_command(parser: ArgumentParser) -> None:
    """Define the options of ``netdoctor checks``."""
    parser.add_argument("--json", dest="as_json", action="store_true", help="Print the catalogue as JSON.")
    parser.set_defaults(handler=list_checks)


def list_checks(args: Namespace) -> None:
    """List the check catalogue: id, severity, backends and title."""
    import json

    from netdoctor.engine import load_checks

    specs = load_checks()
    if args.as_json:
        rows = [
            {"id": spec.id, "severity": spec.severity.label, "backends": list(spec.backends), "title": spec.title}
            for spec in specs
        ]
        echo(json.dumps(rows, indent=2))
        return

    from rich.table import Table

    from netdoctor.report import make_console

    table = Table(box=None, pad_edge=False)
    # Ids are what users type into --check and explain, so they are never cut or wrapped.
    table.add_column("id", no_wrap=True, min_width=max(len(spec.id) for spec in specs))
    table.add_column("severity", no_wrap=True)
    table.add_column("backends")
    table.add_column("title")
    for spec in specs:
        table.add_row(spec.id, spec.severity.label, ", ".join(spec.backends), spec.title)
    console = make_console()
    console.print(table)
    console.print(f"{len(specs)} check(s)")


def add_explain_command(parser: ArgumentParser) -> None:
    """Define the arguments of ``netdoctor explain``."""
    parser.add_argument("check_id", metavar="ID", help="The check id, as 'netdoctor checks' lists it.")
    parser.set_defaults(handler=explain)


def explain(args: Namespace) -> None:
    """Print a check's documentation: what it checks, why it matters, known problems, an example, fix safety."""
    from netdoctor.engine import DOC_HEADINGS, UnknownCheckError, load_checks

    try:
        (spec,) = load_checks([args.check_id])
    except UnknownCheckError as error:
        raise InputError(str(error)) from None

    # The docstrings use reStructuredText literals (``x``); a terminal shows them as `x`.
    sections = {name: text.replace("``", "`") for name, text in spec.sections().items()}
    echo(f"{spec.id}: {spec.title}")
    echo(f"severity: {spec.severity.label}; backends: {', '.join(spec.backends)}")
    if sections.get("Summary"):
        echo()
        echo(sections["Summary"])
    for heading in DOC_HEADINGS:
        echo()
        echo(bold(heading))
        echo(sections.get(heading) or "(not documented)")
