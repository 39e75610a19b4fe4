"""The state directory of a lab and the state file that records what it created.

Everything a lab creates outside its namespaces lives under one directory:
``state.json``, etcd's data, daemon configs, sockets and logs, and per node a
``nodes/<node>/`` tree that stands for the node's ``/`` (``run/flannel/subnet.env``).
``lab down`` reads the state file to find what to remove, so it is written
before each daemon starts and after each change.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdoctor.lab.plan import LabPlan, check_name

logger = logging.getLogger(__name__)

#: Environment variable naming the directory that holds one state directory per lab.
ROOT_ENV = "NETDOCTOR_LAB_ROOT"
DEFAULT_ROOT = Path("/run/netdoctor/lab")
STATE_FILE = "state.json"


class LabError(Exception):
    """A lab operation failed; the message says what failed and what to do."""


def default_state_dir(name: str) -> Path:
    """Return the state directory of lab ``name``: ``$NETDOCTOR_LAB_ROOT/<name>`` or ``/run/netdoctor/lab/<name>``."""
    root = Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)
    return root / check_name(name)


@dataclass
class LabState:
    """A lab's plan and what it created: daemon PIDs, the etcd endpoint and active faults."""

    plan: LabPlan
    state_dir: Path
    #: Daemon PIDs by role, such as ``etcd`` or ``node1/bird``, killed in reverse order by ``lab down``.
    pids: dict[str, int] = field(default_factory=dict)
    #: The etcd client URL (``http://127.0.0.1:PORT``), or None when the backend runs no etcd.
    etcd_endpoint: str | None = None
    #: Active faults, each ``{"fault": ID, "node": NAME, "undo": [STEP, ...]}``.
    faults: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds ``lab up`` took.
    up_seconds: float | None = None

    @property
    def name(self) -> str:
        """The lab name."""
        return self.plan.name

    def node_root(self, node: str) -> Path:
        """Return the directory that stands for node ``node``'s ``/``."""
        return self.state_dir / "nodes" / node

    def node_path(self, node: str, path: str) -> Path:
        """Return where an absolute path on node ``node``, such as ``/run/bird/bird.ctl``, lies on the host."""
        return self.node_root(node) / path.lstrip("/")

    def save(self) -> None:
        """Write the state file atomically."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "plan": self.plan.to_json(),
            "pids": self.pids,
            "etcd_endpoint": self.etcd_endpoint,
            "faults": self.faults,
            "up_seconds": self.up_seconds,
        }
        temporary = self.state_dir / (STATE_FILE + ".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n")
        temporary.replace(self.state_dir / STATE_FILE)


def load_state(state_dir: Path) -> LabState:
    """Read a lab's state file; raise :class:`LabError` when it is missing or unreadable."""
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab state at {path}: start the lab with 'netdoctor lab up', or pass the lab's state directory") from None
    except (OSError, json.JSONDecodeError) as error:
        raise LabError(f"cannot read lab state {path}: {error}; remove the lab with 'netdoctor lab down'") from None
    try:
        plan = LabPlan.from_json(data["plan"])
    except (KeyError, TypeError) as error:
        raise LabError(f"lab state {path} is invalid ({error!r}); remove the lab with 'netdoctor lab down'") from None
    return LabState(
        plan=plan,
        state_dir=state_dir,
        pids={str(key): int(value) for key, value in data.get("pids", {}).items()},
        etcd_endpoint=data.get("etcd_endpoint"),
        faults=list(data.get("faults", [])),
        up_seconds=data.get("up_seconds"),
    )
