"""The ``netdoctor lab`` command group: up, down, status, break and heal.

``netdoctor.cli`` runs it as ``netdoctor lab``; it also runs alone as
``python -m netdoctor.lab.cli``. Exit status: 0 on success, 1 when building a
lab fails, 2 for invalid usage or input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netdoctor.commandline import (
    ArgumentParser,
    CommandError,
    choice,
    choice_metavar,
    echo,
    number_in_range,
    path_type,
    range_text,
    run,
    with_default,
)
from netdoctor.lab.plan import BACKENDS, FIREWALLS, PlanError
from netdoctor.lab.state import LabError, default_state_dir, load_state

logger = logging.getLogger(__name__)

#: The summary of the group, shown by ``netdoctor --help`` too.
SUMMARY = "Build, break and heal a practice cluster in network namespaces."


def _add_lab_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--name`` and ``--state-dir``, which every lab command takes."""
    parser.add_argument("--name", default="lab", help=with_default("Lab name; namespaces are nd-NAME-*.", "lab"))
    parser.add_argument(
        "--state-dir",
        type=path_type(file_okay=False),
        default=None,
        metavar="DIRECTORY",
        help="The lab's state directory [default: $NETDOCTOR_LAB_ROOT/NAME or /run/netdoctor/lab/NAME].",
    )


def add_lab_command(parser: ArgumentParser) -> None:
    """Define the lab commands as subcommands of ``parser``."""
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    up = commands.add_parser("up", help="Build a lab and print its nodes.", description="Build a lab and print its nodes.")
    up.add_argument("--backend", type=choice(*BACKENDS), default="flannel-vxlan", metavar=choice_metavar(*BACKENDS),
                    help=with_default("The pod network design to build.", "flannel-vxlan"))
    up.add_argument("--nodes", type=number_in_range(int, 2, 64), default=3, metavar="N",
                    help=with_default("Number of nodes.", 3, range_text(2, 64)))
    up.add_argument("--pods", type=number_in_range(int, 1, 8), default=2, metavar="N",
                    help=with_default("Pods per node.", 2, range_text(1, 8)))
    up.add_argument("--firewall", type=choice(*FIREWALLS), default="iptables", metavar=choice_metavar(*FIREWALLS),
                    help=with_default("The firewall that filters the nodes' traffic.", "iptables"))
    _add_lab_options(up)
    up.set_defaults(handler=lambda args: up_command(args.backend, args.nodes, args.pods, args.firewall, args.name,
                                                    args.state_dir))

    summary = "Remove every namespace, process and file of a lab, also after a crash."
    down = commands.add_parser("down", help=summary, description=summary)
    _add_lab_options(down)
    down.set_defaults(handler=lambda args: down_command(args.name, args.state_dir))

    summary = "List nodes, addresses, pods, daemons, active faults and the pod ping matrix."
    status = commands.add_parser("status", help=summary, description=summary)
    _add_lab_options(status)
    status.add_argument("--no-ping", action="store_true", help="Skip the pod-to-pod ping matrix.")
    status.add_argument("--json", dest="as_json", action="store_true", help="Print the status as JSON.")
    status.set_defaults(handler=lambda args: status_command(args.name, args.state_dir, args.no_ping, args.as_json))

    summary = "Inject FAULT (a check id) into a running lab."
    break_ = commands.add_parser("break", help=summary, description=summary)
    break_.add_argument("fault", nargs="?", metavar="FAULT", help="The fault to inject: a check id from --list.")
    break_.add_argument("--node", default=None, help="Node to break [default: node1].")
    break_.add_argument("--list", dest="show_list", action="store_true", help="Print the backend x fault matrix and exit.")
    _add_lab_options(break_)
    break_.set_defaults(handler=lambda args: break_command(args.fault, args.node, args.show_list, args.name,
                                                          args.state_dir))

    summary = "Undo every injected fault and restore the healthy state."
    heal = commands.add_parser("heal", help=summary, description=summary)
    _add_lab_options(heal)
    heal.set_defaults(handler=lambda args: heal_command(args.name, args.state_dir))


