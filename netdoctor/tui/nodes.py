"""The nodes pane: a tree of nodes with health badges, expanding to interfaces, routes, tunnels and firewall."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from netdoctor.engine import Report
from netdoctor.facts import DISCARD_TYPES
from netdoctor.model import ClusterSnapshot, NodeSnapshot, Severity
from netdoctor.tui.messages import NodeChosen

logger = logging.getLogger(__name__)

#: Routes listed under a node before the rest are left to the raw view.
MAX_ROUTES_SHOWN = 200

#: Route protocols that a BGP daemon installs.
BGP_PROTOCOLS = frozenset({"bird", "bgp", "zebra"})

_BADGES = {
    Severity.ERROR: ("✖", "bold red"),
    Severity.WARNING: ("▲", "yellow"),
    Severity.INFO: ("ℹ", "cyan"),
}
_STATE_BADGES = {
    "pending": ("…", "dim"),
    "collecting": ("⟳", "bold cyan"),
    "failed": ("✖ failed", "bold red"),
}


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """The data of one tree line: the node it belongs to and, below the node line, the category."""

    node: str
    category: str | None = None


class NodesTree(Tree[NodeEntry | None]):
    """Nodes with a health badge and their backends; children are built when a line is expanded.

    The nodes are listed, and can be expanded, as soon as the snapshot is loaded.
    The badges and backends follow when the checks finish.
    """

    DEFAULT_CSS = """
    NodesTree {
        width: 34;
        border-right: tall $primary-background;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("cluster", data=None, id=id)
        self._snapshot: ClusterSnapshot | None = None
        self._report: Report | None = None
        self._lines: dict[str, TreeNode[NodeEntry | None]] = {}
        self._worst: dict[str, Severity] = {}
        self._states: dict[str, str] = {}
        self.show_root = True
        self.guide_depth = 2

    def set_state(self, node: str, state: str) -> None:
        """Show a node's collection state, adding its line when it is not in the tree yet."""
        self._states[node] = state
        line = self._lines.get(node)
        if line is None:
            line = self.root.add(node, data=NodeEntry(node), allow_expand=False)
            self._lines[node] = line
        line.set_label(self._label(node))

    def show_snapshot(self, snapshot: ClusterSnapshot) -> None:
        """Rebuild the tree for a loaded snapshot whose checks are still running; nodes show a pending badge."""
        self._snapshot = snapshot
        self._report = None
        self._worst = {}
        self._rebuild()

    def show_report(self, report: Report) -> None:
        """Rebuild the tree for a new report, with each node's worst finding as its badge."""
        self._snapshot = report.snapshot
        self._report = report
        self._worst = {}
        for finding in report.findings:
            for name in finding.nodes:
                if finding.severity > self._worst.get(name, Severity.INFO - 1):
                    self._worst[name] = finding.severity
        self._rebuild()

    def _rebuild(self) -> None:
        assert self._snapshot is not None
        failed = {name for name, state in self._states.items() if state == "failed"}
        self._states = {name: "failed" for name in failed}

        self.clear()
        self.root.set_label(Text(f"cluster ({len(self._snapshot.nodes)} nodes)"))
        self._lines = {}
        for node in self._snapshot.nodes:
            self._lines[node.name] = self.root.add(self._label(node.name), data=NodeEntry(node.name))
        self.root.expand()

    def _label(self, name: str) -> Text:
        state = self._states.get(name)
        if state in _STATE_BADGES:
            mark, style = _STATE_BADGES[state]
        elif name in self._worst:
            mark, style = _BADGES[self._worst[name]]
        elif self._report is None:
            mark, style = _STATE_BADGES["pending"]
        else:
            mark, style = "✔", "green"
        label = Text.assemble((mark, style), " ", name)
        backends = self._report.backends.get(name, ()) if self._report is not None else ()
        if backends:
            label.append(f" {','.join(backends)}", style="dim")
        return label

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeEntry | None]) -> None:
        entry = event.node.data
        if entry is None or self._snapshot is None or event.node.children:
            return
        try:
            node = self._snapshot.node(entry.node)
        except KeyError:
            return
        if entry.category is None:
            self._add_categories(event.node, node)
        else:
            self._add_items(event.node, node, entry.category)

    def on_tree_node_selected(self, event: Tree.NodeSelected[NodeEntry | None]) -> None:
        event.stop()
        entry = event.node.data
        if event.node is self.root:
            self.post_message(NodeChosen(None))
        elif entry is not None and entry.category is None:
            self.post_message(NodeChosen(entry.node))

    def _add_categories(self, line: TreeNode[NodeEntry | None], node: NodeSnapshot) -> None:
        counts = {
            "interfaces": len(node.interfaces) if node.interfaces is not None else None,
            "routes": len(node.routes) if node.routes is not None else None,
        }
        for category, count in counts.items():
            if count is None:
                line.add_leaf(Text(f"{category}: not captured", style="dim"))
            else:
                line.add(f"{category} ({count})", data=NodeEntry(node.name, category))
        line.add("tunnels and VTEPs", data=NodeEntry(node.name, "tunnels"))
        line.add("firewall", data=NodeEntry(node.name, "firewall"))
        if node.bgp is not None:
            line.add(f"BGP sessions ({len(node.bgp)})", data=NodeEntry(node.name, "bgp"))

    def _add_items(self, line: TreeNode[NodeEntry | None], node: NodeSnapshot, category: str) -> None:
        items = {
            "interfaces": _interface_lines,
            "routes": _route_lines,
            "tunnels": _tunnel_lines,
            "firewall": _firewall_lines,
            "bgp": _bgp_lines,
        }[category](node)
        for item in items or [Text("none", style="dim")]:
            line.add_leaf(item)


