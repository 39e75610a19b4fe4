"""Bundle load: parsing a text capture of a large cluster against json.loads of the same data.

A synthetic Calico cluster is rendered as the text files of a capture bundle
(``ip addr``, ``ip route show table all``, ``iptables-save``, ``sysctl -a``,
``birdc show protocols`` per node), written once to a cache directory. The
figure is ``load_bundle`` of that directory over ``json.loads`` of the same
cluster's snapshot JSON, both in this process, after one warm-up read so that
both read from the page cache. Each timed run first empties the parser's cache
of rules, so that it parses as a new process would.

A second figure parses one node's ``iptables-save`` with kube-proxy's rules
for 4,000 services, against ``json.loads`` of the same ruleset as snapshot
JSON.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from bench_engine import cache_dir, snapshot_file
from common import Figure, time_call

from netdoctor import synthetic
from netdoctor.capture.bundle import load_bundle
from netdoctor.capture.iptables import forget_parsed_rules, parse_iptables_save
from netdoctor.model import ClusterSnapshot, Interface, NodeSnapshot
from netdoctor.model.node import IptablesRuleset
from netdoctor.model.serialize import read_snapshot, to_json

SIZE = 1000
QUICK_SIZE = 20
#: ClusterIP services in the kube-proxy iptables-save figure, full and quick.
SERVICES = 4000
QUICK_SERVICES = 100
FAULTS = ("route-missing", "stale-blackhole")

_LINK_TYPES = {"loopback": "loopback", "ipip": "ipip"}


def render_ip_addr(interfaces: tuple[Interface, ...]) -> str:
    """Render interfaces as ``ip addr`` prints them."""
    lines = []
    for interface in interfaces:
        suffix = "@NONE" if interface.kind == "ipip" else ""
        lines.append(
            f"{interface.index}: {interface.name}{suffix}: <{','.join(interface.flags)}> mtu {interface.mtu} "
            f"qdisc noqueue state {interface.state} group default qlen 1000"
        )
        link = _LINK_TYPES.get(interface.kind, "ether")
        if link == "ipip":
            lines.append("    link/ipip 0.0.0.0 brd 0.0.0.0")
        else:
            lines.append(f"    link/{link} {interface.mac or '00:00:00:00:00:00'} brd ff:ff:ff:ff:ff:ff")
        for address in interface.addresses:
            broadcast = f" brd {address.broadcast}" if address.broadcast else ""
            lines.append(f"    inet {address.cidr}{broadcast} scope {address.scope} {address.label or interface.name}")
            lines.append("       valid_lft forever preferred_lft forever")
    return "\n".join(lines) + "\n"


def render_node(node: NodeSnapshot, directory: Path) -> None:
    """Write one node's files of the bundle layout."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ip-addr.txt").write_text(render_ip_addr(node.interfaces or ()))
    (directory / "ip-route.txt").write_text("".join(route.describe() + "\n" for route in node.routes or ()))
    (directory / "iptables-save.txt").write_text(synthetic.IPTABLES)
    (directory / "sysctl.txt").write_text("".join(f"{key} = {value}\n" for key, value in (node.sysctls.values
                                                                                          if node.sysctls else ())))
    protocols = ["BIRD 2.0.12 ready.", "Name       Proto      Table      State  Since         Info",
                 "device1    Device     ---        up     2026-01-15"]
    protocols += [f"{session.name} BGP        ---        up     {session.since}  {session.info}"
                  for session in node.bgp or ()]
    (directory / "bird-protocols.txt").write_text("\n".join(protocols) + "\n")


def bundle_dir(nodes: int) -> Path:
    """Return the rendered bundle of the ``nodes``-node cluster, rendering it first if it is not cached."""
    snapshot_path = snapshot_file(nodes, faults=FAULTS)
    path = cache_dir() / (snapshot_path.stem + "-bundle")
    if not path.exists():
        print(f"bench: rendering {path.name}", file=sys.stderr, flush=True)
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        snapshot = read_snapshot(snapshot_path)
        for node in snapshot.nodes:
            render_node(node, partial / "nodes" / node.name)
        partial.rename(path)
    return path


def findings_of(snapshot: ClusterSnapshot) -> set[tuple[str, tuple[str, ...]]]:
    """Return ``(check, nodes)`` of every finding, to compare the bundle with its snapshot."""
    from netdoctor.engine import catalogue, load_checks, run_checks

    report = run_checks(snapshot, load_checks(sorted(catalogue())))
    return {(finding.check, finding.nodes) for finding in report.findings}


def figures(quick: bool) -> list[Figure]:
    """Measure load_bundle of the text capture against json.loads of the snapshot JSON."""
    nodes = QUICK_SIZE if quick else SIZE
    directory = bundle_dir(nodes)
    snapshot_path = snapshot_file(nodes, faults=FAULTS)
    text = snapshot_path.read_text(encoding="utf-8")
    loaded = load_bundle(directory)
    same = findings_of(loaded) == findings_of(read_snapshot(snapshot_path))
    repeat = 3 if not quick else 2
    floor = time_call("json.loads", lambda: json.loads(text), repeat=repeat)
    measured = time_call("load_bundle", lambda: _first_load(directory), repeat=repeat)
    size_mib = sum(file.stat().st_size for file in directory.rglob("*") if file.is_file()) / 2**20
    return [Figure(
        f"bundle load, Calico text capture, N={nodes:,}", measured, floor, None,
        notes={"bundle_mib": round(size_mib, 1), "json_mib": round(len(text) / 2**20, 1),
               "same_findings_as_snapshot": same, "gaps": len(loaded.gaps)},
    ), iptables_figure(QUICK_SERVICES if quick else SERVICES)]


def _first_load(directory: Path) -> ClusterSnapshot:
    """Load a bundle as a new process would, without the rules that earlier runs parsed."""
    forget_parsed_rules()
    return load_bundle(directory)


def _first_parse(saved: str) -> IptablesRuleset:
    """Parse iptables-save output as a new process would, without the rules that earlier runs parsed."""
    forget_parsed_rules()
    return parse_iptables_save(saved, "iptables-save")


def iptables_figure(services: int) -> Figure:
    """Measure parsing one node's iptables-save with kube-proxy's rules against json.loads of the parsed ruleset."""
    saved = synthetic.iptables_save(synthetic.plan("calico", 3, services=services))
    ruleset = parse_iptables_save(saved, "iptables-save")
    text = json.dumps(to_json(ruleset))
    floor = time_call("json.loads", lambda: json.loads(text), repeat=5)
    measured = time_call("parse_iptables_save", lambda: _first_parse(saved), repeat=5)
    return Figure(
        f"iptables-save of one node, {services:,} kube-proxy services", measured, floor, None,
        notes={"lines": saved.count("\n"), "rules": sum(len(table.rules) for table in ruleset.tables)},
    )