def main(argv: Sequence[str] | None = None, prog_name: str = "python -m netdoctor.lab.cli") -> int:
    """Run the lab commands alone with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)

    def run_lab() -> int | None:
        parser = ArgumentParser(prog=prog_name, description=SUMMARY)
        add_lab_command(parser)
        args = parser.parse_args(arguments)
        result: int | None = args.handler(args)
        return result

    return run(run_lab)


def _require_root(command: str) -> None:
    """Raise :class:`CommandError` unless running as root, which every lab command but ``break --list`` needs."""
    if os.geteuid() != 0:
        raise CommandError(f"'netdoctor lab {command}' needs root: the lab's nodes are network namespaces and the "
                           "processes in them; run it as root")


def _state_dir(name: str, state_dir: Path | None) -> Path:
    try:
        return state_dir or default_state_dir(name)
    except PlanError as error:
        raise CommandError(str(error)) from None


def up_command(backend: str, nodes: int, pods: int, firewall: str, name: str, state_dir: Path | None) -> None:
    """Build a lab and print its nodes."""
    from netdoctor.lab.lifecycle import up

    _require_root("up")
    try:
        state = up(name, backend, nodes, pods, firewall, _state_dir(name, state_dir))
    except PlanError as error:
        raise CommandError(str(error)) from None
    except LabError as error:
        raise CommandError(str(error), 1) from None
    echo(f"lab {name}: {backend}, {nodes} nodes, up in {state.up_seconds:.2f} s; state in {state.state_dir}")
    for node in state.plan.nodes:
        pods_text = ", ".join(pod.address for pod in node.pods)
        echo(f"  {node.name}  netns {node.netns}  lan {node.lan_ip}  subnet {node.subnet}  pods {pods_text}")


def down_command(name: str, state_dir: Path | None) -> None:
    """Remove every namespace, process and file of a lab, also after a crash."""
    from netdoctor.lab.lifecycle import down

    _require_root("down")
    try:
        removed = down(name, _state_dir(name, state_dir))
    except (LabError, PlanError) as error:
        raise CommandError(str(error)) from None
    if not removed:
        echo(f"lab {name}: nothing to remove: no state directory, namespace or process of this lab exists")
        return
    echo(f"lab {name}: removed {len(removed)} items")
    for item in removed:
        echo(f"  {item}")


def status_command(name: str, state_dir: Path | None, no_ping: bool, as_json: bool) -> None:
    """List nodes, addresses, pods, daemons, active faults and the pod ping matrix."""
    from netdoctor.lab.lifecycle import status

    _require_root("status")
    try:
        report = status(load_state(_state_dir(name, state_dir)), with_ping=not no_ping)
    except (LabError, PlanError) as error:
        raise CommandError(str(error)) from None
    if as_json:
        echo(json.dumps(report, indent=2))
        return
    _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    echo(f"lab {report['name']}: {report['backend']}, firewall {report['firewall']}, state in {report['state_dir']}")
    if report["etcd"]:
        echo(f"etcd: {report['etcd']}")
    for node in report["nodes"]:
        echo(f"  {node['name']}  netns {node['netns']}  lan {node['lan_ip']}  subnet {node['subnet']}")
        for pod in node["pods"]:
            echo(f"    {pod['name']}  {pod['address']}  netns {pod['netns']}")
    for role, daemon in report["daemons"].items():
        echo(f"  daemon {role}: PID {daemon['pid']} {'running' if daemon['running'] else 'NOT RUNNING'}")
    for fault in report["faults"]:
        echo(f"  fault {fault['fault']} on {fault['node'] or 'the cluster'}")
    if "ping" in report:
        echo(f"ping matrix: {report['ping_ok']}/{report['ping_total']} pod pairs answer")
        for pair, result in report["ping"].items():
            if not isinstance(result, float):
                echo(f"  FAIL {pair}: {result}")


def break_command(fault: str | None, node: str | None, show_list: bool, name: str, state_dir: Path | None) -> None:
    """Inject FAULT (a check id) into a running lab."""
    from netdoctor.lab.faults import NotApplicable, break_fault, matrix_text

    if show_list:
        echo(matrix_text())
        return
    if fault is None:
        raise CommandError("name a fault, or pass --list to see them")
    _require_root("break")
    try:
        state = load_state(_state_dir(name, state_dir))
        applied = break_fault(state, fault, node)
    except NotApplicable as error:
        raise CommandError(str(error)) from None
    except (LabError, PlanError) as error:
        raise CommandError(str(error)) from None
    echo(f"lab {name}: {applied}")


def heal_command(name: str, state_dir: Path | None) -> None:
    """Undo every injected fault and restore the healthy state."""
    from netdoctor.lab.faults import heal

    _require_root("heal")
    try:
        healed = heal(load_state(_state_dir(name, state_dir)))
    except (LabError, PlanError) as error:
        raise CommandError(str(error)) from None
    echo(f"lab {name}: healed {', '.join(healed) if healed else 'nothing (no active fault)'}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