def _interface_lines(node: NodeSnapshot) -> list[Text]:
    lines = []
    for interface in node.interfaces or ():
        style = "" if interface.is_up else "dim"
        addresses = " ".join(address.cidr for address in interface.addresses if address.scope != "link")
        text = Text(f"{interface.name} ", style="bold " + style)
        text.append(f"{interface.kind} {interface.state} mtu {interface.mtu}", style=style)
        if addresses:
            text.append(f" {addresses}")
        lines.append(text)
    return lines


def _route_lines(node: NodeSnapshot) -> list[Text]:
    lines: list[Text] = []
    routes = node.routes
    if routes is None:
        return lines
    for row in range(min(len(routes), MAX_ROUTES_SHOWN)):
        route = routes[row]
        text = Text()
        if route.type in DISCARD_TYPES:
            text.append(f"[{route.type_name}] ", style="bold red")
        elif route.protocol in BGP_PROTOCOLS:
            text.append("[BGP] ", style="bold magenta")
        text.append(route.describe())
        lines.append(text)
    if len(routes) > MAX_ROUTES_SHOWN:
        more = len(routes) - MAX_ROUTES_SHOWN
        lines.append(Text(f"… {more:,} more routes: open the raw view (3) to search them all", style="dim"))
    return lines


def _tunnel_lines(node: NodeSnapshot) -> list[Text]:
    lines = []
    for interface in node.interfaces or ():
        if interface.vxlan is not None:
            vxlan = interface.vxlan
            lines.append(Text(
                f"{interface.name} vxlan VNI {vxlan.vni} local {vxlan.local or '-'} port {vxlan.port or '-'} "
                f"mtu {interface.mtu}"
            ))
        elif interface.tunnel is not None:
            lines.append(Text(
                f"{interface.name} {interface.kind} local {interface.tunnel.local or 'any'} "
                f"remote {interface.tunnel.remote or 'any'}"
            ))
    for entry in node.fdb or ():
        if entry.dst:
            lines.append(Text(f"FDB {entry.describe()}"))
    for bridge in node.ovs or ():
        for port in bridge.ports:
            for ovs_interface in port.interfaces:
                remote = ovs_interface.option("remote_ip")
                if remote is not None:
                    lines.append(Text(f"OVS {bridge.name}/{ovs_interface.name} {ovs_interface.type} remote_ip {remote}"))
    return lines


def _firewall_lines(node: NodeSnapshot) -> list[Text]:
    lines = []
    for ruleset in (node.iptables, node.ip6tables):
        if ruleset is None:
            continue
        for table in ruleset.tables:
            for chain in table.chains:
                rules = table.rules_of(chain.name)
                policy = f" policy {chain.policy}" if chain.policy else ""
                style = "bold red" if chain.policy in ("DROP", "REJECT") else ""
                lines.append(Text(f"ip{'6' if ruleset.family == 6 else ''}tables {table.name}/{chain.name}{policy}, "
                                  f"{len(rules)} rules", style=style))
    if node.firewalld is not None:
        for zone in node.firewalld.zones:
            if zone.active:
                lines.append(Text(f"firewalld zone {zone.name} target {zone.target or 'default'}: "
                                  f"{', '.join(zone.interfaces + zone.sources) or 'no bindings'}"))
    if node.iptables is None and node.firewalld is None:
        lines.append(Text("not captured", style="dim"))
    return lines


def _bgp_lines(node: NodeSnapshot) -> list[Text]:
    return [
        Text(f"{session.daemon} {session.name} {session.neighbor or ''} {session.state}",
             style="" if session.established else "bold red")
        for session in node.bgp or ()
    ]
