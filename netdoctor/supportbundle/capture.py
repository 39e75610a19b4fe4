"""Run the capture layout's commands on one node and read its config files, recording every step.

The commands and member names are those of ``docs/bundle-layout.md``, so that
``netdoctor check --bundle`` reads what this module writes. Commands run through
:meth:`Target.run` (inside the node's namespace) and files are read under the
node's root, so a lab node's files come from its state directory. Nothing here
judges the output: a step that fails is recorded with its error and the
capture goes on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from netdoctor.supportbundle.manifest import Step
from netdoctor.supportbundle.redact import holds_only_private_key, is_secret_path, key_file_paths
from netdoctor.target import CollectionError, Target

logger = logging.getLogger(__name__)

#: Commands every node gets: (member, argv). Members named twice are merged (IPv4 and IPv6 routes).
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ip-addr.json", ("ip", "-j", "-d", "addr", "show")),
    ("ip-route.json", ("ip", "-4", "-j", "-d", "route", "show", "table", "all")),
    ("ip-route.json", ("ip", "-6", "-j", "-d", "route", "show", "table", "all")),
    ("ip-neigh.json", ("ip", "-j", "neigh", "show", "nud", "all")),
    ("bridge-fdb.json", ("bridge", "-j", "fdb", "show")),
    ("iptables-save.txt", ("iptables-save", "-c")),
    ("ip6tables-save.txt", ("ip6tables-save", "-c")),
    ("sysctl.txt", ("sysctl", "-a", "-r", r"^net\.")),
    ("ip-addr.txt", ("ip", "-d", "addr", "show")),
    ("ip-route.txt", ("ip", "-4", "route", "show", "table", "all")),
    ("ip6-route.txt", ("ip", "-6", "route", "show", "table", "all")),
    ("ip-neigh.txt", ("ip", "neigh", "show", "nud", "all")),
    ("bridge-fdb.txt", ("bridge", "fdb", "show")),
    ("ip-rule.txt", ("ip", "rule", "show")),
    ("ip6-rule.txt", ("ip", "-6", "rule", "show")),
)

#: Files with a member name of their own in the layout.
LAYOUT_FILES = (("/run/flannel/subnet.env", "flannel-subnet.env"), ("/etc/docker/daemon.json", "docker-daemon.json"))

#: Other files a reviewer needs, as globs under the node's root; kept under ``files/<path>``.
EXTRA_FILE_GLOBS = (
    "/etc/sysconfig/flanneld", "/etc/default/flanneld", "/run/flannel/options.env",
    "/etc/kube-flannel/*.json", "/etc/cni/net.d/**/*",
    "/etc/frr/*.conf", "/etc/frr/daemons", "/etc/bird/*.conf", "/etc/bird.conf", "/etc/bird6.conf",
    "/etc/calico/confd/config/*.cfg",
    "/etc/sysctl.conf", "/etc/sysctl.d/*",
    "/etc/firewalld/firewalld.conf", "/etc/firewalld/zones/*.xml", "/etc/firewalld/policies/*.xml",
    "/var/lib/kubelet/config.yaml", "/var/lib/kubelet/kubeconfig", "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/bootstrap-kubelet.conf", "/etc/kubernetes/kubelet/kubelet-config.json",
)  # fmt: skip

#: Most files one glob may add, so a node root full of files cannot flood the bundle.
MAX_FILES_PER_GLOB = 200

OVS_SOCKETS = ("/run/openvswitch/db.sock", "/var/run/openvswitch/db.sock")
BIRD_SOCKETS = ("/run/bird/bird.ctl", "/var/run/bird/bird.ctl", "/var/run/bird.ctl", "/var/run/calico/bird.ctl")
FRR_SOCKET_DIRS = ("/run/frr", "/var/run/frr")


def now_iso() -> str:
    """Return the current UTC time in ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class PlannedStep:
    """One command or file read, decided before the capture starts so that progress has a total."""

    kind: str
    member: str | None
    argv: tuple[str, ...] = ()
    path: str = ""

    @property
    def label(self) -> str:
        """The command line or the node path, for progress and the manifest."""
        return " ".join(self.argv) if self.kind == "command" else self.path


@dataclass
class NodeCapture:
    """What was captured on one node: member outputs by name (several for merged members) and the steps."""

    node: str
    outputs: dict[str, list[bytes]]
    steps: list[Step]
    omitted: list[dict[str, str]]


ProgressCallback = Callable[[str, str], None]


def _is(test: Callable[[], bool]) -> bool | None:
    """Return what a ``Path.exists``, ``is_file`` or ``is_dir`` call returns, or None when it raises.

    It raises when the user may not search a directory above the path, as
    happens without root for ``/etc/frr``; the read step then records why.
    """
    try:
        return test()
    except OSError:
        return None


