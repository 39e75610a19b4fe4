"""The ``netdoctor fix`` and ``netdoctor runbook`` commands.

``netdoctor.cli`` imports this module only to run one of them. Exit status: 0 when
the command did what was asked, 1 when an apply run stopped or failed or the
re-check still finds faults, 2 for invalid usage or unreadable input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netdoctor.cli import LAB_STATE_DIR_HELP
from netdoctor.commandline import ArgumentParser, CommandError, confirm, echo, path_type

logger = logging.getLogger(__name__)

#: Where journals of a real node go unless ``--journal`` names a file.
JOURNAL_DIR = Path("/var/lib/netdoctor")

#: The directory that stands for a namespace node's ``/`` under ``--netns``: namespaces share the host's files,
#: so persisted files go here instead of the host's ``/etc``.
NETNS_ROOT = Path("/run/netdoctor/netns")


class FixInputError(CommandError):
    """Unreadable or invalid input: printed as one ``Error:`` line, exit status 2."""


@dataclass
class Source:
    """The snapshot and how its nodes are reached: bindings, the etcd endpoint, the journal directory."""

    snapshot: Any
    bindings: dict[str, Any]
    etcd_endpoint: str | None
    journal_dir: Path


def _add_source_options(parser: ArgumentParser) -> None:
    parser.add_argument("--netns", metavar="NS[,NS...]", help="Collect from these network namespaces, one node each.")
    parser.add_argument("--lab", dest="lab_name", metavar="NAME",
                        help="Collect from the nodes of a running netdoctor lab.")
    parser.add_argument("--lab-state-dir", type=path_type(file_okay=False), metavar="DIRECTORY",
                        help=LAB_STATE_DIR_HELP)
    parser.add_argument("--snapshot", dest="snapshot_file", type=Path, metavar="PATH",
                        help="Read a snapshot JSON file (print only).")
    parser.add_argument("--bundle", type=Path, metavar="PATH", help="Read a support bundle (print only).")
    parser.add_argument("--check", dest="check_ids", action="append", metavar="ID",
                        help="Fix only this check's findings (repeatable).")
    parser.add_argument("--node", dest="node_names", action="append", metavar="NAME",
                        help="Plan only for this node (repeatable).")
    parser.add_argument("--etcd-endpoints", dest="etcd_endpoint", metavar="URL[,URL...]",
                        help="Read flannel's keys from these etcd client URLs; steps that write etcd keys use the "
                             "first [default: a lab's own etcd].")
    # The spelling of earlier releases, kept so that existing scripts still work; --etcd-endpoints wins over it.
    parser.add_argument("--etcd-endpoint", dest="etcd_endpoint_alias", metavar="URL", help=argparse.SUPPRESS)


def _source_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Return the source options' values as keyword arguments of :func:`fix` and :func:`runbook`."""
    endpoint = args.etcd_endpoint if args.etcd_endpoint is not None else args.etcd_endpoint_alias
    return {"netns": args.netns, "lab_name": args.lab_name, "lab_state_dir": args.lab_state_dir,
            "snapshot_file": args.snapshot_file, "bundle": args.bundle, "check_ids": tuple(args.check_ids or ()),
            "node_names": tuple(args.node_names or ()), "etcd_endpoint": endpoint}


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
    if snapshot_file is not None:
        # A snapshot file may come from another machine, whatever it was collected from, so its plans
        # are guarded by host name when printed and are never applied here.
        snapshot = replace(snapshot, source=f"snapshot:{snapshot_file.name}")
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


def _plan_journal_dir(plans: list[Any], state_dir: Path | None) -> Path:
    """Return where the journal of a saved plan goes: its lab's state directory for a lab's plans, else JOURNAL_DIR."""
    labs = {plan.source.partition(":")[2] for plan in plans}
    if not plans or any(not plan.source.startswith("lab:") for plan in plans) or len(labs) != 1:
        return JOURNAL_DIR
    from netdoctor.lab.plan import PlanError as LabPlanError
    from netdoctor.lab.state import LabError, default_state_dir

    try:
        return (state_dir or default_state_dir(labs.pop())) / "journals"
    except (LabError, LabPlanError) as error:
        raise FixInputError(f"the plan names an invalid lab ({error}); pass --journal FILE") from None


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


def _show_before_after(before: Any, after: Any, scope: str = "") -> None:
    def summaries(report: Any) -> list[str]:
        return [f"[{finding.check}] {finding.summary}" for finding in report.findings]

    old, new = summaries(before), summaries(after)
    echo(f"before: {len(old)} finding(s); after: {len(new)} finding(s){scope}")
    for line in old:
        echo(f"  {'fixed    ' if line not in new else 'remaining'} {line}")
    for line in new:
        if line not in old:
            echo(f"  new       {line}")


def _confirm(plan: Any, step: Any) -> bool:
    if not sys.stdin.isatty():
        return False
    return confirm(f"{plan.node}: apply disruptive step '{step.title}'? {step.why}", default=False)


