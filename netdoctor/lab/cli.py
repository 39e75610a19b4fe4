"""The ``netdoctor lab`` command group: up, down, status, break and heal.

``netdoctor.cli`` attaches this group; it also runs alone as
``python -m netdoctor.lab.cli``.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from netdoctor.lab.plan import BACKENDS, FIREWALLS, PlanError
from netdoctor.lab.state import LabError, default_state_dir, load_state

logger = logging.getLogger(__name__)

_name_option = click.option("--name", default="lab", show_default=True, help="Lab name; namespaces are nd-NAME-*.")
_state_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The lab's state directory [default: $NETDOCTOR_LAB_ROOT/NAME or /run/netdoctor/lab/NAME].",
)


def _state_dir(name: str, state_dir: Path | None) -> Path:
    try:
        return state_dir or default_state_dir(name)
    except PlanError as error:
        raise click.UsageError(str(error)) from None


def _fail(error: Exception, status: int = 2) -> None:
    """Print one error line and exit: 2 for invalid input (the default), 1 for a failed run."""
    click.echo(f"Error: {error}", err=True)
    sys.exit(status)


lab = click.Group("lab", help="Build, break and heal a practice cluster in network namespaces.")


@lab.command("up")
@click.option("--backend", type=click.Choice(BACKENDS), default="flannel-vxlan", show_default=True)
@click.option("--nodes", type=click.IntRange(2, 64), default=3, show_default=True, help="Number of nodes.")
@click.option("--pods", type=click.IntRange(1, 8), default=2, show_default=True, help="Pods per node.")
@click.option("--firewall", type=click.Choice(FIREWALLS), default="iptables", show_default=True)
@_name_option
@_state_option
def up_command(backend: str, nodes: int, pods: int, firewall: str, name: str, state_dir: Path | None) -> None:
    """Build a lab and print its nodes."""
    from netdoctor.lab.lifecycle import up

    try:
        state = up(name, backend, nodes, pods, firewall, _state_dir(name, state_dir))
    except PlanError as error:
        _fail(error)
        return
    except LabError as error:
        _fail(error, 1)
        return
    click.echo(f"lab {name}: {backend}, {nodes} nodes, up in {state.up_seconds:.2f} s; state in {state.state_dir}")
    for node in state.plan.nodes:
        pods_text = ", ".join(pod.address for pod in node.pods)
        click.echo(f"  {node.name}  netns {node.netns}  lan {node.lan_ip}  subnet {node.subnet}  pods {pods_text}")


@lab.command("down")
@_name_option
@_state_option
def down_command(name: str, state_dir: Path | None) -> None:
    """Remove every namespace, process and file of a lab, also after a crash."""
    from netdoctor.lab.lifecycle import down

    try:
        removed = down(name, _state_dir(name, state_dir))
    except (LabError, PlanError) as error:
        _fail(error)
        return
    click.echo(f"lab {name}: removed {len(removed)} items")
    for item in removed:
        click.echo(f"  {item}")


@lab.command("status")
@_name_option
@_state_option
@click.option("--no-ping", is_flag=True, help="Skip the pod-to-pod ping matrix.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(name: str, state_dir: Path | None, no_ping: bool, as_json: bool) -> None:
    """List nodes, addresses, pods, daemons, active faults and the pod ping matrix."""
    from netdoctor.lab.lifecycle import status

    try:
        report = status(load_state(_state_dir(name, state_dir)), with_ping=not no_ping)
    except (LabError, PlanError) as error:
        _fail(error)
        return
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    click.echo(f"lab {report['name']}: {report['backend']}, firewall {report['firewall']}, state in {report['state_dir']}")
    if report["etcd"]:
        click.echo(f"etcd: {report['etcd']}")
    for node in report["nodes"]:
        click.echo(f"  {node['name']}  netns {node['netns']}  lan {node['lan_ip']}  subnet {node['subnet']}")
        for pod in node["pods"]:
            click.echo(f"    {pod['name']}  {pod['address']}  netns {pod['netns']}")
    for role, daemon in report["daemons"].items():
        click.echo(f"  daemon {role}: PID {daemon['pid']} {'running' if daemon['running'] else 'NOT RUNNING'}")
    for fault in report["faults"]:
        click.echo(f"  fault {fault['fault']} on {fault['node'] or 'the cluster'}")
    if "ping" in report:
        click.echo(f"ping matrix: {report['ping_ok']}/{report['ping_total']} pod pairs answer")
        for pair, result in report["ping"].items():
            if not isinstance(result, float):
                click.echo(f"  FAIL {pair}: {result}")


@lab.command("break")
@click.argument("fault", required=False)
@click.option("--node", default=None, help="Node to break [default: node1].")
@click.option("--list", "show_list", is_flag=True, help="Print the backend x fault matrix and exit.")
@_name_option
@_state_option
def break_command(fault: str | None, node: str | None, show_list: bool, name: str, state_dir: Path | None) -> None:
    """Inject FAULT (a check id) into a running lab."""
    from netdoctor.lab.faults import NotApplicable, break_fault, matrix_text

    if show_list:
        click.echo(matrix_text())
        return
    if fault is None:
        raise click.UsageError("name a fault, or pass --list to see them")
    try:
        state = load_state(_state_dir(name, state_dir))
        applied = break_fault(state, fault, node)
    except NotApplicable as error:
        _fail(error)
    except (LabError, PlanError) as error:
        _fail(error)
        return
    click.echo(f"lab {name}: {applied}")


@lab.command("heal")
@_name_option
@_state_option
def heal_command(name: str, state_dir: Path | None) -> None:
    """Undo every injected fault and restore the healthy state."""
    from netdoctor.lab.faults import heal

    try:
        healed = heal(load_state(_state_dir(name, state_dir)))
    except (LabError, PlanError) as error:
        _fail(error)
        return
    click.echo(f"lab {name}: healed {', '.join(healed) if healed else 'nothing (no active fault)'}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lab()