def _first_path(target: Target, paths: tuple[str, ...], inner: str = "") -> Path | None:
    for path in paths:
        location = target.path(path)
        if _is((location / inner if inner else location).exists) is not False:
            return location
    return None


def _daemon_steps(target: Target) -> list[PlannedStep]:
    """Commands for daemons that run on this node: Open vSwitch, BIRD, FRR."""
    steps = []
    ovs = _first_path(target, OVS_SOCKETS)
    if ovs is not None:
        steps.append(PlannedStep("command", "ovs-vsctl-show.txt", ("ovs-vsctl", f"--db=unix:{ovs}", "--timeout=10", "show")))
        steps.append(PlannedStep(
            "command", "ovsdb-dump.json", ("ovsdb-client", "--timeout=10", "dump", "--format=json", f"unix:{ovs}", "Open_vSwitch")
        ))
    bird = _first_path(target, BIRD_SOCKETS)
    if bird is not None:
        client = "birdcl" if target.which("birdcl") is not None and target.which("birdc") is None else "birdc"
        steps.append(PlannedStep("command", "bird-protocols.txt", (client, "-s", str(bird), "show", "protocols")))
        steps.append(PlannedStep("command", "bird-protocols-all.txt", (client, "-s", str(bird), "show", "protocols", "all")))
    frr = _first_path(target, FRR_SOCKET_DIRS, "bgpd.vty")
    if frr is not None:
        steps.append(PlannedStep("command", "frr-bgp-summary.json", ("vtysh", "--vty_socket", str(frr), "-c", "show bgp summary json")))
        steps.append(PlannedStep("command", "frr-running-config.txt", ("vtysh", "--vty_socket", str(frr), "-c", "show running-config")))
    return steps


def _firewalld_steps(target: Target) -> list[PlannedStep]:
    """firewall-cmd when firewalld runs; for a node root that is not ``/``, firewall-offline-cmd on its XML.

    The offline form matches what live collection reads for such a root: the
    permanent configuration under ``<root>/etc/firewalld``.
    """
    options = (("firewalld.txt", "--list-all-zones"), ("firewalld-default-zone.txt", "--get-default-zone"),
               ("firewalld-policies.txt", "--list-all-policies"))  # fmt: skip
    if target.which("firewall-cmd") is not None:
        try:
            state = target.run(["firewall-cmd", "--state"], timeout=10)
        except CollectionError as error:
            logger.info("%s: firewall-cmd --state failed: %s", target.name, error)
        else:
            if state.returncode == 0 and state.stdout.strip() == "running":
                return [PlannedStep("command", member, ("firewall-cmd", option)) for member, option in options]
    config = target.path("/etc/firewalld")
    offline_root = target.root.resolve() != Path("/")
    if offline_root and _is(config.is_dir) and target.which("firewall-offline-cmd") is not None:
        return [
            PlannedStep("command", member, ("firewall-offline-cmd", "--system-config", str(config), option))
            for member, option in options
        ]
    return []


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _file_steps(target: Target) -> list[PlannedStep]:
    steps = [PlannedStep("file", member, path=path) for path, member in LAYOUT_FILES]
    seen: set[str] = set()
    for pattern in EXTRA_FILE_GLOBS:
        location = target.path(pattern)
        if "*" not in pattern:
            matches = [location] if _is(location.is_file) is not False else []
        else:
            base = target.path(pattern.split("*", 1)[0].rsplit("/", 1)[0])
            relative = pattern[len(str(Path(pattern.split("*", 1)[0].rsplit("/", 1)[0]))):].lstrip("/")
            matches = sorted(base.glob(relative))[:MAX_FILES_PER_GLOB] if _is(base.is_dir) else []
        for match in matches:
            # A symbolic link out of a node root would capture the collecting host's files.
            if _is(match.is_file) is False or not _inside(target.root, match):
                continue
            node_path = "/" + match.relative_to(target.root).as_posix() if target.root != Path("/") else str(match)
            if node_path in seen:
                continue
            seen.add(node_path)
            steps.append(PlannedStep("file", "files" + node_path, path=node_path))
    return steps


def plan_node(target: Target) -> list[PlannedStep]:
    """Return the steps of one node: the layout's commands, its daemons' commands, then its files."""
    steps = [PlannedStep("command", member, argv) for member, argv in COMMANDS]
    steps.extend(_daemon_steps(target))
    steps.extend(_firewalld_steps(target))
    steps.extend(_file_steps(target))
    return steps


