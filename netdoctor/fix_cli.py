"""The ``netdoctor fix`` and ``netdoctor runbook`` commands.

``netdoctor.cli`` attaches both with ``main.add_command``. Exit status: 0 when
the command did what was asked, 1 when an apply run stopped or failed or the
re-check still finds faults, 2 for invalid usage or unreadable input.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Where journals of a real node go unless ``--journal`` names a file.
JOURNAL_DIR = Path("/var/lib/netdoctor")

#: The directory that stands for a namespace node's ``/`` under ``--netns``: namespaces share the host's files,
#: so persisted files go here instead of the host's ``/etc``.
NETNS_ROOT = Path("/run/netdoctor/netns")


class FixInputError(click.ClickException):
    """Unreadable or invalid input: printed as one ``Error:`` line, exit status 2."""

    exit_code = 2


@dataclass
class Source:
    """The snapshot and how its nodes are reached: bindings, the etcd endpoint, the journal directory."""

    snapshot: Any
    bindings: dict[str, Any]
    etcd_endpoint: str | None
    journal_dir: Path


def _source_options(function: F) -> F:
    options = [
        click.option("--netns", metavar="NS[,NS...]", help="Collect from these network namespaces, one node each."),
        click.option("--lab", "lab_name", metavar="NAME", help="Collect from the nodes of a running netdoctor lab."),
        click.option("--lab-state-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="The lab's state directory [default: $NETDOCTOR_LAB_ROOT/NAME or /run/netdoctor/lab/NAME]."),
        click.option("--snapshot", "snapshot_file", type=click.Path(path_type=Path),
                     help="Read a snapshot JSON file (print only)."),
        click.option("--bundle", type=click.Path(path_type=Path), help="Read a support bundle (print only)."),
        click.option("--check", "check_ids", multiple=True, metavar="ID", help="Fix only this check's findings (repeatable)."),
        click.option("--node", "node_names", multiple=True, metavar="NAME", help="Plan only for this node (repeatable)."),
        click.option("--etcd-endpoints", "etcd_endpoint", metavar="URL[,URL...]", callback=_keep_endpoint,
                     help="Read flannel's keys from these etcd client URLs; steps that write etcd keys use the first "
                          "[default: a lab's own etcd]."),
        # The spelling of earlier releases, kept so that existing scripts still work.
        click.option("--etcd-endpoint", "etcd_endpoint_alias", metavar="URL", hidden=True, expose_value=False,
                     callback=_endpoint_alias),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _keep_endpoint(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """Keep what ``--etcd-endpoint`` stored when ``--etcd-endpoints`` is not given; click may process either first."""
    return value if value is not None else context.params.get("etcd_endpoint")


def _endpoint_alias(context: click.Context, parameter: click.Parameter, value: str | None) -> None:
    if value is not None:
        context.params["etcd_endpoint"] = value


def _endpoints(text: str | None) -> tuple[str, ...]:
    """Split ``--etcd-endpoints`` at commas."""
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def _load_source(netns: str | None, lab_name: str | None, lab_state_dir: Path | None, snapshot_file: Path | None,
                 bundle: Path | None, etcd_endpoint: str | None) -> Source:
    from netdoctor.fix import NodeBinding
    from netdoctor.sources import EtcdOptions, SourceError, parse_netns_list, snapshot_from_options

    live = snapshot_file is None and bundle is None
    endpoints = _endpoints(etcd_endpoint)
    etcd = EtcdOptions(endpoints=endpoints) if endpoints and live else EtcdOptions()
    try:
        snapshot = snapshot_from_options(netns=netns, snapshot=snapshot_file, bundle=bundle, lab=lab_name,
                                         lab_state_dir=lab_state_dir, etcd=etcd)
    except SourceError as error:
        raise FixInputError(" ".join(str(error).split())) from None
    first = endpoints[0] if endpoints else None
    if lab_name or lab_state_dir:
        return _lab_source(snapshot, lab_name or "lab", lab_state_dir, first)
    bindings: dict[str, Any] = {}
    if netns is not None:
        bindings = {name: NodeBinding(name, str(NETNS_ROOT / name)) for name in parse_netns_list(netns)}
    return Source(snapshot, bindings, first, JOURNAL_DIR)


def _lab_source(snapshot: Any, name: str, state_dir: Path | None, etcd_endpoint: str | None) -> Source:
    """Bind a lab's snapshot to its nodes' namespaces and roots; journals go under the lab state directory."""
    from netdoctor.fix import NodeBinding
    from netdoctor.lab.plan import PlanError as LabPlanError
    from netdoctor.lab.state import LabError, default_state_dir, load_state

    try:
        state = load_state(state_dir or default_state_dir(name))
    except (LabError, LabPlanError) as error:
        raise FixInputError(str(error)) from None
    bindings = {node.name: NodeBinding(node.netns, str(state.node_root(node.name))) for node in state.plan.nodes}
    return Source(snapshot, bindings, etcd_endpoint or state.etcd_endpoint, state.state_dir / "journals")


def _journal_path(journal: Path | None, directory: Path) -> Path:
    if journal is not None:
        return journal
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"fix-{stamp}-{os.getpid()}.json"


def _recheck(plans: list[Any]) -> Any:
    """Collect the plans' nodes again and run every check."""
    from netdoctor.collect import collect_cluster
    from netdoctor.engine import load_checks, run_checks
    from netdoctor.sources import EtcdOptions, add_etcd
    from netdoctor.target import Target

    targets = [Target(plan.node, netns=plan.netns, root=Path(plan.root)) for plan in plans]
    source = plans[0].source if plans else "local"
    snapshot = collect_cluster(targets, source)
    endpoint = next((plan.etcd_endpoint for plan in plans if plan.etcd_endpoint), None)
    if endpoint is not None:
        snapshot = add_etcd(snapshot, EtcdOptions(endpoints=(endpoint,)))
    return run_checks(snapshot, load_checks())


