"""Fix plans: ordered steps that print, apply or revert the remedy for findings on one node.

A :class:`Step` holds data only: an :class:`Operation` (what to change), the
:class:`Condition` objects that must still hold before it runs, an "already
done" condition, and an inverse operation for undo. Operations and conditions
are plain ``kind`` + ``params`` records, so a plan saves to JSON
(``fix --save``), loads again (``fix --apply PLAN.json``) and renders as the
exact shell commands that an engineer would type. :mod:`netdoctor.fixapply`
runs them; the modules of ``netdoctor.fixers`` build them from a snapshot.

Every path a step writes is a path on the node (``/etc/sysctl.d/...``). The
plan's ``root`` says where the node's ``/`` lies on the host that applies it:
``/`` on a real node, the node's directory under the lab state directory for a
lab node.
"""

from __future__ import annotations

import enum
import json
import logging
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Naming a finding's fixers needs only the fixers index, so it lives with the report,
# where ``netdoctor check`` reaches it without importing this module.
from netdoctor.report import attach_fixes, fixes_for  # noqa: F401 - fixes_for stays importable from here

logger = logging.getLogger(__name__)

#: Version tag of saved plans and journals.
PLAN_FORMAT = "netdoctor.fixplan/1"


class PlanError(Exception):
    """A plan file or fixer input that cannot be used; the message names it and what to do."""


class Safety(enum.IntEnum):
    """How far a step may be applied; ordered so that ``step.safety >= allowed`` means permitted.

    ``DISPLAY_ONLY`` steps are never applied (restarting Docker with a new
    ``--bip``), ``DISRUPTIVE`` steps only after confirmation or ``--yes`` (MTU
    changes, route removal, session restarts), and ``SAFE`` steps add or correct
    state without cutting existing traffic.
    """

    DISPLAY_ONLY = 0
    DISRUPTIVE = 1
    SAFE = 2

    @property
    def label(self) -> str:
        """The level as printed: ``display-only``, ``disruptive`` or ``safe``."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Safety:
        """Parse a label; raise :class:`PlanError` for anything else."""
        try:
            return cls[text.upper().replace("-", "_")]
        except KeyError:
            raise PlanError(f"unknown safety level {text!r}; expected safe, disruptive or display-only") from None


@dataclass(frozen=True)
class Operation:
    """One change to a node, such as ``route-add`` with its destination and gateway."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise PlanError(f"invalid operation {data!r}: expected an object with 'kind' and 'params'")
        return cls(data["kind"], dict(data.get("params") or {}))


