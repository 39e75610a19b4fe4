"""Apply and undo fix plans on a node, with a JSON journal.

Before each step a fresh snapshot of the plan's node is collected. A step whose
"already done" condition holds is skipped; a step whose precondition no longer
holds stops the run with the reason. The journal records each step before it
runs (status ``running``) and its result after it (``applied`` with the
operation that reverts it, or ``failed``), so a run that dies half-way still
shows what changed. :func:`undo_journal` reverts the applied steps in reverse
order.

Links, addresses, routes, neighbours and FDB entries change through pyroute2 in
the node's namespace; iptables, BIRD, FRR and OVS through their programs;
etcd through its v2 HTTP API or v3 JSON gateway; sysctls through
``/proc/sys`` inside the namespace; files under the plan's node root.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from netdoctor.fix import (
    BIRD_COMMANDS,
    Condition,
    FixPlan,
    Operation,
    PlanError,
    Safety,
    Step,
    firewall_cmd,
    frr_shutdown_lines,
    ovs_appctl,
    ovs_vsctl,
    render_operation,
)
from netdoctor.model import NodeSnapshot
from netdoctor.model.addr import parse_ip, parse_prefix
from netdoctor.model.routes import (
    NUD_STATES,
    ROUTE_PROTOCOLS,
    ROUTE_TABLES,
    ROUTE_TYPES,
    RTNH_F_ONLINK,
)

logger = logging.getLogger(__name__)

JOURNAL_FORMAT = "netdoctor.journal/1"

#: Time limit of one program run by a step, in seconds.
COMMAND_TIMEOUT = 30.0


class ApplyError(Exception):
    """A step could not be applied or reverted; the message names the node, step and cause."""


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# --- The node a plan applies to ---------------------------------------------

@dataclass
class NodeExecutor:
    """Reads and changes the node of one plan: its namespace, its root directory and etcd."""

    plan: FixPlan
    snapshot: NodeSnapshot | None = None

    def refresh(self) -> NodeSnapshot:
        """Collect a fresh snapshot of the node and keep it for the conditions that follow."""
        from netdoctor.collect import collect_node
        from netdoctor.target import Target

        target = Target(self.plan.node, netns=self.plan.netns, root=Path(self.plan.root))
        self.snapshot, gaps = collect_node(target)
        for gap in gaps:
            logger.debug("%s: fresh snapshot gap %s: %s", self.plan.node, gap.source, gap.reason)
        return self.snapshot

    def run(self, argv: list[str]) -> str:
        """Run a program in the node's namespace; raise :class:`ApplyError` when it fails."""
        full = (["ip", "netns", "exec", self.plan.netns] if self.plan.netns else []) + argv
        try:
            completed = subprocess.run(full, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        except FileNotFoundError:
            raise ApplyError(f"{self.plan.node}: {argv[0]} is not installed") from None
        except subprocess.TimeoutExpired:
            raise ApplyError(f"{self.plan.node}: {shlex.join(argv)} timed out after {COMMAND_TIMEOUT:g} s") from None
        if completed.returncode != 0:
            raise ApplyError(f"{self.plan.node}: {shlex.join(argv)} failed (exit status {completed.returncode}): "
                             f"{completed.stderr.strip() or completed.stdout.strip()}")
        return completed.stdout

    def rule_absent(self, params: dict[str, Any]) -> bool:
        """Tell whether the chain lacks the rule of an iptables operation; raise :class:`ApplyError` when that is unclear.

        ``iptables -C`` exits with status 1 and "does a matching rule exist"
        only for a rule that is not there. Any other failure (an unknown
        table, option or namespace) raises :class:`ApplyError`, because it
        leaves the rule's presence unknown.
        """
        program = "ip6tables" if params.get("family") == 6 else "iptables"
        argv = [program, "-t", params["table"], "-C", params["chain"], *shlex.split(params["rule"])]
        try:
            self.run(argv)
        except ApplyError as error:
            if "does a matching rule exist" in str(error) and "exit status 1)" in str(error):
                return True
            raise
        return False

    def ipr(self) -> Any:
        """Open a pyroute2 ``IPRoute`` in the node's namespace."""
        from pyroute2 import IPRoute

        return IPRoute(netns=self.plan.netns) if self.plan.netns else IPRoute()

    def link_index(self, ipr: Any, name: str) -> int:
        """Return the index of an interface; raise :class:`ApplyError` naming it when it does not exist."""
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise ApplyError(f"{self.plan.node}: interface {name} not found")
        return int(found[0])

    def read_sysctl(self, key: str) -> str:
        """Read a sysctl in the node's namespace."""
        return self.run(["cat", sysctl_path(key)]).strip()

    def write_sysctl(self, key: str, value: str) -> None:
        """Write a sysctl through ``/proc/sys`` in the node's namespace."""
        self.run(["sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", value, sysctl_path(key)])

    def etcd_endpoint(self, params: dict[str, Any]) -> str:
        """Return the etcd endpoint of an operation; raise when neither it nor the plan names one."""
        endpoint = params.get("endpoint") or self.plan.etcd_endpoint
        if not endpoint:
            raise ApplyError(f"{self.plan.node}: no etcd endpoint for key {params.get('key')}; pass --etcd-endpoint URL")
        return str(endpoint).rstrip("/")

    def etcd_get(self, params: dict[str, Any]) -> str | None:
        """Read one etcd key through the API the operation names; None when it is absent."""
        endpoint, key = self.etcd_endpoint(params), params["key"]
        if params.get("api", "v3") == "v2":
            try:
                data = _http("GET", f"{endpoint}/v2/keys/{key.lstrip('/')}")
            except _NotFound:
                return None
            return str(data["node"]["value"])
        data = _http("POST", f"{endpoint}/v3/kv/range", {"key": _b64(key)})
        kvs = data.get("kvs") or []
        if not kvs:
            return None
        if "value" not in kvs[0]:
            # proto3 JSON may leave out empty fields, so a key whose value is empty can come back without one.
            return ""
        return base64.b64decode(kvs[0]["value"]).decode()

    def etcd_put(self, params: dict[str, Any], value: str) -> None:
        endpoint, key = self.etcd_endpoint(params), params["key"]
        if params.get("api", "v3") == "v2":
            _http("PUT", f"{endpoint}/v2/keys/{key.lstrip('/')}", form={"value": value})
        else:
            _http("POST", f"{endpoint}/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def etcd_delete(self, params: dict[str, Any]) -> None:
        endpoint, key = self.etcd_endpoint(params), params["key"]
        if params.get("api", "v3") == "v2":
            try:
                _http("DELETE", f"{endpoint}/v2/keys/{key.lstrip('/')}")
            except _NotFound:
                pass
        else:
            _http("POST", f"{endpoint}/v3/kv/deleterange", {"key": _b64(key)})


def sysctl_path(key: str) -> str:
    """Return the ``/proc/sys`` file of a sysctl key.

    A per-interface key keeps the dots of its interface name, so
    ``net.ipv4.conf.flannel.1.rp_filter`` is ``/proc/sys/net/ipv4/conf/flannel.1/rp_filter``.
    A key already written with slashes is taken as a path.
    """
    if "/" in key:
        return "/proc/sys/" + key.lstrip("/")
    words = key.split(".")
    if len(words) > 5 and words[0] == "net" and words[2] in ("conf", "neigh"):
        words = words[:3] + [".".join(words[3:-1]), words[-1]]
    return "/proc/sys/" + "/".join(words)


class _NotFound(Exception):
    pass


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _http(method: str, url: str, body: dict[str, Any] | None = None, form: dict[str, str] | None = None) -> Any:
    data = None
    headers = {}
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    elif form is not None:
        data, headers = urllib.parse.urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise _NotFound(url) from None
        raise ApplyError(f"etcd {method} {url} failed: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ApplyError(f"etcd {method} {url} failed: {error}; check that etcd runs at that endpoint") from None


# --- Conditions --------------------------------------------------------------

def _route_matches(route: Any, params: dict[str, Any]) -> bool:
    family, dst, length = parse_prefix(params["destination"])
    if (route.family, route.dst, route.dst_len, route.table) != (family, dst, length, ROUTE_TABLES["main"]):
        return False
    if route.type != ROUTE_TYPES[params.get("type", "unicast")]:
        return False
    if params.get("gateway") and route.gateway != parse_ip(params["gateway"])[1]:
        return False
    if params.get("dev") and route.dev != params["dev"]:
        return False
    if params.get("protocol") and route.protocol != params["protocol"]:
        return False
    return not (params.get("metric") and route.metric != int(params["metric"]))


def holds(condition: Condition, executor: NodeExecutor) -> bool:
    """Tell whether a condition holds on the executor's latest snapshot (or live etcd)."""
    kind, params = condition.kind, condition.params
    if kind in ("etcd-key-is", "etcd-key-absent"):
        value = executor.etcd_get(params)
        return value is None if kind == "etcd-key-absent" else value == params["value"]
    if kind == "file-is":
        path = executor.plan.node_path(params["path"])
        return path.is_file() and path.read_text(encoding="utf-8", errors="replace") == params["content"]
    node = executor.snapshot or executor.refresh()
    if kind == "sysctl-is":
        return node.sysctls is not None and (node.sysctls.get(params["key"]) or "").strip() == str(params["value"])
    if kind in ("route-present", "route-absent"):
        present = any(_route_matches(route, params) for route in node.routes or ())
        return present if kind == "route-present" else not present
    if kind == "destination-free":
        family, dst, length = parse_prefix(params["destination"])
        return not any((route.family, route.dst, route.dst_len, route.table) == (family, dst, length, ROUTE_TABLES["main"])
                       for route in node.routes or ())
    if kind.startswith("link-"):
        interface = node.interface(params["name"])
        if kind == "link-absent":
            return interface is None
        if interface is None:
            return False
        if kind == "link-mtu-is":
            return interface.mtu == int(params["mtu"])
        if kind == "link-up":
            return interface.is_up
        if kind == "link-master-is":
            return interface.master == params.get("master")
        if kind == "link-mac-is":
            return (interface.mac or "").lower() == params["mac"].lower()
        return True
    if kind in ("iptables-rule-present", "iptables-rule-absent"):
        table = node.iptables.table(params["table"]) if node.iptables is not None else None
        texts = [rule.text for rule in table.rules] if table is not None else []
        present = params["text"] in texts
        if present and params.get("before") in texts:
            # iptables matches rules in order, so a rule behind ``before`` never matches the packets ``before`` drops.
            present = texts.index(params["text"]) < texts.index(params["before"])
        return present if kind == "iptables-rule-present" else not present
    if kind == "bgp-established":
        return any(session.name == params["name"] and session.established for session in node.bgp or ())
    if kind in ("ovs-port-present", "ovs-port-absent"):
        present = any(port.name == params["port"] for bridge in node.ovs or () for port in bridge.ports
                      if kind == "ovs-port-absent" or bridge.name == params["bridge"])
        return present if kind == "ovs-port-present" else not present
    if kind == "ovs-tunnel-to":
        return any(dict(interface.options).get("remote_ip") == params["remote_ip"]
                   for bridge in node.ovs or () for port in bridge.ports for interface in port.interfaces)
    if kind == "firewalld-zone-has":
        zone = next((zone for zone in node.firewalld.zones if zone.name == params["zone"]), None) \
            if node.firewalld is not None else None
        return zone is not None and params["value"] in getattr(zone, params["element"] + "s", ())
    if kind == "neigh-present":
        return any(entry.address == params["address"] and entry.dev == params["dev"]
                   and (entry.mac or "").lower() == params["lladdr"].lower() for entry in node.neighbours or ())
    if kind == "fdb-present":
        return any(entry.lladdr.lower() == params["mac"].lower() and entry.dev == params["dev"]
                   and entry.remote == params["dst"] for entry in node.fdb or ())
    raise ApplyError(f"unknown condition kind {kind!r}")


# --- Operations ----------------------------------------------------------------

def apply_operation(operation: Operation, executor: NodeExecutor) -> Operation | None:
    """Apply one operation and return the operation that reverts it, or None when nothing can."""
    kind, params = operation.kind, operation.params
    node = executor.snapshot
    if kind == "sysctl":
        previous = executor.read_sysctl(params["key"])
        executor.write_sysctl(params["key"], str(params["value"]))
        return Operation("sysctl", {"key": params["key"], "value": previous})
    if kind in ("file", "file-restore"):
        return _write_file(operation, executor)
    if kind in ("iptables-insert", "iptables-delete"):
        return _iptables(operation, executor)
    if kind in ("etcd-put", "etcd-delete"):
        old_value = executor.etcd_get(params)
        if kind == "etcd-put":
            executor.etcd_put(params, params["value"])
        else:
            executor.etcd_delete(params)
        if old_value is None:
            return Operation("etcd-delete", {key: value for key, value in params.items() if key != "value"})
        return Operation("etcd-put", {**params, "value": old_value})
    if kind == "bird-restart":
        executor.run(["birdc", "-s", str(executor.plan.node_path(params["socket"])), "restart", params["protocol"]])
        return None
    if kind == "frr-clear":
        sockets = str(executor.plan.node_path(params.get("sockets", "/run/frr")))
        executor.run(["vtysh", "--vty_socket", sockets, "-c", f"clear bgp {params['neighbor']}"])
        return None
    if kind in BIRD_COMMANDS or kind == "frr-neighbor-shutdown":
        return _bgp_operation(operation, executor)
    if kind == "ovs-add-port":
        executor.run(ovs_vsctl(executor.plan) + ["add-port", params["bridge"], params["port"], "--", "set", "interface",
                                                 params["port"], f"type={params['type']}",
                                                 f"options:remote_ip={params['remote_ip']}"])
        return Operation("ovs-del-port", dict(params))
    if kind == "ovs-del-port":
        executor.run(ovs_vsctl(executor.plan) + ["del-port", params["bridge"], params["port"]])
        if params.get("type") and params.get("remote_ip"):
            return Operation("ovs-add-port", dict(params))
        return None
    if kind == "ovs-mtu-request":
        # OVS sets an internal port's MTU to its mtu_request whenever the bridge changes, so an
        # MTU set through netlink alone does not last.
        interface = node.interface(params["name"]) if node is not None else None
        executor.run(ovs_vsctl(executor.plan) + ["set", "interface", params["name"], f"mtu_request={params['mtu']}"])
        return Operation(kind, {"name": params["name"], "mtu": interface.mtu}) if interface is not None else None
    if kind == "ovs-bridge-hwaddr":
        return _ovs_bridge_hwaddr(operation, executor)
    if kind == "ovs-fdb-flush":
        executor.run(ovs_appctl(executor.plan) + ["fdb/flush", params["bridge"]])
        return None
    if kind in ("firewalld-add", "firewalld-remove"):
        verb = kind.split("-")[1]
        option = f"--{verb}-{params['element']}={params['value']}"
        zone = f"--zone={params['zone']}"
        executor.run(firewall_cmd(executor.plan) + [zone, option])
        executor.run(firewall_cmd(executor.plan) + ["--permanent", zone, option])
        return Operation("firewalld-remove" if verb == "add" else "firewalld-add", dict(params))
    if kind == "fdb-replace":
        # pyroute2 0.9's fdb("replace") is rejected by the VXLAN driver (EOPNOTSUPP), so the bridge program runs it.
        executor.run(["bridge", "fdb", "replace", params["mac"], "dev", params["dev"], "dst", params["dst"], "self",
                      "permanent"])
        return Operation(kind, dict(params["previous"])) if params.get("previous") else None
    if kind in ("route-replace", "link-address") or (kind == "neigh-replace" and params.get("previous")):
        _netlink(operation, executor)
        previous_params = params.get("previous")
        return Operation(kind, dict(previous_params)) if previous_params else None
    if kind == "link-mtu" and node is not None:
        interface = node.interface(params["name"])
        previous_mtu = interface.mtu if interface is not None else None
        _netlink(operation, executor)
        return Operation("link-mtu", {"name": params["name"], "mtu": previous_mtu}) if previous_mtu else None
    if kind == "link-master" and node is not None:
        interface = node.interface(params["name"])
        previous_master = interface.master if interface is not None else None
        _netlink(operation, executor)
        return Operation("link-master", {"name": params["name"], "master": previous_master})
    return _netlink(operation, executor)


#: How long a bridge MAC set through OVS may take to show on its internal port, in seconds.
OVS_MAC_WAIT = 5.0


def _ovs_bridge_hwaddr(operation: Operation, executor: NodeExecutor) -> Operation | None:
    """Set an OVS bridge's MAC through ``other_config:hwaddr`` and wait until its internal port has it, up.

    ovs-vswitchd takes the port down and up to change its MAC, so a route added
    through the port before it is up again fails. A port that still lacks the
    MAC after ``OVS_MAC_WAIT`` seconds is left to the steps' conditions and the
    re-check.
    """
    params = operation.params
    node = executor.snapshot or executor.refresh()
    interface = node.interface(params["bridge"])
    previous = interface.mac if interface is not None else None
    executor.run(ovs_vsctl(executor.plan) + ["set", "bridge", params["bridge"], f"other_config:hwaddr={params['mac']}"])
    deadline = time.monotonic() + OVS_MAC_WAIT
    while True:
        with executor.ipr() as ipr:
            links = ipr.get_links(ifname=params["bridge"])
        if links:
            mac = str(links[0].get_attr("IFLA_ADDRESS") or "").lower()
            up = bool(links[0]["flags"] & 1)  # IFF_UP
            if mac == params["mac"].lower() and (up or interface is None or not interface.is_up):
                break
        if time.monotonic() > deadline:
            logger.warning("%s: %s does not show MAC %s, up, %g s after ovs-vsctl set it", executor.plan.node,
                           params["bridge"], params["mac"], OVS_MAC_WAIT)
            break
        time.sleep(0.05)
    return Operation("ovs-bridge-hwaddr", {"bridge": params["bridge"], "mac": previous}) if previous else None


def _write_file(operation: Operation, executor: NodeExecutor) -> Operation:
    """Write or remove a file under the node's root; the inverse also removes the directories the write created.

    Directories are given as node paths, deepest first, and undo removes each
    one only while it is empty.
    """
    params = operation.params
    path = executor.plan.node_path(params["path"])
    old_text = path.read_text(encoding="utf-8") if path.is_file() else None
    created: list[str] = []
    if params.get("content") is None:
        path.unlink(missing_ok=True)
        for directory in params.get("directories", []):
            try:
                executor.plan.node_path(directory).rmdir()
            except OSError:
                # Not empty (something else lives there now) or already gone: either way it stays as it is.
                break
    else:
        node_parent = PurePosixPath("/", params["path"]).parent
        while not executor.plan.node_path(str(node_parent)).exists() and node_parent != node_parent.parent:
            created.append(str(node_parent))
            node_parent = node_parent.parent
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(params["content"], encoding="utf-8")
    inverse: dict[str, Any] = {"path": params["path"], "content": old_text}
    if created and old_text is None:
        inverse["directories"] = created
    return Operation("file-restore", inverse)


#: How long a BGP operation that brings a session up waits for it to become Established, in seconds.
BGP_WAIT = 20.0


def _bgp_operation(operation: Operation, executor: NodeExecutor) -> Operation | None:
    """Run a BIRD or FRR session operation; after enabling a session, wait until it carries routes.

    BIRD's session counts once it is Established; FRR's once the peer's
    End-of-RIB marker arrived, because zebra installs the routes only after the
    first updates. The wait lets the re-check after the run see those routes.
    A session that is not there after ``BGP_WAIT`` seconds is left to the
    re-check, which reports it again.
    """
    kind, params = operation.kind, operation.params
    if kind == "frr-neighbor-shutdown":
        sockets = str(executor.plan.node_path(params.get("sockets", "/run/frr")))
        executor.run(["vtysh", "--vty_socket", sockets, *frr_shutdown_lines(params)])
        if not params.get("shutdown"):
            _wait_established(executor, ["vtysh", "--vty_socket", sockets, "-c",
                                         f"show bgp neighbors {params['neighbor']} json"], '"endOfRibRecv":true')
        return Operation(kind, {**params, "shutdown": not params.get("shutdown")})
    socket = str(executor.plan.node_path(params["socket"]))
    executor.run(["birdc", "-s", socket, *BIRD_COMMANDS[kind], params["protocol"]])
    if kind == "bird-enable":
        _wait_established(executor, ["birdc", "-s", socket, "show", "protocols", params["protocol"]], "Established")
        return Operation("bird-disable", dict(params))
    if kind == "bird-disable":
        return Operation("bird-enable", dict(params))
    # A reload re-sends routes BIRD already has; there is nothing to revert.
    return None


def _wait_established(executor: NodeExecutor, argv: list[str], marker: str) -> None:
    deadline = time.monotonic() + BGP_WAIT
    while time.monotonic() < deadline:
        # JSON spacing differs between FRR releases, so spaces are dropped before the comparison.
        if marker in executor.run(argv).replace(" ", ""):
            return
        time.sleep(0.5)
    logger.warning("%s: %s does not show %s after %g s", executor.plan.node, shlex.join(argv), marker, BGP_WAIT)


_INVERSES = {
    "route-add": "route-del", "route-del": "route-add", "link-up": "link-down", "link-down": "link-up",
    "neigh-replace": "neigh-del", "fdb-append": "fdb-del", "link-mtu": "link-mtu", "link-master": "link-master",
}


def _route_request(params: dict[str, Any], executor: NodeExecutor, ipr: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"dst": params["destination"], "table": ROUTE_TABLES["main"],
                               "type": ROUTE_TYPES[params.get("type", "unicast")]}
    if params.get("gateway"):
        request["gateway"] = params["gateway"]
    if params.get("dev"):
        request["oif"] = executor.link_index(ipr, params["dev"])
    if params.get("protocol"):
        request["proto"] = ROUTE_PROTOCOLS.get(params["protocol"], 0) or int(params["protocol"])
    if params.get("metric"):
        request["priority"] = int(params["metric"])
    if params.get("onlink"):
        request["flags"] = RTNH_F_ONLINK
    return request


def _netlink(operation: Operation, executor: NodeExecutor) -> Operation | None:
    from pyroute2.netlink.exceptions import NetlinkError

    kind, params = operation.kind, operation.params
    try:
        with executor.ipr() as ipr:
            if kind in ("route-add", "route-del"):
                ipr.route("add" if kind == "route-add" else "del", **_route_request(params, executor, ipr))
            elif kind == "link-mtu":
                ipr.link("set", index=executor.link_index(ipr, params["name"]), mtu=int(params["mtu"]))
            elif kind in ("link-up", "link-down"):
                ipr.link("set", index=executor.link_index(ipr, params["name"]), state=kind.split("-")[1])
            elif kind == "link-master":
                master = executor.link_index(ipr, params["master"]) if params.get("master") else 0
                ipr.link("set", index=executor.link_index(ipr, params["name"]), master=master)
            elif kind == "link-del":
                ipr.link("del", index=executor.link_index(ipr, params["name"]))
                return None
            elif kind == "vxlan-add":
                _add_vxlan(ipr, params, executor)
                return Operation("link-del", {"name": params["name"]})
            elif kind in ("neigh-replace", "neigh-del"):
                request = {"dst": params["address"], "ifindex": executor.link_index(ipr, params["dev"])}
                if kind == "neigh-replace":
                    request.update(lladdr=params["lladdr"], state=NUD_STATES["PERMANENT"])
                ipr.neigh("replace" if kind == "neigh-replace" else "del", **request)
            elif kind == "route-replace":
                ipr.route("replace", **_route_request(params, executor, ipr))
            elif kind == "link-address":
                ipr.link("set", index=executor.link_index(ipr, params["name"]), address=params["mac"])
            elif kind in ("fdb-append", "fdb-del"):
                ipr.fdb("append" if kind == "fdb-append" else "del", ifindex=executor.link_index(ipr, params["dev"]),
                        lladdr=params["mac"], dst=params["dst"], state=NUD_STATES["PERMANENT"])
            else:
                raise ApplyError(f"unknown operation kind {kind!r}")
    except NetlinkError as error:
        raise ApplyError(f"{executor.plan.node}: {' '.join(render_operation(executor.plan, operation))} failed: "
                         f"{os.strerror(error.code) if error.code else error}") from None
    inverse = _INVERSES.get(kind)
    return Operation(inverse, dict(params)) if inverse else None


def _add_vxlan(ipr: Any, params: dict[str, Any], executor: NodeExecutor) -> None:
    request: dict[str, Any] = {"ifname": params["name"], "kind": "vxlan", "vxlan_id": int(params["vni"]),
                               "vxlan_port": int(params.get("port", 8472)), "vxlan_learning": 0}
    if params.get("local"):
        request["vxlan_local"] = params["local"]
    if params.get("dev"):
        request["vxlan_link"] = executor.link_index(ipr, params["dev"])
    if params.get("mac"):
        request["address"] = params["mac"]
    ipr.link("add", **request)
    index = executor.link_index(ipr, params["name"])
    if params.get("address"):
        address, _, length = str(params["address"]).partition("/")
        ipr.addr("add", index=index, address=address, prefixlen=int(length or 32))
    ipr.link("set", index=index, state="up")


def _iptables(operation: Operation, executor: NodeExecutor) -> Operation | None:
    from netdoctor.fixers.support import rule_position

    params = operation.params
    program = "ip6tables" if params.get("family") == 6 else "iptables"
    rule = shlex.split(params["rule"])
    if operation.kind == "iptables-delete":
        executor.run([program, "-t", params["table"], "-D", params["chain"], *rule])
        return Operation("iptables-insert", {**params, "position": None, "before": None})
    position = None
    if params.get("before"):
        node = executor.snapshot or executor.refresh()
        position = rule_position(node, params["table"], params["chain"], params["before"])
        if position is None:
            raise ApplyError(f"{executor.plan.node}: the rule '-A {params['before']}' is gone, so there is no place "
                             "to insert before it; run 'netdoctor fix' again")
    where = ["-I", params["chain"], str(position)] if position else ["-A", params["chain"]]
    executor.run([program, "-t", params["table"], *where, *rule])
    return Operation("iptables-delete", {"table": params["table"], "chain": params["chain"], "rule": params["rule"],
                                         "family": params.get("family", 4)})


# --- Journal, apply and undo ---------------------------------------------------

@dataclass
class Journal:
    """The JSON record of one apply run, rewritten atomically after every change."""

    path: Path
    plans: list[FixPlan]
    entries: list[dict[str, Any]] = field(default_factory=list)
    started: str = field(default_factory=_now)

    def save(self) -> None:
        """Write the journal to its path atomically."""
        data = {"format": JOURNAL_FORMAT, "started": self.started, "plans": [plan.to_json() for plan in self.plans],
                "entries": self.entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        temporary.replace(self.path)

    def record(self, plan: FixPlan, step: Step, status: str, **extra: Any) -> dict[str, Any]:
        """Append an entry for a step and save."""
        entry = {"node": plan.node, "step": step.id, "title": step.title, "safety": step.safety.label,
                 "status": status, "time": _now(), **extra}
        self.entries.append(entry)
        self.save()
        return entry


def load_journal(path: Path) -> Journal:
    """Read a journal written by ``fix --apply``; raise :class:`ApplyError` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ApplyError(f"journal {path} not found; pass the file that 'netdoctor fix --apply' printed") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ApplyError(f"cannot read journal {path}: {error}") from None
    if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
        raise ApplyError(f"{path} is not a netdoctor journal (expected \"format\": \"{JOURNAL_FORMAT}\")")
    if not isinstance(data.get("plans", []), list) or not isinstance(data.get("entries"), list):
        raise ApplyError(f"{path}: 'plans' and 'entries' must be lists; the journal is damaged, so it was not used")
    try:
        plans = [FixPlan.from_json(item) for item in data.get("plans", [])]
    except (PlanError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ApplyError(f"{path}: a plan cannot be read ({error}); the journal is damaged, so it was not used") from None
    entries = data["entries"]
    for number, entry in enumerate(entries):
        _check_entry(path, number, entry)
    return Journal(path, plans, entries, str(data.get("started", "")))


#: The statuses an apply run writes into journal entries.
ENTRY_STATUSES = frozenset({"running", "applied", "failed", "stopped", "display-only", "already-done",
                            "not-confirmed"})


def _check_entry(path: Path, number: int, entry: Any) -> None:
    """Raise :class:`ApplyError` for a journal entry that undo could not read."""
    problem = None
    if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) for key in ("node", "title", "status")):
        problem = "is not an object with the strings 'node', 'title' and 'status'"
    elif entry["status"] not in ENTRY_STATUSES:
        problem = f"has the status {entry['status']!r}, which no apply run writes"
    elif entry.get("undo") is not None and not (isinstance(entry["undo"], dict)
                                                and isinstance(entry["undo"].get("kind"), str)
                                                and isinstance(entry["undo"].get("params", {}), dict)):
        problem = "has an 'undo' that is not an operation (an object with 'kind' and 'params')"
    if problem:
        raise ApplyError(f"{path}: entries[{number}] {problem}; the journal is damaged, so it was not used")


@dataclass
class ApplyResult:
    """The outcome of an apply run: counts by status, and the reason it stopped early, if it did."""

    journal: Path
    counts: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None


Confirm = Callable[[FixPlan, Step], bool]


def apply_plans(
    plans: list[FixPlan],
    journal_path: Path,
    *,
    allow_disruptive: bool = False,
    confirm: Confirm | None = None,
    echo: Callable[[str], None] = lambda line: None,
    append: bool = False,
) -> ApplyResult:
    """Apply plans step by step; see the module documentation for the rules.

    A disruptive step runs when ``allow_disruptive`` is set or ``confirm``
    returns True for it; otherwise it is skipped and recorded as not confirmed.
    With ``append`` an existing journal keeps its entries and gains the new
    plans, so one undo reverts several rounds.
    """
    for plan in plans:
        if not plan.applicable:
            raise ApplyError(f"the plan for {plan.node} was built from a {plan.source} source, which describes another "
                             "machine; print it with 'netdoctor fix' and run it there")
    journal = Journal(journal_path, plans)
    if append and journal_path.is_file():
        journal = load_journal(journal_path)
        known = {plan.node for plan in journal.plans}
        journal.plans += [plan for plan in plans if plan.node not in known]
    journal.save()
    result = ApplyResult(journal_path)

    def count(status: str) -> None:
        result.counts[status] = result.counts.get(status, 0) + 1

    for plan in plans:
        executor = NodeExecutor(plan)
        for step in plan.steps:
            status, reason = _decide(plan, step, executor, allow_disruptive, confirm)
            if status == "stopped":
                journal.record(plan, step, status, reason=reason)
                echo(f"{plan.node}: stopped at '{step.title}': {reason}")
                count(status)
                result.stopped = f"{plan.node}: {step.title}: {reason}"
                return result
            if status != "run":
                journal.record(plan, step, status, reason=reason)
                echo(f"{plan.node}: skip [{step.safety.label}] {step.title}: {reason}")
                count(status)
                continue
            assert step.action is not None
            entry = journal.record(plan, step, "running", action=step.action.to_json())
            try:
                undo = apply_operation(step.action, executor)
            except ApplyError as error:
                entry.update(status="failed", reason=str(error), finished=_now())
                journal.save()
                count("failed")
                result.stopped = str(error)
                echo(f"{plan.node}: failed [{step.safety.label}] {step.title}: {error}")
                return result
            entry.update(status="applied", undo=undo.to_json() if undo else None, finished=_now())
            journal.save()
            count("applied")
            echo(f"{plan.node}: applied [{step.safety.label}] {step.title}")
            executor.snapshot = None
    return result


def _decide(
    plan: FixPlan, step: Step, executor: NodeExecutor, allow_disruptive: bool, confirm: Confirm | None
) -> tuple[str, str]:
    """Return ``run`` or the skip or stop status of a step, with the reason."""
    if step.safety == Safety.DISPLAY_ONLY or step.action is None:
        return "display-only", "display-only steps are never applied; run them by hand"
    if executor.snapshot is None and _needs_snapshot(step):
        executor.refresh()
    if step.done is not None and holds(step.done, executor):
        return "already-done", step.done.describe()
    broken = [condition for condition in step.preconditions if not holds(condition, executor)]
    if broken:
        return "stopped", "precondition no longer holds: " + "; ".join(condition.describe() for condition in broken)
    if step.safety == Safety.DISRUPTIVE and not allow_disruptive and not (confirm is not None and confirm(plan, step)):
        return "not-confirmed", "disruptive step not confirmed (pass --yes to apply disruptive steps)"
    return "run", ""


def _needs_snapshot(step: Step) -> bool:
    conditions = list(step.preconditions) + ([step.done] if step.done else [])
    return any(not condition.kind.startswith(("etcd-", "file-")) for condition in conditions) or (
        step.action is not None and step.action.kind in ("link-mtu", "link-master", "iptables-insert"))


def _already_reverted(operation: Operation, executor: NodeExecutor) -> bool:
    """Tell whether an undo operation has nothing left to do: the rule it deletes is gone.

    A rule that netdoctor inserted may be deleted by hand before the undo, and
    ``iptables -D`` fails for a rule that is not there. The other undo
    operations set a value again or report what is missing.
    """
    return operation.kind == "iptables-delete" and executor.rule_absent(operation.params)


def _undo_operation(path: Path, number: int, entry: dict[str, Any], plans: dict[str, FixPlan]) -> Operation:
    """Return an entry's inverse operation, or raise :class:`ApplyError` when its node, kind or parameters are not usable."""
    plan = plans.get(entry["node"])
    if plan is None:
        raise ApplyError(f"{path}: entries[{number}] is for node {entry['node']}, which has no plan in the journal; "
                         "the journal is damaged, so it was not used")
    operation = Operation.from_json(entry["undo"])
    problem = _iptables_params_problem(operation)
    try:
        if problem is None:
            render_operation(plan, operation)
    except (PlanError, KeyError, TypeError, ValueError, AttributeError) as error:
        problem = f"missing parameter {error}" if isinstance(error, KeyError) else str(error)
    if problem is None and operation.kind == "iptables-delete":
        try:
            NodeExecutor(plan).rule_absent(operation.params)
        except ApplyError as error:
            problem = str(error)
    if problem is not None:
        raise ApplyError(f"{path}: entries[{number}] has an inverse {operation.kind!r} that cannot run ({problem}); "
                         "the journal is damaged, so it was not used")
    return operation


def _iptables_params_problem(operation: Operation) -> str | None:
    """Return what is wrong with an iptables operation's table, chain, rule and family, or None."""
    if not operation.kind.startswith("iptables-"):
        return None
    params = operation.params
    for key in ("table", "chain", "rule"):
        if not isinstance(params.get(key), str) or not params[key].strip():
            return f"'{key}' is {params.get(key)!r}, expected a non-empty string"
    if params.get("family") not in (None, 4, 6) or isinstance(params.get("family"), bool):
        return f"'family' is {params.get('family')!r}, expected 4 or 6"
    return None


def undo_journal(path: Path, echo: Callable[[str], None] = lambda line: None) -> int:
    """Revert the applied steps of a journal in reverse order; return how many were reverted.

    Each reverted entry is marked in the journal, so a second undo reverts nothing.
    """
    journal = load_journal(path)
    plans = {plan.node: plan for plan in journal.plans}
    pending = [(number, entry) for number, entry in enumerate(journal.entries)
               if entry.get("status") == "applied" and not entry.get("reverted")]
    # Every inverse is read and rendered before the first one runs, so a damaged entry changes nothing.
    operations = {number: _undo_operation(path, number, entry, plans) for number, entry in pending if entry.get("undo")}
    reverted = 0
    for number, entry in reversed(pending):
        if number not in operations:
            echo(f"{entry['node']}: nothing to revert for '{entry['title']}'")
            entry["reverted"] = _now()
            journal.save()
            continue
        plan, operation = plans[entry["node"]], operations[number]
        executor = NodeExecutor(plan)
        if operation.kind in ("link-mtu", "link-master", "iptables-insert"):
            executor.refresh()
        if _already_reverted(operation, executor):
            entry["reverted"] = _now()
            journal.save()
            echo(f"{entry['node']}: '{entry['title']}' was already reverted: "
                 f"{' '.join(render_operation(plan, operation))} has nothing left to do")
            continue
        try:
            apply_operation(operation, executor)
        except (KeyError, TypeError, ValueError) as error:
            raise ApplyError(f"{path}: entries[{number}]: the inverse {operation.kind} cannot run: "
                             f"{type(error).__name__}: {error}; the journal is damaged") from None
        entry["reverted"] = _now()
        journal.save()
        reverted += 1
        echo(f"{entry['node']}: reverted {entry['title']}: {' '.join(render_operation(plan, operation))}")
    return reverted