def _show_before_after(before: Any, after: Any) -> None:
    def summaries(report: Any) -> list[str]:
        return [f"[{finding.check}] {finding.summary}" for finding in report.findings]

    old, new = summaries(before), summaries(after)
    click.echo(f"before: {len(old)} finding(s); after: {len(new)} finding(s)")
    for line in old:
        click.echo(f"  {'fixed    ' if line not in new else 'remaining'} {line}")
    for line in new:
        if line not in old:
            click.echo(f"  new       {line}")


def _confirm(plan: Any, step: Any) -> bool:
    if not sys.stdin.isatty():
        return False
    return click.confirm(f"{plan.node}: apply disruptive step '{step.title}'? {step.why}", default=False)


@click.command("fix")
@_source_options
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan as JSON to this file.")
@click.option("--apply", "apply_", is_flag=True, help="Apply the plan (or PLAN.json) instead of printing it.")
@click.option("--yes", is_flag=True, help="Apply disruptive steps without asking.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the apply journal here [default: the lab state directory, or /var/lib/netdoctor].")
@click.option("--undo", "undo_file", type=click.Path(dir_okay=False, path_type=Path), metavar="JOURNAL",
              help="Revert the steps a journal records as applied, in reverse order.")
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[PLAN.json]")
def fix(netns: str | None, lab_name: str | None, lab_state_dir: Path | None, snapshot_file: Path | None,
        bundle: Path | None, check_ids: tuple[str, ...], node_names: tuple[str, ...], etcd_endpoint: str | None,
        save: Path | None, apply_: bool, yes: bool, journal: Path | None, undo_file: Path | None,
        plan_file: Path | None) -> None:
    """Print the remedy for the current findings as a shell script, or apply or undo it.

    Dry run is the default: the script runs only safe steps when pasted.
    """
    from netdoctor.fix import NodeBinding, PlanError, build_plans, dumps_plans, load_plans
    from netdoctor.fixapply import ApplyError, undo_journal
    from netdoctor.runbook import render_script

    if undo_file is not None and (apply_ or plan_file is not None):
        raise click.UsageError("--undo JOURNAL cannot be combined with --apply or PLAN.json; "
                               "run 'netdoctor fix --undo JOURNAL' and the apply as two commands")
    if undo_file is not None:
        try:
            count = undo_journal(undo_file, echo=click.echo)
        except ApplyError as error:
            raise FixInputError(str(error)) from None
        click.echo(f"reverted {count} step(s) from {undo_file}")
        return
    if plan_file is not None and not apply_:
        raise FixInputError("a PLAN.json argument needs --apply; print a plan with 'netdoctor fix' instead")

    before = None
    # A live source is collected again whole for the re-check; a plan file knows only its nodes.
    reload: Callable[[], Any] | None = None
    if plan_file is not None:
        try:
            plans = load_plans(plan_file)
        except PlanError as error:
            raise FixInputError(str(error)) from None
        journal_dir = JOURNAL_DIR
        before = _recheck(plans)
    else:
        from netdoctor.engine import UnknownCheckError, load_checks, run_checks

        try:
            specs = load_checks()
            if check_ids:
                load_checks(check_ids)
        except UnknownCheckError as error:
            raise FixInputError(str(error)) from None
        source = _load_source(netns, lab_name, lab_state_dir, snapshot_file, bundle, etcd_endpoint)
        before = run_checks(source.snapshot, specs)

        def reload() -> Any:
            fresh = _load_source(netns, lab_name, lab_state_dir, snapshot_file, bundle, etcd_endpoint)
            return run_checks(fresh.snapshot, specs)

        unknown = sorted(set(node_names) - set(source.snapshot.node_names))
        if unknown:
            raise FixInputError(f"--node {', '.join(unknown)}: no such node; the snapshot has "
                                f"{', '.join(source.snapshot.node_names) or 'no nodes'}")
        plans = build_plans(before, source.bindings, etcd_endpoint=source.etcd_endpoint, nodes=node_names,
                            checks=check_ids)
        journal_dir = source.journal_dir

    if save is not None:
        try:
            save.write_text(dumps_plans(plans), encoding="utf-8")
        except OSError as error:
            raise FixInputError(f"cannot write {save}: {error.strerror or error}") from None
        click.echo(f"wrote {save}: {len(plans)} plan(s), {sum(len(plan.steps) for plan in plans)} step(s)", err=True)

    if not apply_:
        if save is None:
            click.echo(render_script(plans, before.snapshot.source if before else "a plan file"), nl=False)
        return

    path = _journal_path(journal, journal_dir)
    result = _apply(plans, path, yes, append=False)
    after = reload() if reload is not None else _recheck(plans)
    # A fix can uncover the next fault (a route added now meets the FORWARD policy), so a run
    # from a live source plans again from the re-check, for a bounded number of rounds.
    rounds = 1
    while plan_file is None and result.stopped is None and result.counts.get("applied") and rounds < MAX_ROUNDS:
        bindings = {plan.node: NodeBinding(plan.netns, plan.root) for plan in plans}
        more = build_plans(after, bindings, etcd_endpoint=plans[0].etcd_endpoint if plans else None,
                           nodes=node_names, checks=check_ids)
        if not any(step.action is not None for plan in more for step in plan.steps):
            break
        rounds += 1
        click.echo(f"round {rounds}: the re-check found more to fix")
        result = _apply(more, path, yes, append=True)
        if reload is not None:
            after = reload()
        else:
            after = _recheck(plans + [plan for plan in more if plan.node not in {item.node for item in plans}])
    _show_before_after(before, after)
    if result.stopped is not None or after.findings:
        sys.exit(1)


