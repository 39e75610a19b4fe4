"""``lab up``, ``lab down`` and ``lab status``: build, remove and describe a lab."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from netdoctor.lab import routing, topology
from netdoctor.lab.etcd import FLANNEL_TYPES, seed_flannel, start_etcd
from netdoctor.lab.ping import ping_matrix
from netdoctor.lab.plan import LabPlan, check_name, make_plan
from netdoctor.lab.run import delete_netns, kill_pid, list_netns, pid_alive
from netdoctor.lab.state import STATE_FILE, LabError, LabState, default_state_dir, load_state

logger = logging.getLogger(__name__)

#: Process names the lab starts, by PID role suffix; ``lab down`` checks a PID's name before killing it.
DAEMON_NAMES = {"etcd": "etcd", "bird": "bird", "zebra": "zebra", "staticd": "staticd", "bgpd": "bgpd",
                "ovsdb-server": "ovsdb-server", "ovs-vswitchd": "ovs-vswitchd",
                "firewalld": "firewalld", "dbus": "dbus-daemon"}  # fmt: skip


def namespace_prefix(name: str) -> str:
    """Return the prefix of every namespace of lab ``name``: ``nd-<name>-``."""
    return f"nd-{check_name(name)}-"


def up(
    name: str = "lab",
    backend: str = "flannel-vxlan",
    nodes: int = 3,
    pods_per_node: int = 2,
    firewall: str = "iptables",
    state_dir: Path | None = None,
) -> LabState:
    """Build a lab and return its state; on failure remove what was built and raise :class:`LabError`."""
    if os.geteuid() != 0:
        raise LabError("the lab builds network namespaces: run it as root")
    plan = make_plan(name, backend, nodes, pods_per_node, firewall)
    state_dir = state_dir or default_state_dir(name)
    if (state_dir / STATE_FILE).exists():
        raise LabError(f"lab {name} already exists at {state_dir}: run 'netdoctor lab down --name {name}' first")
    leftovers = list_netns(namespace_prefix(name))
    if leftovers:
        raise LabError(
            f"namespaces of lab {name} already exist ({', '.join(leftovers[:3])}...): "
            f"run 'netdoctor lab down --name {name}' first"
        )

    started = time.monotonic()
    state = LabState(plan=plan, state_dir=state_dir)
    state.save()
    try:
        build(state)
    except BaseException:
        logger.error("lab %s: up failed, removing what was built", name)
        teardown(state)
        raise
    state.up_seconds = round(time.monotonic() - started, 3)
    state.save()
    logger.info("lab %s (%s, %d nodes) is up in %.2f s", name, backend, nodes, state.up_seconds)
    return state


def build(state: LabState) -> None:
    """Create the namespaces, start the daemons and program the backend."""
    plan = state.plan
    topology.create_namespaces(plan)
    for node in plan.nodes:
        topology.build_node(plan, node)

    if plan.backend in FLANNEL_TYPES:
        pid, endpoint = start_etcd(state.state_dir / "etcd" / "data", plan.name)
        state.pids["etcd"] = pid
        state.etcd_endpoint = endpoint
        state.save()
        seed_flannel(endpoint, plan)
        for node in plan.nodes:
            routing.program_node(state, node)
    elif plan.backend == "calico-bgp":
        from netdoctor.lab import bird

        bird.start(state)
    elif plan.backend == "frr":
        from netdoctor.lab import frr

        frr.start(state)
    else:
        from netdoctor.lab import ovs

        ovs.start(state)

    if plan.backend in ("frr", "ovs-gre", "ovs-vxlan"):
        # These designs give each node's Docker its slice of the pod network with --bip.
        for node in plan.nodes:
            routing.write_docker_config(state, node)

    if plan.firewall == "firewalld":
        from netdoctor.lab import firewalld

        firewalld.start(state)


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def kill_daemons(state: LabState) -> None:
    """Kill every daemon PID the state records, newest first, if it is still the same program."""
    for role, pid in reversed(list(state.pids.items())):
        expected = DAEMON_NAMES.get(role.rsplit("/", 1)[-1], "")
        if not pid_alive(pid):
            continue
        if expected and not _process_name(pid).startswith(expected[:15]):
            logger.warning("PID %d of %s is now %r, not %s: not killed", pid, role, _process_name(pid), expected)
            continue
        kill_pid(pid)
    state.pids.clear()


def processes_using(state_dir: Path) -> list[int]:
    """Return the PIDs whose command line names a path inside ``state_dir``.

    Every daemon the lab starts gets its config, data or socket path under the
    state directory on its command line, so this finds them even when the state
    file and the PID files are gone.
    """
    root = str(state_dir.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        # Options such as --data-dir=PATH or --remote=punix:PATH carry the path after a prefix.
        if any(argument == root or root + "/" in argument for argument in arguments):
            found.append(int(entry.name))
    return sorted(found)


def teardown(state: LabState) -> list[str]:
    """Kill the lab's daemons, delete its namespaces and remove its state directory.

    Return the processes killed that the state file did not name.
    """
    extra: list[str] = []
    kill_daemons(state)
    for pid_file in state.state_dir.rglob("*.pid"):
        # A daemon that wrote its PID file before the state was saved, in a crash during up.
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            extra.append(f"process {_process_name(pid)} ({pid}) from {pid_file.name}")
            kill_pid(pid)
    for pid in processes_using(state.state_dir):
        # A daemon the state and PID files no longer name, found by its command line.
        logger.warning("lab %s: killing PID %d, which still uses %s", state.name, pid, state.state_dir)
        extra.append(f"process {_process_name(pid)} ({pid}) using the state directory")
        kill_pid(pid)
    delete_netns(list_netns(namespace_prefix(state.name)))
    shutil.rmtree(state.state_dir, ignore_errors=True)
    return extra


def down(name: str = "lab", state_dir: Path | None = None) -> list[str]:
    """Remove lab ``name``: its daemons, namespaces and state directory; return what was removed."""
    state_dir = state_dir or default_state_dir(name)
    removed: list[str] = []
    existed = state_dir.exists()
    if (state_dir / STATE_FILE).exists():
        state = load_state(state_dir)
        if state.name != name:
            raise LabError(f"{state_dir} contains the state of lab {state.name}, not {name}: pass --name {state.name}")
        removed += [f"process {role} ({pid})" for role, pid in state.pids.items() if pid_alive(pid)]
    else:
        state = LabState(plan=LabPlan(name, "", "", (), "", ""), state_dir=state_dir)
    namespaces = list_netns(namespace_prefix(name))
    removed += [f"namespace {namespace}" for namespace in namespaces]
    removed[:0] = teardown(state)
    if state_dir.exists():
        raise LabError(f"could not remove {state_dir}; remove it by hand")
    if existed:
        removed.append(f"directory {state_dir}")
    return removed


def status(state: LabState, with_ping: bool = True) -> dict[str, Any]:
    """Describe a lab: nodes, addresses, pods, daemons, faults and the pod ping matrix."""
    plan = state.plan
    report: dict[str, Any] = {
        "name": plan.name,
        "backend": plan.backend,
        "firewall": plan.firewall,
        "state_dir": str(state.state_dir),
        "etcd": state.etcd_endpoint,
        "up_seconds": state.up_seconds,
        "nodes": [
            {
                "name": node.name,
                "netns": node.netns,
                "lan_ip": node.lan_ip,
                "subnet": node.subnet,
                "pods": [{"name": pod.name, "netns": pod.netns, "address": pod.address} for pod in node.pods],
            }
            for node in plan.nodes
        ],
        "daemons": {role: {"pid": pid, "running": pid_alive(pid)} for role, pid in state.pids.items()},
        "faults": [{"fault": fault["fault"], "node": fault.get("node")} for fault in state.faults],
    }
    if with_ping:
        matrix = ping_matrix(plan)
        report["ping"] = {f"{source} -> {target}": result.rtt_ms if result.ok else result.error
                          for (source, target), result in sorted(matrix.items())}  # fmt: skip
        report["ping_ok"] = sum(result.ok for result in matrix.values())
        report["ping_total"] = len(matrix)
    return report
