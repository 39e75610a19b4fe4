"""Flannel control-plane fixers: write the network config, repair leases, restart flanneld in order.

Keys are written through etcd's v2 HTTP API or the v3 JSON gateway, whichever
keyspace the snapshot's etcd data came from (flannel up to v0.9 reads v2). A
lease that the snapshot read from both keyspaces is repaired in both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from netdoctor.facts import cluster_facts
from netdoctor.fix import Condition, FixContext, NodeStep, Operation, Safety, Step, fixer
from netdoctor.fixers.support import shared_vtep_mac
from netdoctor.flannel import DEFAULT_PREFIX, prefixes
from netdoctor.model import Finding

#: Flannel backend types by the netdoctor backend id.
FLANNEL_TYPES = {"flannel-vxlan": "vxlan", "flannel-udp": "udp"}


def _api(context: FixContext) -> str:
    etcd = context.snapshot.etcd
    return "v2" if etcd is not None and "v2" in etcd.origin else "v3"


def _restart_flanneld(finding: Finding, node: str, fixer_id: str) -> NodeStep:
    return NodeStep(node, Step(
        id="restart-flanneld", title="Restart flanneld, then Docker, so that they read the new etcd data",
        safety=Safety.DISPLAY_ONLY,
        why="flanneld reads its config and lease at start; Docker must start after it to pick up subnet.env.",
        fixer=fixer_id, check=finding.check,
        display=("# systemctl restart flanneld", "# systemctl restart docker   # restarts this node's containers"),
        verify="cat /run/flannel/subnet.env",
    ))


@fixer("write-flannel-network-config", title="Write flannel's network config to etcd",
       checks=("etcd-network-config-missing",))
def write_flannel_network_config(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Write ``<prefix>/config`` with the pod network the nodes already use, then restart flanneld on each node.

    Safe: flanneld reads the key only at start, so writing it changes nothing
    until the display-only restart. The Network comes from the nodes'
    subnet.env or leases; when neither shows it, the step is display-only with
    a placeholder, because a guessed network could overlap the hosts.
    """
    etcd = context.snapshot.etcd
    found = prefixes(etcd) if etcd is not None else ()
    key = f"{found[0] if found else DEFAULT_PREFIX}/config"
    facts = cluster_facts(context.snapshot)
    network = facts.pod_networks[0].text if facts.pod_networks else None
    types = [FLANNEL_TYPES[backend] for node in finding.nodes for backend in context.backends(node) if backend in FLANNEL_TYPES]
    backend_type = types[0] if types else "vxlan"
    first = finding.nodes[0]
    why = "flanneld exits at start with 'Key not found' while the network config is absent."
    if network is None:
        value = json.dumps({"Network": "<POD NETWORK>", "Backend": {"Type": backend_type}})
        yield NodeStep(first, Step(
            id="etcd-flannel-config", title=f"Write {key} with the cluster's pod network", safety=Safety.DISPLAY_ONLY,
            why=why + " No captured source shows the pod network, so fill it in by hand.",
            fixer="write-flannel-network-config", check=finding.check,
            display=(f"# ETCDCTL_API=3 etcdctl put {key} '{value}'",),
        ))
    else:
        value = json.dumps({"Network": network, "Backend": {"Type": backend_type}})
        params = {"key": key, "value": value, "api": _api(context)}
        yield NodeStep(first, Step(
            id="etcd-flannel-config", title=f"Write {key} with Network {network}", safety=Safety.SAFE, why=why,
            fixer="write-flannel-network-config", check=finding.check,
            action=Operation("etcd-put", params),
            inverse=Operation("etcd-delete", {"key": key, "api": params["api"]}),
            preconditions=(Condition("etcd-key-absent", {"key": key, "api": params["api"]}),),
            done=Condition("etcd-key-is", params),
            verify=f"ETCDCTL_API=3 etcdctl get {key}",
        ))
    for node in finding.nodes:
        yield _restart_flanneld(finding, node, "write-flannel-network-config")