#: How many plan-apply-recheck rounds one ``fix --apply`` runs at most.
MAX_ROUNDS = 3


def _apply(plans: list[Any], path: Path, yes: bool, append: bool) -> Any:
    from netdoctor.fixapply import ApplyError, apply_plans

    try:
        result = apply_plans(plans, path, allow_disruptive=yes, confirm=None if yes else _confirm, echo=click.echo,
                             append=append)
    except ApplyError as error:
        raise FixInputError(str(error)) from None
    except OSError as error:
        raise FixInputError(f"cannot write the journal {path}: {error.strerror or error}; pass --journal PATH") from None
    counts = ", ".join(f"{count} {status}" for status, count in sorted(result.counts.items())) or "no steps"
    click.echo(f"journal {path}: {counts}")
    return result


@click.command("runbook")
@_source_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the Markdown here instead of stdout.")
def runbook(netns: str | None, lab_name: str | None, lab_state_dir: Path | None, snapshot_file: Path | None,
            bundle: Path | None, check_ids: tuple[str, ...], node_names: tuple[str, ...], etcd_endpoint: str | None,
            output: Path | None) -> None:
    """Write a Markdown runbook for the findings: per node, each step with why, commands, verify and roll back."""
    from netdoctor.engine import UnknownCheckError, load_checks, run_checks
    from netdoctor.fix import attach_fixes, build_plans
    from netdoctor.runbook import render_runbook

    try:
        specs = load_checks()
        if check_ids:
            load_checks(check_ids)
    except UnknownCheckError as error:
        raise FixInputError(str(error)) from None
    source = _load_source(netns, lab_name, lab_state_dir, snapshot_file, bundle, etcd_endpoint)
    report = attach_fixes(run_checks(source.snapshot, specs))
    plans = build_plans(report, source.bindings, etcd_endpoint=source.etcd_endpoint, nodes=node_names, checks=check_ids)
    findings = [f"`{finding.check}` ({finding.severity.label}): {finding.summary}" for finding in report.findings
                if (not check_ids or finding.check in check_ids)]
    text = render_runbook(plans, source.snapshot.source, findings)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise FixInputError(f"cannot write {output}: {error.strerror or error}") from None
    click.echo(f"wrote {output}", err=True)
