"""Turn a lab into what ``netdoctor check --lab NAME`` collects from: targets and an etcd endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from netdoctor.lab.run import list_netns
from netdoctor.lab.state import LabError, default_state_dir, load_state
from netdoctor.target import Target


@dataclass(frozen=True)
class LabSource:
    """One lab as a collection source: a target per node, and etcd's client URL (None without etcd)."""

    name: str
    backend: str
    targets: tuple[Target, ...]
    etcd_endpoint: str | None


def lab_source(name: str, state_dir: Path | None = None) -> LabSource:
    """Read lab ``name``'s state file and return its targets; raise :class:`LabError` if it is not running.

    Each target enters the node's namespace and reads files under the node's
    directory in the state directory, which holds ``run/flannel/subnet.env`` and
    the daemon configs.
    """
    state = load_state(state_dir or default_state_dir(name))
    missing = [node.netns for node in state.plan.nodes if node.netns not in set(list_netns(node.netns))]
    if missing:
        raise LabError(f"lab {name} is not running (namespace {missing[0]} is missing): run 'netdoctor lab up' again")
    targets = tuple(
        Target(name=node.name, netns=node.netns, root=state.node_root(node.name)) for node in state.plan.nodes
    )
    return LabSource(name=state.name, backend=state.plan.backend, targets=targets, etcd_endpoint=state.etcd_endpoint)