@fixer("repair-flannel-lease", title="Remove a stale flannel lease or correct its VtepMAC", checks=("etcd-lease-mismatch",))
def repair_flannel_lease(finding: Finding, context: FixContext) -> Iterator[NodeStep]:
    """Delete a lease whose PublicIP is no node's, or rewrite a lease's VtepMAC to the node's flannel.1 MAC.

    Safe: a lease no node owns routes traffic nowhere, and the VtepMAC fix
    writes what flanneld itself would write. The other mismatches (no lease,
    subnet.env differing from the lease, two leases for one address) are
    fixed by restarting flanneld on the node, which is display-only.
    """
    etcd = context.snapshot.etcd
    node = finding.nodes[0]
    problem, key = finding.detail("problem"), finding.detail("key")
    if etcd is not None and key is not None and problem == "stale":
        stored = _stored(context, key)
        for api, old in stored:
            yield _delete_lease(finding, node, key, api, old, len(stored) > 1)
        return
    vtep_mac = finding.detail("vtep_mac")
    if problem == "vtep-mac" and vtep_mac is not None and shared_vtep_mac(context, vtep_mac):
        # Another node's VTEP has this MAC too: set-unique-mac settles which one keeps it first.
        return
    if etcd is not None and key is not None and problem == "vtep-mac" and vtep_mac is not None:
        stored = _stored(context, key)
        for api, old in stored:
            step = _set_vtep_mac(finding, node, key, api, old, vtep_mac, len(stored) > 1)
            if step is not None:
                yield step
        return
    yield _restart_flanneld(finding, node, "repair-flannel-lease")


def _stored(context: FixContext, key: str) -> list[tuple[str, str]]:
    """Return (API, value) for each keyspace that contains ``key``, or the snapshot's one API when it does not record one.

    etcd keeps the v2 and v3 keyspaces apart, so a lease written to both must be changed in both.
    """
    etcd = context.snapshot.etcd
    found = [(keyspace, value) for keyspace, name, value in etcd.keyspace_entries if name == key]
    if found:
        return found
    old = etcd.get(key)
    return [] if old is None else [(_api(context), old)]


def _step_id(kind: str, key: str, api: str, per_keyspace: bool) -> str:
    return f"{kind}-{api}-{key}" if per_keyspace else f"{kind}-{key}"


def _delete_lease(finding: Finding, node: str, key: str, api: str, old: str, per_keyspace: bool) -> NodeStep:
    return NodeStep(node, Step(
        id=_step_id("etcd-delete", key, api, per_keyspace),
        title=f"Delete the stale lease {finding.detail('subnet')} (PublicIP {finding.detail('public_ip')})",
        safety=Safety.DISRUPTIVE,
        why="Peers program a route, FDB and neighbour entry to a host that is not a node. Deleting a lease "
            "is disruptive, so it is applied only after confirmation: if the host is a node that was not "
            "captured, its pods lose their subnet's routes.",
        fixer="repair-flannel-lease", check=finding.check,
        action=Operation("etcd-delete", {"key": key, "api": api}),
        inverse=Operation("etcd-put", {"key": key, "value": old, "api": api}),
        preconditions=(Condition("etcd-key-is", {"key": key, "value": old, "api": api}),),
        done=Condition("etcd-key-absent", {"key": key, "api": api}),
        verify=f"ETCDCTL_API=3 etcdctl get {key}",
    ))


def _set_vtep_mac(finding: Finding, node: str, key: str, api: str, old: str, vtep_mac: str,
                  per_keyspace: bool) -> NodeStep | None:
    try:
        data = json.loads(old)
    except json.JSONDecodeError:
        return None
    data.setdefault("BackendData", {})["VtepMAC"] = vtep_mac
    value = json.dumps(data, separators=(",", ":"))
    return NodeStep(node, Step(
        id=_step_id("etcd-vtepmac", key, api, per_keyspace), title=f"Set the VtepMAC of lease {finding.detail('subnet')} to {vtep_mac}",
        safety=Safety.SAFE, why="Peers send this node's overlay traffic to the lease's VtepMAC, which no VTEP has.",
        fixer="repair-flannel-lease", check=finding.check,
        action=Operation("etcd-put", {"key": key, "value": value, "api": api}),
        inverse=Operation("etcd-put", {"key": key, "value": old, "api": api}),
        preconditions=(Condition("etcd-key-is", {"key": key, "value": old, "api": api}),),
        done=Condition("etcd-key-is", {"key": key, "value": value, "api": api}),
        verify=f"ETCDCTL_API=3 etcdctl get {key}",
    ))