@dataclass(frozen=True)
class Condition:
    """A fact about the node that a fresh snapshot must show, such as a route being present."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """Render the condition for scripts, runbooks and stop messages."""
        return describe_condition(self)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Condition:
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise PlanError(f"invalid condition {data!r}: expected an object with 'kind' and 'params'")
        return cls(data["kind"], dict(data.get("params") or {}))


@dataclass(frozen=True)
class Step:
    """One step of a plan.

    A display-only step has no ``action``; its ``display`` lines are the commands
    a person runs by hand. Any other step has an ``action``, and ``done`` tells
    whether the node is already in the state the action would produce.
    """

    #: Stable id within the plan, such as ``iptables-accept-icmp-8``.
    id: str
    title: str
    safety: Safety
    #: The reason for the step and, for a disruptive step, the traffic or session it interrupts.
    why: str
    #: The fixer that built the step, and the check whose finding it addresses.
    fixer: str
    check: str
    action: Operation | None = None
    #: The static inverse, for runbooks; undo uses the inverse recorded when the step ran.
    inverse: Operation | None = None
    preconditions: tuple[Condition, ...] = ()
    done: Condition | None = None
    #: Commands shown for a display-only step.
    display: tuple[str, ...] = ()
    #: How to verify the step worked, as a shell command.
    verify: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "safety": self.safety.label,
            "why": self.why,
            "fixer": self.fixer,
            "check": self.check,
            "action": self.action.to_json() if self.action else None,
            "inverse": self.inverse.to_json() if self.inverse else None,
            "preconditions": [condition.to_json() for condition in self.preconditions],
            "done": self.done.to_json() if self.done else None,
            "display": list(self.display),
            "verify": self.verify,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        try:
            return cls(
                id=str(data["id"]),
                title=str(data["title"]),
                safety=Safety.parse(str(data["safety"])),
                why=str(data.get("why", "")),
                fixer=str(data.get("fixer", "")),
                check=str(data.get("check", "")),
                action=Operation.from_json(data["action"]) if data.get("action") else None,
                inverse=Operation.from_json(data["inverse"]) if data.get("inverse") else None,
                preconditions=tuple(Condition.from_json(item) for item in data.get("preconditions", [])),
                done=Condition.from_json(data["done"]) if data.get("done") else None,
                display=tuple(str(line) for line in data.get("display", [])),
                verify=str(data.get("verify", "")),
            )
        except (KeyError, TypeError) as error:
            raise PlanError(f"invalid step {data.get('id', '?') if isinstance(data, dict) else data!r}: "
                            f"missing or wrong field {error}") from None


@dataclass(frozen=True)
class FixPlan:
    """The ordered steps for one node, with where that node is reached from this host."""

    node: str
    steps: tuple[Step, ...] = ()
    #: The network namespace that stands for the node, or None for this host's own.
    netns: str | None = None
    #: Where the node's ``/`` lies on the host that applies the plan.
    root: str = "/"
    #: The etcd client URL for steps that write etcd keys.
    etcd_endpoint: str | None = None
    #: The snapshot source the plan was built from: ``local``, ``netns``, ``lab``, ``bundle``, ...
    source: str = "local"

    @property
    def applicable(self) -> bool:
        """Whether the plan may be applied: bundles and snapshot files describe another machine.

        Live sources are ``local``, ``netns`` and ``lab`` or ``lab:NAME``.
        """
        return self.source in ("local", "netns", "lab") or self.source.startswith("lab:")

    def node_path(self, path: str) -> Path:
        """Return where a node path such as ``/etc/sysctl.d/x.conf`` lies on this host."""
        return Path(self.root) / path.lstrip("/")

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "netns": self.netns,
            "root": self.root,
            "etcd_endpoint": self.etcd_endpoint,
            "source": self.source,
            "steps": [step.to_json() for step in self.steps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FixPlan:
        if not isinstance(data, dict) or "node" not in data:
            raise PlanError("invalid plan: expected an object with 'node' and 'steps'")
        return cls(
            node=str(data["node"]),
            steps=tuple(Step.from_json(item) for item in data.get("steps", [])),
            netns=data.get("netns"),
            root=str(data.get("root") or "/"),
            etcd_endpoint=data.get("etcd_endpoint"),
            source=str(data.get("source", "local")),
        )


def dumps_plans(plans: list[FixPlan]) -> str:
    """Serialize plans as the JSON that ``fix --save`` writes."""
    return json.dumps({"format": PLAN_FORMAT, "plans": [plan.to_json() for plan in plans]}, indent=2) + "\n"


def load_plans(path: Path) -> list[FixPlan]:
    """Read a plan file written by ``fix --save``; raise :class:`PlanError` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"plan file {path} not found; write one with 'netdoctor fix --save FILE'") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(f"cannot read plan file {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise PlanError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise PlanError(f"{path} is not a netdoctor plan (expected \"format\": \"{PLAN_FORMAT}\")")
    try:
        plans = [FixPlan.from_json(item) for item in data.get("plans", [])]
    except PlanError as error:
        raise PlanError(f"{path}: {error}") from None
    # Rendering each operation checks its kind and parameters now, not when the step runs.
    for plan in plans:
        for step in plan.steps:
            for operation in (step.action, step.inverse):
                if operation is None:
                    continue
                try:
                    render_operation(plan, operation)
                except PlanError as error:
                    raise PlanError(f"{path}: node {plan.node}, step {step.id}: {error}") from None
                except (KeyError, TypeError, ValueError) as error:
                    raise PlanError(f"{path}: node {plan.node}, step {step.id}: operation {operation.kind} has an "
                                    f"invalid or missing parameter ({error})") from None
    return plans


# --- Shell rendering -------------------------------------------------------

def _ip(plan: FixPlan, arguments: list[str]) -> str:
    head = ["ip", "-n", plan.netns] if plan.netns else ["ip"]
    return shlex.join(head + arguments)


def _in_node(plan: FixPlan, argv: list[str]) -> str:
    head = ["ip", "netns", "exec", plan.netns] if plan.netns else []
    return shlex.join(head + argv)


def route_arguments(params: dict[str, Any]) -> list[str]:
    """Return the ``ip route`` selector of a route operation: ``[TYPE] DST [via GW] [dev DEV] ...``."""
    words: list[str] = []
    if params.get("type", "unicast") != "unicast":
        words.append(params["type"])
    words.append(params["destination"])
    if params.get("gateway"):
        words += ["via", params["gateway"]]
    if params.get("dev"):
        words += ["dev", params["dev"]]
    if params.get("protocol") and params["protocol"] not in ("boot", "unspec"):
        words += ["proto", params["protocol"]]
    if params.get("metric"):
        words += ["metric", str(params["metric"])]
    if params.get("onlink"):
        words.append("onlink")
    return words


#: The ovsdb-server sockets of a node, relative to its root; the first that exists is used.
OVS_SOCKETS = ("/run/openvswitch/db.sock", "/var/run/openvswitch/db.sock")

#: The private system bus socket of a lab node's firewalld, relative to the node's root.
FIREWALLD_BUS = "/run/dbus/system_bus_socket"


#: ``birdc`` words of the BIRD operations that name one protocol.
BIRD_COMMANDS = {"bird-enable": ["enable"], "bird-disable": ["disable"], "bird-reload-out": ["reload", "out"]}


def frr_shutdown_lines(params: dict[str, Any]) -> list[str]:
    """Return the ``vtysh -c`` arguments that shut a BGP neighbour down, or bring it back with ``shutdown: false``.

    ``router bgp`` without an AS number selects the default instance, so the
    node's AS number need not be known.
    """
    negate = "" if params.get("shutdown") else "no "
    return ["-c", "configure terminal", "-c", "router bgp", "-c", f"{negate}neighbor {params['neighbor']} shutdown"]


def ovs_vsctl(plan: FixPlan) -> list[str]:
    """Return ``ovs-vsctl`` with ``--db`` naming the database socket under the node's root when it is not ``/``."""
    if plan.root in ("", "/"):
        return ["ovs-vsctl"]
    sockets = [plan.node_path(path) for path in OVS_SOCKETS]
    socket = next((path for path in sockets if path.exists()), sockets[0])
    return ["ovs-vsctl", f"--db=unix:{socket}"]


#: The ovs-vswitchd control sockets of a node, relative to its root, as patterns; the first match is used.
OVS_CONTROL_SOCKETS = ("/run/openvswitch/ovs-vswitchd*.ctl", "/var/run/openvswitch/ovs-vswitchd*.ctl")


def ovs_appctl(plan: FixPlan) -> list[str]:
    """Return ``ovs-appctl``, with ``-t`` naming ovs-vswitchd's control socket under the node's root when it is not ``/``."""
    if plan.root in ("", "/"):
        return ["ovs-appctl"]
    root = Path(plan.root)
    for pattern in OVS_CONTROL_SOCKETS:
        found = sorted(root.glob(pattern.lstrip("/")))
        if found:
            return ["ovs-appctl", "-t", str(found[0])]
    return ["ovs-appctl", "-t", str(plan.node_path("/run/openvswitch/ovs-vswitchd.ctl"))]


def firewall_cmd(plan: FixPlan) -> list[str]:
    """Return ``firewall-cmd``, pointed at the node's private system bus when the node has one under its root."""
    if plan.root in ("", "/"):
        return ["firewall-cmd"]
    return ["env", f"DBUS_SYSTEM_BUS_ADDRESS=unix:path={plan.node_path(FIREWALLD_BUS)}", "firewall-cmd"]


def _firewalld_lines(plan: FixPlan, params: dict[str, Any], verb: str) -> list[str]:
    option = f"--{verb}-{params['element']}={params['value']}"
    head = firewall_cmd(plan)
    zone = f"--zone={params['zone']}"
    return [_in_node(plan, head + [zone, option]), _in_node(plan, head + ["--permanent", zone, option])]


def render_operation(plan: FixPlan, operation: Operation) -> list[str]:
    """Render an operation as the shell commands that do the same on the plan's node."""
    kind, params = operation.kind, operation.params
    if kind == "route-replace":
        return [_ip(plan, ["route", "replace", *route_arguments(params)])]
    if kind == "fdb-replace":
        head = ["bridge", "-n", plan.netns] if plan.netns else ["bridge"]
        return [shlex.join(head + ["fdb", "replace", params["mac"], "dev", params["dev"], "dst", params["dst"],
                                   "self", "permanent"])]
    if kind == "link-address":
        return [_ip(plan, ["link", "set", "dev", params["name"], "address", params["mac"]])]
    if kind in ("firewalld-add", "firewalld-remove"):
        return _firewalld_lines(plan, params, kind.split("-")[1])
    if kind == "sysctl":
        return [_in_node(plan, ["sysctl", "-w", f"{params['key']}={params['value']}"])]
    if kind == "file":
        path = str(plan.node_path(params["path"]))
        body = str(params["content"]).rstrip("\n")
        return [shlex.join(["mkdir", "-p", str(Path(path).parent)]),
                f"cat > {shlex.quote(path)} <<'EOF'", *body.splitlines(), "EOF"]
    if kind == "file-restore":
        path = str(plan.node_path(params["path"]))
        if params.get("content") is None:
            directories = [str(plan.node_path(directory)) for directory in params.get("directories", [])]
            rmdir = [shlex.join(["rmdir", "--ignore-fail-on-non-empty", *directories])] if directories else []
            return [shlex.join(["rm", "-f", path]), *rmdir]
        return [f"cat > {shlex.quote(path)} <<'EOF'", *str(params["content"]).rstrip("\n").splitlines(), "EOF"]
    if kind in ("route-add", "route-del"):
        return [_ip(plan, ["route", kind.split("-")[1], *route_arguments(params)])]
    if kind == "link-mtu":
        return [_ip(plan, ["link", "set", "dev", params["name"], "mtu", str(params["mtu"])])]
    if kind == "link-up":
        return [_ip(plan, ["link", "set", "dev", params["name"], "up"])]
    if kind == "link-down":
        return [_ip(plan, ["link", "set", "dev", params["name"], "down"])]
    if kind == "link-master":
        master = params.get("master")
        return [_ip(plan, ["link", "set", "dev", params["name"], *(["master", master] if master else ["nomaster"])])]
    if kind == "link-del":
        return [_ip(plan, ["link", "del", "dev", params["name"]])]
    if kind == "vxlan-add":
        words = ["link", "add", params["name"], "type", "vxlan", "id", str(params["vni"])]
        if params.get("local"):
            words += ["local", params["local"]]
        if params.get("dev"):
            words += ["dev", params["dev"]]
        words += ["dstport", str(params.get("port", 8472)), "nolearning"]
        lines = [_ip(plan, words)]
        if params.get("mac"):
            lines.append(_ip(plan, ["link", "set", "dev", params["name"], "address", params["mac"]]))
        if params.get("address"):
            lines.append(_ip(plan, ["addr", "add", params["address"], "dev", params["name"]]))
        lines.append(_ip(plan, ["link", "set", "dev", params["name"], "up"]))
        return lines
    if kind in ("neigh-replace", "neigh-del"):
        verb = kind.split("-")[1]
        words = ["neigh", verb, params["address"]]
        if verb == "replace":
            words += ["lladdr", params["lladdr"]]
        words += ["dev", params["dev"]]
        if verb == "replace":
            words += ["nud", "permanent"]
        return [_ip(plan, words)]
    if kind in ("fdb-append", "fdb-del"):
        head = ["bridge", "-n", plan.netns] if plan.netns else ["bridge"]
        verb = "append" if kind == "fdb-append" else "del"
        tail = ["self", "permanent"] if verb == "append" else ["self"]
        return [shlex.join(head + ["fdb", verb, params["mac"], "dev", params["dev"], "dst", params["dst"], *tail])]
    if kind in ("iptables-insert", "iptables-delete"):
        program = "ip6tables" if params.get("family") == 6 else "iptables"
        rule = shlex.split(params["rule"])
        if kind == "iptables-delete":
            return [_in_node(plan, [program, "-t", params["table"], "-D", params["chain"], *rule])]
        if params.get("before"):
            return _insert_before_lines(plan, program, params, rule)
        return _insert_lines(plan, program, params, rule)
    if kind in ("etcd-put", "etcd-delete"):
        endpoint = params.get("endpoint") or plan.etcd_endpoint or "http://127.0.0.1:2379"
        if params.get("api", "v3") == "v2":
            url = f"{endpoint.rstrip('/')}/v2/keys/{params['key'].lstrip('/')}"
            if kind == "etcd-delete":
                return [shlex.join(["curl", "-fsS", "-X", "DELETE", url])]
            return [shlex.join(["curl", "-fsS", "-X", "PUT", url, "--data-urlencode", f"value={params['value']}"])]
        argv = ["etcdctl", f"--endpoints={endpoint}"]
        if kind == "etcd-delete":
            return ["ETCDCTL_API=3 " + shlex.join(argv + ["del", params["key"]])]
        return ["ETCDCTL_API=3 " + shlex.join(argv + ["put", params["key"], params["value"]])]
    if kind == "bird-restart":
        socket = str(plan.node_path(params["socket"]))
        return [_in_node(plan, ["birdc", "-s", socket, "restart", params["protocol"]])]
    if kind == "frr-clear":
        sockets = str(plan.node_path(params.get("sockets", "/run/frr")))
        return [_in_node(plan, ["vtysh", "--vty_socket", sockets, "-c", f"clear bgp {params['neighbor']}"])]
    if kind in BIRD_COMMANDS:
        socket = str(plan.node_path(params["socket"]))
        return [_in_node(plan, ["birdc", "-s", socket, *BIRD_COMMANDS[kind], params["protocol"]])]
    if kind == "frr-neighbor-shutdown":
        sockets = str(plan.node_path(params.get("sockets", "/run/frr")))
        return [_in_node(plan, ["vtysh", "--vty_socket", sockets, *frr_shutdown_lines(params)])]
    if kind == "ovs-add-port":
        return [shlex.join(ovs_vsctl(plan) + ["add-port", params["bridge"], params["port"], "--", "set", "interface",
                                              params["port"], f"type={params['type']}",
                                              f"options:remote_ip={params['remote_ip']}"])]
    if kind == "ovs-del-port":
        return [shlex.join(ovs_vsctl(plan) + ["del-port", params["bridge"], params["port"]])]
    if kind == "ovs-mtu-request":
        return [shlex.join(ovs_vsctl(plan) + ["set", "interface", params["name"], f"mtu_request={params['mtu']}"])]
    if kind == "ovs-bridge-hwaddr":
        return [shlex.join(ovs_vsctl(plan) + ["set", "bridge", params["bridge"], f"other_config:hwaddr={params['mac']}"])]
    if kind == "ovs-fdb-flush":
        return [shlex.join(ovs_appctl(plan) + ["fdb/flush", params["bridge"]])]
    raise PlanError(f"unknown operation kind {kind!r}")


def _insert_before_lines(plan: FixPlan, program: str, params: dict[str, Any], rule: list[str]) -> list[str]:
    """Return the lines that insert a rule right before another, at the position that rule has when the script runs.

    Rules may have moved since the snapshot was taken, so the script finds
    both rules' lines in ``iptables -S CHAIN``, whose first line is the chain's
    policy or ``-N CHAIN``. It skips the step with a message when the rule is
    gone, as ``fix --apply`` stops, and when the inserted rule is already in
    place before it. Neither case ends the shell, so the lines can be pasted.
    """
    table, chain, blocker = params["table"], params["chain"], f"-A {params['before']}"
    listing = _in_node(plan, [program, "-t", table, "-S", chain])
    inserted = f"-A {chain} {params['rule']}"
    skipped_message = f"netdoctor: skipped: the rule {blocker} is gone, so there is no place to insert before it; " \
           "run netdoctor fix again"
    return [
        f"netdoctor_line=$({listing} | grep -nxF -e {shlex.quote(blocker)} | head -n 1 | cut -d: -f1)",
        f"netdoctor_done=$({listing} | grep -nxF -e {shlex.quote(inserted)} | head -n 1 | cut -d: -f1)",
        'if [ -z "$netdoctor_line" ]; then',
        f"  echo {shlex.quote(skipped_message)} >&2",
        'elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then',
        f"  echo {shlex.quote(f'netdoctor: already done: {inserted}')}",
        "else",
        "  " + _in_node(plan, [program, "-t", table, "-I", chain]) + ' "$((netdoctor_line - 1))" ' + shlex.join(rule),
        "fi",
    ]


def _insert_lines(plan: FixPlan, program: str, params: dict[str, Any], rule: list[str]) -> list[str]:
    """Return the lines that insert a rule at a fixed position or append it, unless the chain already has it."""
    table, chain = params["table"], params["chain"]
    position = params.get("position")
    where = ["-I", chain, str(position)] if position else ["-A", chain]
    listing = _in_node(plan, [program, "-t", table, "-S", chain])
    inserted = f"-A {chain} {params['rule']}"
    return [
        f"if {listing} | grep -qxF -e {shlex.quote(inserted)}; then",
        f"  echo {shlex.quote(f'netdoctor: already done: {inserted}')}",
        "else",
        "  " + _in_node(plan, [program, "-t", table, *where, *rule]),
        "fi",
    ]


def render_step(plan: FixPlan, step: Step) -> list[str]:
    """Return the commands of a step: its display lines, or its action rendered for the plan's node."""
    if step.action is None:
        return list(step.display)
    return render_operation(plan, step.action)


def describe_condition(condition: Condition) -> str:
    """Render a condition as a short fact: ``route 10.0.0.0/24 is present``."""
    kind, params = condition.kind, condition.params
    if kind == "sysctl-is":
        return f"{params['key']} = {params['value']}"
    if kind in ("route-present", "route-absent"):
        return f"route {' '.join(route_arguments(params))} is {kind.split('-')[1]}"
    if kind == "destination-free":
        return f"the main table has no route to exactly {params['destination']}"
    if kind == "link-present":
        return f"interface {params['name']} exists"
    if kind == "link-absent":
        return f"interface {params['name']} does not exist"
    if kind == "link-mtu-is":
        return f"{params['name']} MTU is {params['mtu']}"
    if kind == "link-up":
        return f"{params['name']} is up"
    if kind == "link-master-is":
        return f"{params['name']} is enslaved to {params.get('master') or 'no bridge'}"
    if kind in ("iptables-rule-present", "iptables-rule-absent"):
        where = f" before '-A {params['before']}'" if params.get("before") else ""
        return f"{params['table']} rule '-A {params['text']}' is {kind.rsplit('-', 1)[1]}{where}"
    if kind == "file-is":
        return f"{params['path']} contains the expected text"
    if kind in ("etcd-key-is", "etcd-key-absent"):
        return f"etcd key {params['key']} " + ("is absent" if kind == "etcd-key-absent" else "has the expected value")
    if kind == "bgp-established":
        return f"BGP session {params['name']} is Established"
    if kind == "link-mac-is":
        return f"{params['name']} has MAC {params['mac']}"
    if kind == "ovs-port-present":
        return f"OVS port {params['port']} on {params['bridge']} is present"
    if kind == "ovs-port-absent":
        return f"OVS port {params['port']} is absent"
    if kind == "ovs-tunnel-to":
        return f"an OVS tunnel with remote_ip {params['remote_ip']} is present"
    if kind == "firewalld-zone-has":
        return f"firewalld zone {params['zone']} has {params['element']} {params['value']}"
    if kind in ("neigh-present", "fdb-present"):
        what = "neighbour" if kind == "neigh-present" else "FDB entry"
        key = params.get("address") or params.get("mac")
        return f"{what} {key} dev {params['dev']} is present"
    return f"{kind} {params}"


# --- Plan building ---------------------------------------------------------

def order_steps(steps: list[Step]) -> list[Step]:
    """Order steps by dependency: etcd config, leases, links, addresses, routes, filters, daemons, display-only.

    Steps with the same id are merged (two findings may call for the same rule),
    and the order within one stage is the order the fixers produced.
    """
    seen: set[str] = set()
    unique: list[Step] = []
    for step in steps:
        if step.id in seen:
            continue
        seen.add(step.id)
        unique.append(step)
    return sorted(unique, key=lambda step: _STAGE.get(step.action.kind if step.action else "", 90))


_STAGE = {
    "etcd-put": 0, "etcd-delete": 1, "sysctl": 10, "file": 11, "vxlan-add": 20, "link-up": 21, "link-master": 22,
    "ovs-add-port": 23, "ovs-del-port": 24, "link-mtu": 25, "ovs-mtu-request": 25, "link-address": 26,
    "ovs-bridge-hwaddr": 26, "ovs-fdb-flush": 27,
    "neigh-replace": 30, "fdb-append": 31, "fdb-replace": 31, "route-del": 40, "route-add": 41, "route-replace": 42,
    "iptables-insert": 50,
    "firewalld-add": 51, "bird-restart": 60, "frr-clear": 60, "bird-enable": 60, "frr-neighbor-shutdown": 60,
    "bird-reload-out": 61,
}


def merge_plans(plans: list[FixPlan]) -> list[FixPlan]:
    """Merge plans of the same node into one, with steps ordered by dependency."""
    by_node: dict[str, FixPlan] = {}
    for plan in plans:
        existing = by_node.get(plan.node)
        if existing is None:
            by_node[plan.node] = replace(plan, steps=tuple(order_steps(list(plan.steps))))
        else:
            by_node[plan.node] = replace(existing, steps=tuple(order_steps(list(existing.steps) + list(plan.steps))))
    return [by_node[name] for name in sorted(by_node)]


# --- Fixer registry ----------------------------------------------------------

@dataclass(frozen=True)
class NodeBinding:
    """The namespace and root directory through which this host reaches one node of the snapshot."""

    netns: str | None = None
    root: str = "/"


@dataclass(frozen=True)
class FixContext:
    """The inputs of a fixer: the snapshot, its report, and the node bindings."""

    report: Any
    bindings: dict[str, NodeBinding] = field(default_factory=dict)

    @property
    def snapshot(self) -> Any:
        """The :class:`netdoctor.model.ClusterSnapshot` the findings came from."""
        return self.report.snapshot

    def backends(self, node: str) -> tuple[str, ...]:
        """Return the detected backends of a node."""
        return tuple(self.report.backends.get(node, ()))


@dataclass(frozen=True)
class NodeStep:
    """A step a fixer produced, with the node it applies to."""

    node: str
    step: Step


@dataclass(frozen=True)
class FixerSpec:
    """A registered fixer: its id, the checks it addresses and its function."""

    id: str
    title: str
    checks: tuple[str, ...]
    function: Any
    doc: str


_FIXERS: dict[str, FixerSpec] = {}


def fixer(id: str, *, title: str, checks: tuple[str, ...]) -> Any:
    """Register a function ``(finding, context) -> Iterable[NodeStep]`` under a stable fixer id."""

    def register(function: Any) -> Any:
        if id in _FIXERS and _FIXERS[id].function is not function:
            raise ValueError(f"fixer id {id!r} is registered twice")
        _FIXERS[id] = FixerSpec(id, title, tuple(checks), function, (function.__doc__ or "").strip())
        return function

    return register


def fixer_catalogue() -> dict[str, str]:
    """Return the fixer index: fixer id -> module name inside ``netdoctor.fixers``."""
    from netdoctor.fixers import CATALOGUE

    return dict(CATALOGUE)


def load_fixers(ids: list[str] | None = None) -> list[FixerSpec]:
    """Import the modules of the given fixers (all when None) and return their specs, sorted by id."""
    import importlib

    index = fixer_catalogue()
    wanted = sorted(index) if ids is None else sorted(set(ids))
    for fixer_id in wanted:
        if fixer_id not in index:
            raise PlanError(f"unknown fixer id {fixer_id!r}")
        importlib.import_module(f"netdoctor.fixers.{index[fixer_id]}")
    missing = [fixer_id for fixer_id in wanted if fixer_id not in _FIXERS]
    if missing:
        raise RuntimeError(f"the fixer catalogue lists fixers that their modules do not register: {missing}")
    return [_FIXERS[fixer_id] for fixer_id in wanted]


def build_plans(
    report: Any,
    bindings: dict[str, NodeBinding] | None = None,
    *,
    etcd_endpoint: str | None = None,
    nodes: tuple[str, ...] = (),
    checks: tuple[str, ...] = (),
) -> list[FixPlan]:
    """Build one plan per node for the report's findings; ``nodes`` and ``checks`` narrow it when given.

    Fixers work only from the snapshot in the report. A finding whose check has
    no fixer contributes no step.
    """
    bindings = bindings or {}
    context = FixContext(report, bindings)
    collected: dict[str, list[Step]] = {}
    for finding in attach_fixes(report).findings:
        if checks and finding.check not in checks:
            continue
        for spec in load_fixers(list(finding.fixes)) if finding.fixes else []:
            for produced in spec.function(finding, context):
                if nodes and produced.node not in nodes:
                    continue
                collected.setdefault(produced.node, []).append(produced.step)
    plans = []
    for node in sorted(collected):
        binding = bindings.get(node, NodeBinding())
        plans.append(FixPlan(node, tuple(order_steps(collected[node])), binding.netns, binding.root,
                             etcd_endpoint, report.snapshot.source))
    return plans
