"""The ``netdoctor`` command line.

Exit status: 0 when no finding reaches the ``--fail-on`` severity, 1 when one
does, 2 for invalid usage or unreadable input. Commands import Rich, the
collectors and the checks only when they need them, so that
``netdoctor check --json --snapshot FILE`` starts fast and loads no check it
does not run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

SEVERITY_CHOICES = ("error", "warning", "info")


class InputError(click.ClickException):
    """Unreadable or invalid input: printed as one ``Error:`` line, exit status 2."""

    exit_code = 2


def source_options(function: F) -> F:
    """Add the options that choose where the snapshot comes from."""
    options = [
        click.option(
            "--netns",
            metavar="NS[,NS...]",
            help="Collect from these network namespaces, one node per namespace, named after it.",
        ),
        click.option(
            "--snapshot",
            "snapshot_file",
            type=click.Path(path_type=Path, dir_okay=True),
            help="Read a snapshot JSON file written by 'netdoctor collect'.",
        ),
        click.option(
            "--bundle",
            type=click.Path(path_type=Path),
            help="Read a support bundle (directory or archive).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def live_options(function: F) -> F:
    """Add the options of live sources: a practice lab, and where etcd is."""
    options = [
        click.option("--lab", "lab_name", metavar="NAME", help="Collect from the nodes of a lab built by 'netdoctor lab up'."),
        click.option(
            "--lab-state-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="The lab's state directory [default: $NETDOCTOR_LAB_ROOT/NAME or /run/netdoctor/lab/NAME].",
        ),
        click.option(
            "--etcd-endpoints",
            metavar="URL[,URL...]",
            help="Read flannel's keys from these etcd client URLs [default: $ETCDCTL_ENDPOINTS; a lab's own etcd].",
        ),
        click.option("--etcd-prefix", default="/coreos.com/network", show_default=True, help="flannel's etcd key prefix."),
        click.option(
            "--etcd-api",
            type=click.Choice(["v2", "v3", "auto"]),
            default="auto",
            show_default=True,
            help="Which etcd keyspace to read; auto reads both, which etcd keeps apart.",
        ),
        click.option("--etcd-cacert", type=click.Path(dir_okay=False), help="CA certificate that signed etcd's server certificate."),
        click.option("--etcd-cert", type=click.Path(dir_okay=False), help="Client certificate for etcd."),
        click.option("--etcd-key", type=click.Path(dir_okay=False), help="Client key for etcd."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _etcd_options(settings: dict[str, Any]) -> Any:
    from netdoctor.sources import EtcdOptions

    return EtcdOptions.from_environment(
        settings.pop("etcd_endpoints"),
        prefix=settings.pop("etcd_prefix"),
        api=settings.pop("etcd_api"),
        ca_cert=settings.pop("etcd_cacert"),
        cert=settings.pop("etcd_cert"),
        key=settings.pop("etcd_key"),
    )


def _load_snapshot(
    netns: str | None, snapshot_file: Path | None, bundle: Path | None, live: dict[str, Any] | None = None
) -> Any:
    from netdoctor.sources import SourceError, snapshot_from_options

    live = dict(live or {})
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


class LazyGroup(click.Group):
    """A command group whose larger subcommands are imported only when they run or are listed.

    ``netdoctor check --json`` must not pay for importing the fixers, the lab or
    the TUI, so those commands are named here as ``module:attribute``.
    """

    lazy_commands: ClassVar[dict[str, str]] = {
        "fix": "netdoctor.fix_cli:fix",
        "runbook": "netdoctor.fix_cli:runbook",
        "lab": "netdoctor.lab.cli:lab",
        "bundle": "netdoctor.bundle_cli:bundle",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        import importlib

        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netdoctor")
@click.option("-v", "--verbose", count=True, help="Log more to stderr: -v for progress, -vv for debugging.")
@source_options
@click.option("--lab", "lab_name", metavar="NAME", help="Open the TUI on a practice lab built by 'netdoctor lab up'.")
@click.option(
    "--refresh",
    "refresh_interval",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="In the TUI, collect and check again every SECONDS seconds.",
)
@click.pass_context
def main(
    ctx: click.Context,
    verbose: int,
    netns: str | None,
    snapshot_file: Path | None,
    bundle: Path | None,
    lab_name: str | None,
    refresh_interval: float | None,
) -> None:
    """Diagnose the node networks of Kubernetes and Docker clusters.

    With no command, open the interactive TUI on the local node or on the
    source that --netns, --snapshot, --bundle or --lab names.
    """
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    if ctx.invoked_subcommand is not None:
        if any(value is not None for value in (netns, snapshot_file, bundle, lab_name, refresh_interval)):
            raise click.UsageError("source options before a command only apply to the TUI; put them after the command")
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("the TUI needs a terminal; run 'netdoctor check' for a report, or 'netdoctor --help'")

    for option, path in (("--snapshot", snapshot_file), ("--bundle", bundle)):
        if path is not None and not path.exists():
            raise InputError(f"{option} {path}: no such file or directory")

    from netdoctor.sources import SourceError
    from netdoctor.tui import run

    try:
        run(netns=netns, snapshot=snapshot_file, bundle=bundle, lab=lab_name, refresh_interval=refresh_interval)
    except SourceError as error:
        raise InputError(" ".join(str(error).split())) from None


@main.command()
@source_options
@live_options
@click.option("--json", "as_json", is_flag=True, help="Print the netdoctor.check/1 JSON report.")
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITY_CHOICES),
    default="error",
    show_default=True,
    help="Exit 1 when a finding has this severity or a higher one.",
)
@click.option("--check", "check_ids", multiple=True, metavar="ID", help="Run only this check (repeatable).")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 2 after the report when any source was not collected or did not parse (any gap).",
)
def check(
    netns: str | None,
    snapshot_file: Path | None,
    bundle: Path | None,
    as_json: bool,
    fail_on: str,
    check_ids: tuple[str, ...],
    strict: bool,
    **live: Any,
) -> None:
    """Collect or load a snapshot, run the checks and report the findings."""
    from netdoctor.engine import UnknownCheckError, load_checks, run_checks
    from netdoctor.model import Severity
    from netdoctor.report import attach_fixes, dumps_report, exit_code

    # Check ids are validated before collecting, so a typo fails fast.
    try:
        specs = load_checks(check_ids or None)
    except UnknownCheckError as error:
        raise InputError(str(error)) from None

    snapshot = _load_snapshot(netns, snapshot_file, bundle, live)
    report = attach_fixes(run_checks(snapshot, specs))

    if as_json:
        click.echo(dumps_report(report), nl=False)
    else:
        from netdoctor.report import make_console, render_human

        render_human(report, make_console())

    if strict and report.gaps:
        click.echo(f"Error: --strict: the input is incomplete ({len(report.gaps)} gap(s) listed above)", err=True)
        sys.exit(2)
    sys.exit(exit_code(report, Severity.parse(fail_on)))


@main.command()
@source_options
@live_options
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Write the snapshot JSON to this file ('-' for stdout).",
)
def collect(netns: str | None, snapshot_file: Path | None, bundle: Path | None, output: Path, **live: Any) -> None:
    """Collect a snapshot and write it as JSON, for 'netdoctor check --snapshot'."""
    from netdoctor.model.serialize import dumps_snapshot

    snapshot = _load_snapshot(netns, snapshot_file, bundle, live)
    text = dumps_snapshot(snapshot)
    if str(output) == "-":
        click.echo(text)
        return

    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write {output}: {error.strerror or error}") from None
    click.echo(f"wrote {output}: {len(snapshot.nodes)} node(s), {len(snapshot.gaps)} gap(s)", err=True)


@main.command(name="checks")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def list_checks(as_json: bool) -> None:
    """List the check catalogue: id, severity, backends and title."""
    import json

    from netdoctor.engine import load_checks

    specs = load_checks()
    if as_json:
        rows = [
            {"id": spec.id, "severity": spec.severity.label, "backends": list(spec.backends), "title": spec.title}
            for spec in specs
        ]
        click.echo(json.dumps(rows, indent=2))
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


@main.command()
@click.argument("check_id", metavar="ID")
def explain(check_id: str) -> None:
    """Print a check's documentation: what it checks, why it matters, known problems, an example, fix safety."""
    from netdoctor.engine import DOC_HEADINGS, UnknownCheckError, load_checks

    try:
        (spec,) = load_checks([check_id])
    except UnknownCheckError as error:
        raise InputError(str(error)) from None

    # The docstrings use reStructuredText literals (``x``); a terminal shows them as `x`.
    sections = {name: text.replace("``", "`") for name, text in spec.sections().items()}
    click.echo(f"{spec.id}: {spec.title}")
    click.echo(f"severity: {spec.severity.label}; backends: {', '.join(spec.backends)}")
    if sections.get("Summary"):
        click.echo()
        click.echo(sections["Summary"])
    for heading in DOC_HEADINGS:
        click.echo()
        click.echo(click.style(heading, bold=True))
        click.echo(sections.get(heading) or "(not documented)")