def _run_command(target: Target, planned: PlannedStep, capture: NodeCapture) -> None:
    started_at = now_iso()
    started = time.monotonic()
    step = Step(target.name, "command", planned.label, None, started_at)
    capture.steps.append(step)
    try:
        result = target.run(list(planned.argv))
    except CollectionError as error:
        step.duration = time.monotonic() - started
        step.error = str(error)
        logger.warning("%s: %s: %s", target.name, planned.label, error)
        return
    step.duration = result.duration
    step.exit_status = result.returncode
    data = result.stdout.encode("utf-8")
    if result.returncode != 0:
        lines = (result.stderr.strip() or "no error output").splitlines()
        step.error = f"exit status {result.returncode}: {lines[-1]}"
        logger.info("%s: %s exited with status %d", target.name, planned.label, result.returncode)
    if result.truncated:
        step.truncated = True
        step.error = f"output cut at the {target.output_cap}-byte cap"
        logger.warning("%s: %s: output cut at %d bytes", target.name, planned.label, target.output_cap)
    if data.strip() and planned.member is not None:
        step.member = planned.member
        step.bytes = len(data)
        capture.outputs.setdefault(planned.member, []).append(data)


def _read_file(target: Target, planned: PlannedStep, capture: NodeCapture, never_read: set[str]) -> None:
    if is_secret_path(planned.path) or planned.path in never_read:
        capture.omitted.append({"node": target.name, "path": planned.path, "reason": "private key file: never read"})
        return
    location = target.path(planned.path)
    if _is(location.exists) is False:
        return
    started_at = now_iso()
    started = time.monotonic()
    step = Step(target.name, "file", planned.path, None, started_at)
    capture.steps.append(step)
    try:
        with location.open("rb") as handle:
            data = handle.read(target.output_cap + 1)
    except OSError as error:
        step.duration = time.monotonic() - started
        step.error = f"cannot read {planned.path}: {error.strerror or error}"
        logger.warning("%s: %s", target.name, step.error)
        return
    step.duration = time.monotonic() - started
    if len(data) > target.output_cap:
        data = data[: target.output_cap]
        step.truncated = True
        step.error = f"file cut at the {target.output_cap}-byte cap"
    if holds_only_private_key(data.decode("utf-8", "replace")):
        capture.steps.remove(step)
        capture.omitted.append({"node": target.name, "path": planned.path, "reason": "holds a private key only: not written"})
        return
    step.member = planned.member
    step.bytes = len(data)
    if planned.member is not None:
        capture.outputs.setdefault(planned.member, []).append(data)


def capture_node(target: Target, steps: list[PlannedStep], progress: ProgressCallback | None = None) -> NodeCapture:
    """Run one node's planned steps; every step is recorded, failed or not."""
    capture = NodeCapture(target.name, {}, [], [])
    # Key files that configs point at are never read, whatever their name.
    never_read: set[str] = set()
    for planned in steps:
        if progress is not None:
            progress(target.name, planned.label)
        if planned.kind == "command":
            _run_command(target, planned, capture)
        else:
            _read_file(target, planned, capture, never_read)
            for data in capture.outputs.get(planned.member or "", [])[-1:]:
                never_read.update(key_file_paths(data.decode("utf-8", "replace")))
    _drop_referenced_keys(capture, never_read)
    return capture


def _drop_referenced_keys(capture: NodeCapture, never_read: set[str]) -> None:
    """Remove key files read before the config that names them was read."""
    for path in sorted(never_read):
        member = "files" + path
        if member in capture.outputs:
            del capture.outputs[member]
            capture.steps = [step for step in capture.steps if step.member != member]
            capture.omitted.append({"node": capture.node, "path": path, "reason": "named as a key file by a config: not written"})


def merge_outputs(outputs: dict[str, list[bytes]]) -> dict[str, bytes]:
    """Join members captured by several commands: JSON lists are concatenated, anything else split out.

    ``ip-route.json`` holds both ``ip -4`` and ``ip -6`` routes when both parse;
    otherwise the IPv6 output is kept as ``ip6-route.json`` and only IPv4 is read.
    """
    members: dict[str, bytes] = {}
    for member, parts in outputs.items():
        if len(parts) == 1:
            members[member] = parts[0]
            continue
        try:
            documents = [json.loads(part) for part in parts]
        except ValueError:
            documents = []
        if documents and all(isinstance(document, list) for document in documents):
            merged = [item for document in documents for item in document]
            members[member] = json.dumps(merged).encode("utf-8")
            continue
        members[member] = parts[0]
        for number, part in enumerate(parts[1:], start=2):
            name = "ip6-route.json" if member == "ip-route.json" and number == 2 else f"{member}.{number}"
            members[name] = part
    return members
