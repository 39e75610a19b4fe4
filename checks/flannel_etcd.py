"""Flannel's control plane in etcd: the network config and the per-node subnet leases."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from netdoctor.engine import check
from netdoctor.flannel import DEFAULT_PREFIX, Lease, leases, network_config, prefixes
from netdoctor.model import (
    ClusterSnapshot,
    EtcdData,
    Evidence,
    Finding,
    NodeSnapshot,
    Severity,
    make_details,
)
from netdoctor.model.addr import AddressError, ip_network


def _runs_flannel(node: NodeSnapshot) -> bool:
    return node.flannel_env is not None or any(
        interface.name in ("flannel.1", "flannel0") for interface in node.interfaces or ()
    )


def _holds_calico_datastore(etcd: EtcdData) -> bool:
    return any(key.startswith("/calico/") for key, _ in etcd.keys)


def _prefix(etcd: EtcdData) -> str:
    found = prefixes(etcd)
    return found[0] if found else DEFAULT_PREFIX


def _ipv4_addresses(node: NodeSnapshot) -> set[str]:
    return {address.address for interface in node.interfaces or () for address in interface.addresses if address.family == 4}


@check(
    "etcd-network-config-missing",
    title="Flannel network config missing from etcd",
    severity=Severity.ERROR,
    backends=("flannel-udp", "flannel-vxlan"),
)
def etcd_network_config_missing(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """etcd was captured but holds no usable flannel network config.

    What it checks:
        When etcd's keys were captured, that ``<prefix>/config`` exists (the
        prefix is ``/coreos.com/network`` unless the keys show another one, such
        as ``/kube-centos/network``) and is JSON with a valid IPv4 ``Network``.
        The finding lists every node, because every node's flanneld needs it.
    Why it matters:
        flanneld reads this key at start and exits with ``Key not found`` when it
        is absent, so no node acquires a subnet lease, no overlay device or route
        appears, and Docker keeps its default 172.17.0.0/16 bridge on every node.
        The check fires even when no overlay is detected, because the missing key
        is the usual reason none exists.
    Known problems:
        An etcd that serves only as Calico's datastore (``/calico/`` keys) on nodes
        that run no flannel is not reported. A flannel started with an
        ``-etcd-prefix`` under which nothing was ever written cannot be told
        apart from the default prefix.
    Example:
        ``/coreos.com/network/config is absent from etcd (2 keys captured)`` on
        node1 and node2.
    Fix safety:
        Writing the config key is safe: flanneld reads it only at start. The
        Network must not overlap the hosts' own subnets.
    """
    etcd = snapshot.etcd
    if etcd is None or not snapshot.nodes:
        return
    if _holds_calico_datastore(etcd) and not any(_runs_flannel(node) for node in snapshot.nodes):
        return
    config = network_config(etcd, _prefix(etcd))
    if config.error is None:
        return
    raw = etcd.get(config.key)
    yield Finding(
        check="etcd-network-config-missing",
        severity=Severity.ERROR,
        nodes=snapshot.node_names,
        summary=f"{config.error} in etcd ({len(etcd.keys)} keys captured); flanneld cannot start on any node",
        evidence=(Evidence(None, "etcd", f"{config.key} = {raw}" if raw is not None else f"{config.key}: absent"),),
        details=make_details(key=config.key, state="absent" if raw is None else "invalid"),
    )


def _lease_owner(lease: Lease, owners: dict[str, list[str]]) -> list[str]:
    return owners.get(lease.public_ip or "", [])


@check(
    "etcd-lease-mismatch",
    title="Flannel subnet lease does not match the node",
    severity=Severity.ERROR,
    backends=("flannel-udp", "flannel-vxlan"),
)
def etcd_lease_mismatch(snapshot: ClusterSnapshot) -> Iterator[Finding]:
    """A flannel subnet lease disagrees with the node it should describe.

    What it checks:
        Each lease under ``<prefix>/subnets/`` against the nodes. It reports a
        node that runs flannel but has no lease for any of its addresses, a
        lease whose PublicIP is no node's address, and two leases for one
        PublicIP. It also reports a lease whose VtepMAC differs from the node's
        ``flannel.1`` MAC, and a node whose ``subnet.env`` FLANNEL_SUBNET is not
        its lease's subnet.
    Why it matters:
        Every node programs its routes, FDB and neighbour entries from the
        leases. A lease with a wrong PublicIP or VtepMAC sends peers' traffic for
        that subnet to the wrong host or MAC, and a node without a lease is
        unreachable from every peer.
    Known problems:
        Nodes whose addresses were not captured are left out of the PublicIP
        comparisons. A lease is judged to point at no node only when the
        snapshot can know every node: when Kubernetes Node objects were
        captured (their addresses count as nodes' addresses), or when at least
        as many nodes as leases were captured. A check of a few nodes of a
        larger cluster therefore never calls the other nodes' leases stale.
    Example:
        ``lease 10.244.61.0/24 has PublicIP 10.0.4.99, which is no node's address``.
    Fix safety:
        Deleting a stale lease is disruptive: it is right when no node owns it,
        but if the host is a node that was not captured, its pods lose their
        routes until its flanneld writes the lease again.
    """
    etcd = snapshot.etcd
    if etcd is None:
        return
    prefix = _prefix(etcd)
    all_leases = leases(etcd, prefix)
    flannel_nodes = [node for node in snapshot.nodes if _runs_flannel(node)]
    if not all_leases and not flannel_nodes:
        return
    if network_config(etcd, prefix).error is not None and not all_leases:
        return  # etcd-network-config-missing reports this state

    owners: dict[str, list[str]] = defaultdict(list)
    for node in snapshot.nodes:
        for address in _ipv4_addresses(node):
            owners[address].append(node.name)
    every_node_captured = all(node.interfaces is not None for node in snapshot.nodes)
    kube_addresses = {address for kube_node in snapshot.kube_nodes or () for address in kube_node.internal_ips}
    # Only a snapshot that can know every node may call a lease's host "no node".
    knows_every_node = bool(snapshot.nodes) and every_node_captured and (
        bool(kube_addresses) or len(snapshot.nodes) >= len(all_leases)
    )

    findings: list[Finding] = []

    def report(nodes: list[str] | tuple[str, ...], summary: str, evidence: list[Evidence], **facts: object) -> None:
        findings.append(
            Finding("etcd-lease-mismatch", Severity.ERROR, tuple(sorted(set(nodes))), summary, tuple(evidence),
                    details=make_details(**facts))
        )

    by_public_ip: dict[str, list[Lease]] = defaultdict(list)
    for lease in all_leases:
        if lease.public_ip:
            by_public_ip[lease.public_ip].append(lease)

    for lease in all_leases:
        lease_evidence = Evidence(None, "etcd", f"{lease.key} PublicIP={lease.public_ip} VtepMAC={lease.vtep_mac}")
        if knows_every_node and not _lease_owner(lease, owners) and lease.public_ip not in kube_addresses:
            report(
                snapshot.node_names,
                f"lease {lease.subnet} has PublicIP {lease.public_ip}, which is no node's address",
                [lease_evidence],
                problem="stale", key=lease.key, subnet=lease.subnet, public_ip=lease.public_ip,
            )

    for public_ip, shared in sorted(by_public_ip.items()):
        if len(shared) > 1:
            subnets = ", ".join(str(lease.subnet) for lease in shared)
            report(
                owners.get(public_ip) or snapshot.node_names,
                f"{len(shared)} leases ({subnets}) name the same PublicIP {public_ip}",
                [Evidence(None, "etcd", lease.key) for lease in shared],
                problem="shared-public-ip", public_ip=public_ip, keys=",".join(lease.key for lease in shared),
            )

    for node in flannel_nodes:
        if node.interfaces is None:
            continue
        own = [lease for address in sorted(_ipv4_addresses(node)) for lease in by_public_ip.get(address, [])]
        if not own:
            report(
                [node.name],
                f"{node.name} runs flannel but no lease names any of its addresses "
                f"({', '.join(sorted(_ipv4_addresses(node) - {'127.0.0.1'})) or 'none'})",
                [Evidence(node.name, "interfaces", interface.name) for interface in node.interfaces
                 if interface.name in ("flannel.1", "flannel0")],
                problem="no-lease",
            )
            continue
        vtep = node.interface("flannel.1")
        for lease in own:
            if vtep is not None and vtep.mac and lease.vtep_mac and vtep.mac.lower() != lease.vtep_mac:
                report(
                    [node.name],
                    f"lease {lease.subnet} has VtepMAC {lease.vtep_mac} but {node.name}'s flannel.1 has MAC {vtep.mac}",
                    [Evidence(None, "etcd", lease.key), Evidence(node.name, "interfaces", f"flannel.1 link/ether {vtep.mac}")],
                    problem="vtep-mac", key=lease.key, subnet=lease.subnet, vtep_mac=vtep.mac.lower(),
                    lease_vtep_mac=lease.vtep_mac,
                )
        env = node.flannel_env
        if env is not None and env.subnet and len(own) == 1:
            try:
                env_subnet = ip_network(env.subnet)
            except AddressError:
                continue  # the subnet.env parser reports malformed values
            if env_subnet != own[0].subnet:
                report(
                    [node.name],
                    f"{node.name}'s subnet.env has FLANNEL_SUBNET={env.subnet} but its lease is {own[0].subnet}",
                    [Evidence(node.name, "flannel_env", f"FLANNEL_SUBNET={env.subnet}"), Evidence(None, "etcd", own[0].key)],
                    problem="subnet-env", key=own[0].key, subnet=own[0].subnet, env_subnet=env.subnet,
                )

    yield from sorted(findings, key=Finding.sort_key)