def add_fix_command(parser: ArgumentParser) -> None:
    """Define the options and arguments of ``netdoctor fix``."""
    parser.description = f"{parser.description}\n\nDry run is the default: the script runs only safe steps when pasted."
    _add_source_options(parser)
    parser.add_argument("--save", type=path_type(dir_okay=False, output=True), metavar="FILE",
                        help="Write the plan as JSON to this file.")
    parser.add_argument("--apply", dest="apply_", action="store_true",
                        help="Apply the plan (or PLAN.json) instead of printing it.")
    parser.add_argument("--yes", action="store_true", help="Apply disruptive steps without asking.")
    parser.add_argument("--journal", type=path_type(dir_okay=False), metavar="FILE",
                        help="Write the apply journal here [default: the lab state directory, or /var/lib/netdoctor].")
    parser.add_argument("--undo", dest="undo_file", type=path_type(dir_okay=False), metavar="JOURNAL",
                        help="Revert the steps a journal records as applied, in reverse order.")
    parser.add_argument("plan_file", nargs="?", type=path_type(dir_okay=False), metavar="PLAN.json",
                        help="A plan written by --save, to apply with --apply.")
    parser.set_defaults(handler=lambda args: fix(**_source_settings(args), save=args.save, apply_=args.apply_,
                                                 yes=args.yes, journal=args.journal, undo_file=args.undo_file,
                                                 plan_file=args.plan_file))


def fix(netns: str | None, lab_name: str | None, lab_state_dir: Path | None, snapshot_file: Path | None,
        bundle: Path | None, check_ids: tuple[str, ...], node_names: tuple[str, ...], etcd_endpoint: str | None,
        save: Path | None, apply_: bool, yes: bool, journal: Path | None, undo_file: Path | None,
        plan_file: Path | None) -> int:
    """Print the remedy for the current findings as a shell script, or apply or undo it; return the exit status."""
    from netdoctor.fix import NodeBinding, PlanError, build_plans, dumps_plans, load_plans
    from netdoctor.fixapply import ApplyError, undo_journal
    from netdoctor.runbook import render_script

    if undo_file is not None and (apply_ or plan_file is not None):
        raise CommandError("--undo JOURNAL cannot be combined with --apply or PLAN.json; "
                           "run 'netdoctor fix --undo JOURNAL' and the apply as two commands")
    if undo_file is not None:
        try:
            count = undo_journal(undo_file, echo=echo)
        except ApplyError as error:
            raise FixInputError(str(error)) from None
        echo(f"reverted {count} step(s) from {undo_file}")
        return 0
    if plan_file is not None and not apply_:
        raise FixInputError("a PLAN.json argument needs --apply; print a plan with 'netdoctor fix' instead")
    if apply_ and plan_file is None and (snapshot_file is not None or bundle is not None):
        # Refused before loading, so that not even an empty journal is written for another machine's plan.
        option = "--snapshot" if snapshot_file is not None else "--bundle"
        raise FixInputError(f"--apply with {option}: a snapshot or bundle describes another machine; print the "
                            "plan with 'netdoctor fix' and run it there")

    before = None
    # A live source is collected again whole for the re-check; a plan file knows only its nodes.
    reload: Callable[[], Any] | None = None
    if plan_file is not None:
        try:
            plans = load_plans(plan_file)
        except PlanError as error:
            raise FixInputError(str(error)) from None
        for plan in plans:
            if plan.netns is not None and not (Path("/run/netns") / plan.netns).exists():
                raise FixInputError(f"{plan_file}: node {plan.node}: network namespace {plan.netns} does not exist; "
                                    "plan again from the current state with 'netdoctor fix --save FILE'")
        journal_dir = _plan_journal_dir(plans, lab_state_dir)
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
        echo(f"wrote {save}: {len(plans)} plan(s), {sum(len(plan.steps) for plan in plans)} step(s)", err=True)

    if not apply_:
        if save is None:
            echo(render_script(plans, before.snapshot.source if before else "a plan file"), nl=False)
        return 0

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
        echo(f"round {rounds}: the re-check found more to fix")
        result = _apply(more, path, yes, append=True)
        if reload is not None:
            after = reload()
        else:
            after = _recheck(plans + [plan for plan in more if plan.node not in {item.node for item in plans}])
    # A plan file names only its own nodes, so checks that compare nodes see part of the cluster.
    _show_before_after(before, after, " (checked on the plan's nodes only)" if plan_file is not None else "")
    return 1 if result.stopped is not None or after.findings else 0


#: How many plan-apply-recheck rounds one ``fix --apply`` runs at most.
MAX_ROUNDS = 3


def _apply(plans: list[Any], path: Path, yes: bool, append: bool) -> Any:
    from netdoctor.fixapply import ApplyError, apply_plans

    try:
        result = apply_plans(plans, path, allow_disruptive=yes, confirm=None if yes else _confirm, echo=echo,
                             append=append)
    except ApplyError as error:
        raise FixInputError(str(error)) from None
    except OSError as error:
        raise FixInputError(f"cannot write the journal {path}: {error.strerror or error}; pass --journal PATH") from None
    counts = ", ".join(f"{count} {status}" for status, count in sorted(result.counts.items())) or "no steps"
    echo(f"journal {path}: {counts}")
    return result


def add_runbook_command(parser: ArgumentParser) -> None:
    """Define the options of ``netdoctor runbook``."""
    _add_source_options(parser)
    parser.add_argument("-o", "--output", type=path_type(dir_okay=False, output=True), metavar="FILE",
                        help="Write the Markdown here instead of stdout.")
    parser.set_defaults(handler=lambda args: runbook(**_source_settings(args), output=args.output))


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
    # As with the findings, gaps of checks that were not requested are left out. With --node, so are other nodes' gaps.
    gaps = [f"{gap.node or 'cluster'}: `{gap.source}`: {gap.reason}" for gap in report.gaps
            if (not check_ids or gap.check_id is None or gap.check_id in check_ids)
            and (not node_names or gap.node is None or gap.node in node_names)]
    text = render_runbook(plans, source.snapshot.source, findings, gaps)
    if output is None:
        echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise FixInputError(f"cannot write {output}: {error.strerror or error}") from None
    echo(f"wrote {output}", err=True)
