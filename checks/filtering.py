"""Packet filter checks: ICMP blocked, forwarded pod traffic dropped, overlay traffic blocked, pod traffic masqueraded.

Each walks the captured ``iptables-save`` tables with a
:class:`netdoctor.firewall.CompiledRuleset` that the checks share per node, and the firewalld zones with
:mod:`netdoctor.firewalld` when the node has firewalld data, for packets built
from the snapshot: the node's underlay address, its pod subnet and a peer's
pod subnet. That module is imported only when a node has firewalld data.
When no rule tests a field in which a node's pod paths differ, one packet
gives the verdict of every path, and the paths are not looked up.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import chain

from netdoctor.backends import detect_backends
from netdoctor.engine import check
from netdoctor.facts import (
    ClusterFacts,
    NodeFacts,
    PodSubnet,
    Prefix,
    RouteIndex,
    cluster_facts,
    make_prefix,
    prefix_contains,
)
from netdoctor.firewall import CompiledRuleset, Packet, Verdict
from netdoctor.model import ClusterSnapshot, Evidence, Finding, Gap, Route, Severity, make_details
from netdoctor.model.addr import (
    AF_INET,
    AddressError,
    format_ip,
    masked_address,
    network_of,
    parse_ip,
    quoted_text,
)
from netdoctor.model.record import record

#: An address outside the cluster, for a node without a captured peer (TEST-NET-1).
OUTSIDE_ADDRESS = "192.0.2.10"

#: Maximum length of a rule, ``-A`` included, that a gap reason quotes whole. A longer rule is cut and its length
#: given, and the reason also names the rule's line when the capture gives one.
RULE_QUOTE_LIMIT = 120


def _host_in(prefix: Prefix) -> str:
    """Return a pod address inside a pod subnet: the second host, clear of the bridge's usual .1."""
    family, net, length = prefix
    offset = 2 if (32 if family == 4 else 128) - length >= 2 else 0
    return format_ip(family, net + offset)


def _local_addresses(node: NodeFacts) -> frozenset[str]:
    local: frozenset[str] | None = node.memo.get("local addresses")
    if local is None:
        local = node.memo["local addresses"] = frozenset(
            address.address for interface in node.node.interfaces or () for address in interface.addresses
        )
    return local


def _iptables(node: NodeFacts, table: str) -> CompiledRuleset | None:
    """Return the node's iptables rules, compiled once for every packet the checks walk, or None without ``table``."""
    if node.node.iptables is None:
        return None
    compiled: CompiledRuleset | None = node.memo.get("compiled iptables")
    if compiled is None:
        compiled = node.memo["compiled iptables"] = CompiledRuleset(node.node.iptables, node.shared)
    return compiled if compiled.has_table(table) else None


def _verdict_evidence(node: str, verdict: Verdict) -> Evidence:
    if verdict.rule is not None:
        return Evidence(node, "iptables", f"-A {verdict.rule.text}", verdict.rule.line)
    return Evidence(node, "iptables", f":{verdict.chain} {verdict.verdict}")


class _Undecided:
    """The nodes where one check met a firewall walk that the evaluator could not decide, one gap per node.

    Such a walk gives no verdict on the traffic, so the check reports neither a
    finding nor a clean result for it. The gap names the packet and the rule.
    """

    def __init__(self, check_id: str) -> None:
        self.source = f"check:{check_id}"
        self.nodes: set[str] = set()

    def gaps(self, node: str, verdict: Verdict | None, question: str) -> tuple[Gap, ...]:
        """Return the gap for ``node`` when ``verdict`` is undecided and the node has none yet, else nothing."""
        if verdict is None or verdict.verdict != "UNKNOWN" or node in self.nodes:
            return ()
        self.nodes.add(node)
        if verdict.rule is not None:
            line = f" (line {verdict.rule.line})" if verdict.rule.line else ""
            rule = quoted_text(f"-A {verdict.rule.text}", RULE_QUOTE_LIMIT)
            where = f" at {rule}{line}"
        else:
            where = f" in chain {verdict.chain}"
        return (Gap(node, self.source, f"could not tell {question}: {verdict.reason}{where}, so that traffic was not judged"),)


def _past(verdict: str) -> str:
    """Turn a verdict such as ``DROP`` into the words a summary uses (``dropped``)."""
    return {
        "DROP": "dropped", "REJECT": "rejected", "ACCEPT": "accepted", "MASQUERADE": "masqueraded",
        "SNAT": "source-translated (SNAT)", "DNAT": "destination-translated (DNAT)", "REDIRECT": "redirected",
        "NETMAP": "mapped (NETMAP)",
    }.get(verdict, verdict)


def _decided_by(verdict: Verdict) -> str:
    if verdict.rule is not None:
        return f"'-A {verdict.rule.text}'"
    return f"the {verdict.chain} policy {verdict.verdict}"


@record
class PodPath:
    """Forwarded pod traffic between this node's pods and one peer's pods."""

    peer: str
    local_pod: str
    peer_pod: str
    pod_device: str
    peer_device: str


def pod_paths(facts: ClusterFacts, node: NodeFacts) -> list[PodPath]:
    """Return one forwarding path per device that leads to peers' pods.

    Peers reached through the same device share the verdict in practice, so
    only the first peer per device is evaluated.
    """
    cached: list[PodPath] | None = node.memo.get("pod_paths")
    if cached is not None:
        return cached
    if node.routes is None:
        return []
    own = node.pod_subnets()
    pod_device = node.pod_bridges[0].name if node.pod_bridges else None
    if pod_device is None:
        workloads = sorted(interface.name for interface in node.node.interfaces or () if interface.name.startswith("cali"))
        pod_device = workloads[0] if workloads else None
    if not own or pod_device is None:
        node.memo["pod_paths"] = []
        return []
    local_pod = _host_in(own[0].prefix)
    paths: dict[str, PodPath] = {}
    devices = node.routes.cells("dev")
    for peer, subnet in _first_pair_per_device(facts, node, {"", pod_device}):
        row = node.routes.best_row(subnet.prefix, skip_default=True)
        if row is None:
            continue
        device = devices[row]
        if not device or device == pod_device or device in paths:
            continue
        paths[device] = PodPath(peer.name, local_pod, _host_in(subnet.prefix), pod_device, device)
    result = [paths[device] for device in sorted(paths)]
    node.memo["pod_paths"] = result
    return result


@record
class ForwardTraffic:
    """A new TCP connection each way on one pod path, with the FORWARD verdicts of its first packets."""

    path: PodPath
    #: From the node's pod (in by the pod device) to the peer's pod (out by the peer device).
    outgoing: Packet
    incoming: Packet
    #: The filter table's FORWARD verdicts; None on a node without a filter table.
    outgoing_verdict: Verdict | None
    incoming_verdict: Verdict | None


def _forward_traffic(facts: ClusterFacts, node: NodeFacts) -> list[ForwardTraffic]:
    """Return the TCP packets of every pod path with their FORWARD verdicts, walked once per node."""
    cached: list[ForwardTraffic] | None = node.memo.get("forward traffic")
    if cached is not None:
        return cached
    local = _local_addresses(node)
    iptables = _iptables(node, "filter")
    result = []
    for path in pod_paths(facts, node):
        outgoing = Packet("tcp", path.local_pod, path.peer_pod, path.pod_device, path.peer_device, sport=40000,
                          dport=80, local_addresses=local)
        incoming = Packet("tcp", path.peer_pod, path.local_pod, path.peer_device, path.pod_device, sport=40000,
                          dport=80, local_addresses=local)
        result.append(ForwardTraffic(
            path, outgoing, incoming,
            iptables.evaluate("FORWARD", outgoing) if iptables is not None else None,
            iptables.evaluate("FORWARD", incoming) if iptables is not None else None,
        ))
    node.memo["forward traffic"] = result
    return result


#: The packet fields in which the packets of a node's pod paths differ from each other.
_PATH_FIELDS = frozenset({"src", "dst", "in_interface", "out_interface"})


def _path_tcp_verdict(node: NodeFacts, iptables: CompiledRuleset) -> Verdict | None:
    """Return the FORWARD verdict of the TCP packets of every pod path, or None when it depends on the path.

    When no FORWARD rule tests a field in which the paths differ, every path
    gets the verdict of one packet, and the checks need not find the paths at all.
    """
    if "path TCP verdict" not in node.memo:
        verdict = None
        if not iptables.reads_any("FORWARD", _PATH_FIELDS):
            # The fields of the packets that _forward_traffic builds, apart from the path's.
            packet = Packet("tcp", "", "", sport=40000, dport=80, local_addresses=_local_addresses(node))
            verdict = iptables.evaluate("FORWARD", packet)
        node.memo["path TCP verdict"] = verdict
    found: Verdict | None = node.memo["path TCP verdict"]
    return found


def _first_pair_per_device(facts: ClusterFacts, node: NodeFacts,
                           skip_devices: set[str]) -> list[tuple[NodeFacts, PodSubnet]]:
    """Return, in peer order, the first peer subnet routed through each device, and every unprimed subnet.

    Devices in ``skip_devices`` get no pair, but unprimed subnets are
    returned whatever their device. Only the first pair per device matters to
    :func:`pod_paths`. Primed positions run in peer order, so that pair is at
    the first usable position whose best route uses the device, apart from
    subnets several nodes claim, which :meth:`ClusterFacts.first_peer_subnet`
    weighs.
    """
    routes = node.routes
    assert routes is not None
    rows = routes.primed_rows()
    if not rows:
        return facts.peer_subnets(node.name)
    values, index = routes.interned("dev")
    skipped = {code for code, value in enumerate(values) if value in skip_devices}
    shared = facts.shared_positions()
    owners = facts.subnet_owners

    lengths, destinations = routes.cells("dst_len"), routes.cells("dst")
    defaults: set[int] | None = None

    def usable(position: int) -> bool:
        """Tell whether a route other than a default route contains the position's prefix."""
        nonlocal defaults
        row = rows[position]
        if row == -1:
            return False
        if lengths[row] or destinations[row] == 0:
            return lengths[row] != 0
        # A /0 route with host bits set: leave it to the route index whether that is a default route.
        if defaults is None:
            defaults = routes.positions_where(default=True)
        return position not in defaults

    def is_peer(position: int) -> bool:
        # The node's own subnet is no peer's; a later position with the same device may be.
        return position not in shared and any(owner.name != node.name for owner, _, _ in owners[position])

    groups: dict[int, list[int]] = {}
    for position in shared:
        if usable(position) and index[rows[position]] not in skipped:
            groups.setdefault(index[rows[position]], []).append(position)
    for code, position in _first_positions(facts, routes, skipped, usable, is_peer).items():
        groups.setdefault(code, []).append(position)
    chosen: list[tuple[NodeFacts, PodSubnet]] = []
    for group in groups.values():
        first = facts.first_peer_subnet(node.name, group)
        if first is not None:
            chosen.append(first)
    chosen += facts.peer_subnets(node.name, ())
    chosen.sort(key=lambda pair: (pair[0].name, pair[0].pod_subnets().index(pair[1])))
    return chosen


#: A device with at most this many routes has the positions of its routes searched route by route.
_FEW_ROUTES = 16
#: Positions read one at a time, for the devices with more routes, before the rest are read in bulk.
_SCAN_LIMIT = 64


def _first_positions(facts: ClusterFacts, routes: RouteIndex, skipped: set[int], usable: Callable[[int], bool],
                     is_peer: Callable[[int], bool]) -> dict[int, int]:
    """Return, per device code of the route table not in ``skipped``, the first primed position that ``is_peer`` accepts.

    Only positions that ``usable`` accepts are returned, and whether a
    position is usable must depend on its best row alone.

    Reading the device of every position costs a Python step per peer subnet,
    N² steps in a cluster. So for a device with few routes, each route's
    positions are found among the primed prefixes inside the route, or in the
    bytes of the best rows, a search in C. The positions are read one by one
    only for the devices with many routes, and peers' subnets usually take
    those from the first positions on.
    """
    rows = routes.primed_rows()
    assert rows is not None
    values, index = routes.interned("dev")
    if len(values) > 256:
        return _scan_positions(rows, index, set(range(len(values))) - skipped, usable, is_peer)
    # Best rows are main-table IPv4 routes, which form one range of rows. Take one byte per row of that
    # range: the low byte of its device code, which is all of the code.
    main_rows = routes.inside_range((AF_INET, 0, 0))
    size = index.itemsize
    low_byte = 0 if sys.byteorder == "little" else size - 1
    codes_by_row = index.tobytes()[main_rows.start * size + low_byte:main_rows.stop * size:size]
    candidates = _candidate_positions(facts, routes)
    raw = rows.tobytes()
    found: dict[int, int] = {}
    crowded: set[int] = set()
    for code in range(len(values)):
        if code in skipped:
            continue
        count = codes_by_row.count(code)
        if count > _FEW_ROUTES:
            crowded.add(code)
            continue
        offset = codes_by_row.find(code) if count else -1
        while offset != -1:
            row = main_rows.start + offset
            inside = candidates(row)
            if inside is None:
                position = _first_position_of_row(raw, rows, row, usable, is_peer)
            else:
                position = _first_position_among(inside, rows, row, usable, is_peer)
            if position is not None and position < found.get(code, len(rows)):
                found[code] = position
            offset = codes_by_row.find(code, offset + 1)
    if crowded:
        found.update(_scan_positions(rows, index, crowded, usable, is_peer))
    return found


def _candidate_positions(facts: ClusterFacts, routes: RouteIndex) -> Callable[[int], list[int] | None]:
    """Return a function that lists, in order, the primed positions whose best row a main-table IPv4 route row can be.

    A best row contains the primed prefix, so the prefix's network lies inside
    the route. The function returns None when more than a few positions lie
    inside, and an empty list for a default route, whose positions are unusable.
    """
    networks, positions = _primed_networks(facts)
    destinations, lengths = routes.cells("dst"), routes.cells("dst_len")

    def candidates(row: int) -> list[int] | None:
        length = lengths[row]
        if length == 0 and destinations[row] == 0:
            return []
        start = network_of(AF_INET, destinations[row], length)
        low = bisect_left(networks, start)
        high = bisect_left(networks, start + (1 << (32 - length)), low)
        if high - low > _FEW_ROUTES:
            return None
        return sorted(positions[low:high])

    return candidates


def _primed_networks(facts: ClusterFacts) -> tuple[list[int], list[int]]:
    """Return the networks of the primed prefixes in ascending order, and the position of each."""
    cached: tuple[list[int], list[int]] | None = facts.memo.get("primed networks")
    if cached is None:
        # Only IPv4 prefixes are primed.
        pairs = sorted((owners[0][2].prefix[1], position) for position, owners in enumerate(facts.subnet_owners))
        cached = facts.memo["primed networks"] = ([network for network, _ in pairs], [position for _, position in pairs])
    return cached


def _first_position_among(candidates: list[int], rows: array, row: int, usable: Callable[[int], bool],
                          is_peer: Callable[[int], bool]) -> int | None:
    """Return the first of ``candidates`` whose best route is ``row`` and that ``is_peer`` accepts."""
    for position in candidates:
        if rows[position] == row:
            if not usable(position):
                # Whether a position is usable depends on its best row alone.
                return None
            if is_peer(position):
                return position
    return None


def _first_position_of_row(raw: bytes, rows: array, row: int, usable: Callable[[int], bool],
                           is_peer: Callable[[int], bool]) -> int | None:
    """Return the first position whose best route is ``row`` and that ``is_peer`` accepts, searching ``raw``."""
    size = rows.itemsize
    pattern = array(rows.typecode, (row,)).tobytes()
    at = raw.find(pattern)
    while at != -1:
        # A match that straddles two entries is not a row number.
        if at % size == 0:
            position = at // size
            if not usable(position):
                # Whether a position is usable depends on its best row alone.
                return None
            if is_peer(position):
                return position
            at += size - 1
        at = raw.find(pattern, at + 1)
    return None


def _scan_positions(rows: array, index: array, codes: set[int], usable: Callable[[int], bool],
                    is_peer: Callable[[int], bool]) -> dict[int, int]:
    """Return, per device code in ``codes``, the first position with that device that ``is_peer`` accepts."""
    found: dict[int, int] = {}
    pending = set(codes)
    limit = min(len(rows), _SCAN_LIMIT)
    for position in range(limit):
        code = index[rows[position]]
        if code in pending and usable(position) and is_peer(position):
            found[code] = position
            pending.discard(code)
            if not pending:
                return found
    if limit == len(rows):
        return found
    # A device none of the first positions use: read the rest in bulk and search it with list.index().
    rest = list(map(index.__getitem__, rows[limit:]))
    for code in pending.intersection(rest):
        at = -1
        while True:
            try:
                at = rest.index(code, at + 1)
            except ValueError:
                break
            position = limit + at
            if usable(position) and is_peer(position):
                found[code] = position
                break
    return found


@check("icmp-blocked", title="ICMP blocked where TCP and UDP pass", severity=Severity.WARNING, backends=("any",))
def icmp_blocked(snapshot: ClusterSnapshot) -> Iterator[Finding | Gap]:
    """ICMP echo or "fragmentation needed" is dropped or rejected by the node's filter rules.

    What it checks:
        On INPUT: an echo request, an echo reply (``ESTABLISHED``) and a
        "fragmentation needed" error (``RELATED``) from a peer's underlay address to the node's underlay
        address, arriving on the underlay interface. Either one meeting an
        ICMP-specific DROP/REJECT, or a catch-all REJECT or DROP policy before
        any ICMP accept, is reported; on a node with firewalld data the same
        packets also go through the zone of the underlay interface
        (icmp-blocks, icmp-block-inversion, rich rules, target). On FORWARD: the same ICMP packets between
        this node's pods and a peer's pods, each way, reported only
        when a TCP packet on the same path is accepted (a catch-all that blocks every protocol is
        forward-policy-drop).
    Why it matters:
        Path MTU discovery depends on "fragmentation needed" reaching the
        sender; without it, large transfers over the overlay hang. Blocked echo
        makes ping-based health checks and diagnosis report a working path as
        down.
    Known problems:
        A rule with a match module the evaluator does not read (``-m set``,
        ``-m recent``, ...) stops the walk, unless the rule only logs or counts
        (``-j LOG``, ``-j NFLOG``). The node then gets a gap naming the rule
        instead of a finding. nftables rules outside iptables-save and
        firewalld zones are not read, and firewalld's effect on forwarded ICMP
        is not evaluated.
    Example:
        ``node1: ICMP echo-request from 10.0.0.52 to 10.0.0.51 on INPUT is
        REJECT by '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'``.
    Fix safety:
        Adding an ICMP accept rule before the reject is safe; it opens only
        ICMP.
    """
    facts = cluster_facts(snapshot)
    undecided = _Undecided("icmp-blocked")
    for name, node in sorted(facts.nodes.items()):
        has_filter = _iptables(node, "filter") is not None
        if not has_filter and node.node.firewalld is None:
            continue
        yield from _icmp_on_input(facts, node, undecided)
        if has_filter:
            yield from _icmp_on_forward(facts, node, undecided)


_ICMP_PACKETS = (("echo-request", 8, 0, "NEW"), ("echo-reply", 0, 0, "ESTABLISHED"),
                 ("fragmentation-needed", 3, 4, "RELATED"))


def _icmp_on_input(facts: ClusterFacts, node: NodeFacts, undecided: _Undecided) -> Iterator[Finding | Gap]:
    if not node.underlay_subnets or _input_never_blocks(node):
        return
    _, cidr, device = node.underlay_subnets[0]
    address = cidr.partition("/")[0]
    source = OUTSIDE_ADDRESS
    for peer in facts.iter_peers(node.name):
        if peer.underlay_subnets:
            source = peer.underlay_subnets[0][1].partition("/")[0]
            break
    local = _local_addresses(node)
    iptables = _iptables(node, "filter")
    for label, icmp_type, code, state in _ICMP_PACKETS:
        packet = Packet("icmp", source, address, in_interface=device, icmp_type=icmp_type, icmp_code=code,
                        ctstate=state, local_addresses=local)
        if iptables is not None:
            verdict = iptables.evaluate("INPUT", packet)
            yield from undecided.gaps(node.name, verdict, f"whether ICMP {label} from {source} to {address} passes INPUT")
            if verdict.blocks:
                yield Finding(
                    check="icmp-blocked",
                    severity=Severity.WARNING,
                    nodes=(node.name,),
                    summary=f"{node.name}: ICMP {label} from {source} to {address} on INPUT is {_past(verdict.verdict)} "
                    f"by {_decided_by(verdict)}",
                    evidence=(_verdict_evidence(node.name, verdict),),
                    details=make_details(
                        direction="input", table="filter", chain=verdict.chain, verdict=verdict.verdict,
                        rule=verdict.rule.text if verdict.rule else None, policy=None if verdict.rule else verdict.verdict,
                        icmp_label=label, icmp_type=f"{icmp_type}/{code}" if code else icmp_type,
                        source=source, destination=address, in_interface=device,
                    ),
                )
                continue
        if node.node.firewalld is not None:
            from netdoctor.firewalld import evaluate_input

            zone_verdict = evaluate_input(node.node.firewalld, packet)
            if zone_verdict.blocks:
                yield Finding(
                    check="icmp-blocked",
                    severity=Severity.WARNING,
                    nodes=(node.name,),
                    summary=f"{node.name}: ICMP {label} from {source} to {address} is {_past(zone_verdict.verdict)} "
                    f"by firewalld {zone_verdict.reason}",
                    evidence=(Evidence(node.name, "firewalld", zone_verdict.reason),),
                    details=make_details(
                        direction="input", firewalld_zone=zone_verdict.zone, firewalld_policy=zone_verdict.policy,
                        verdict=zone_verdict.verdict, icmp_label=label,
                        icmp_type=f"{icmp_type}/{code}" if code else icmp_type,
                        source=source, destination=address, in_interface=device,
                    ),
                )


def _blocks_or_undecided(verdict: Verdict) -> bool:
    """Tell whether a walk's verdict drops or rejects the packet, or could not be decided."""
    return verdict.blocks or verdict.verdict == "UNKNOWN"


def _input_never_blocks(node: NodeFacts) -> bool:
    """Tell whether the node has no firewalld data and its INPUT chain gives every packet one decided verdict that does not block."""
    if node.node.firewalld is not None:
        return False
    iptables = _iptables(node, "filter")
    verdict = iptables.fixed_verdict("INPUT") if iptables is not None else None
    return verdict is not None and not _blocks_or_undecided(verdict)


def _icmp_on_forward(facts: ClusterFacts, node: NodeFacts, undecided: _Undecided) -> Iterator[Finding | Gap]:
    iptables = _iptables(node, "filter")
    assert iptables is not None
    tcp_verdict = _path_tcp_verdict(node, iptables)
    if tcp_verdict is not None:
        # Every path gets the same verdicts, so a finding or gap needs TCP accepted and some ICMP packet
        # blocked or undecided.
        if tcp_verdict.verdict != "ACCEPT":
            yield from undecided.gaps(node.name, tcp_verdict, "whether TCP between pods on different nodes passes FORWARD, "
                                      "the traffic that forwarded ICMP is compared with")
            return
        local = _local_addresses(node)
        if not any(
            _blocks_or_undecided(iptables.evaluate("FORWARD", Packet("icmp", "", "", icmp_type=icmp_type, icmp_code=code,
                                                                     ctstate=state, local_addresses=local)))
            for _, icmp_type, code, state in _ICMP_PACKETS
        ):
            return
    for traffic in _forward_traffic(facts, node):
        path = traffic.path
        directions = []
        for tcp, tcp_path_verdict in ((traffic.outgoing, traffic.outgoing_verdict),
                                      (traffic.incoming, traffic.incoming_verdict)):
            if tcp_path_verdict is not None and tcp_path_verdict.verdict == "ACCEPT":
                directions.append(tcp)
                continue
            yield from undecided.gaps(node.name, tcp_path_verdict, f"whether TCP {tcp.src} -> {tcp.dst} passes FORWARD, "
                                      "the traffic that forwarded ICMP is compared with")
        for label, icmp_type, code, state in _ICMP_PACKETS:
            # One finding per ICMP type and path: the first direction that blocks it.
            for tcp in directions:
                packet = Packet("icmp", tcp.src, tcp.dst, tcp.in_interface, tcp.out_interface, icmp_type=icmp_type,
                                icmp_code=code, ctstate=state, local_addresses=tcp.local_addresses)
                verdict = iptables.evaluate("FORWARD", packet)
                if not _blocks_or_undecided(verdict):
                    continue
                if tcp is traffic.outgoing:
                    described = f"from {path.local_pod} to {path.peer}'s pod {path.peer_pod}"
                else:
                    described = f"from {path.peer}'s pod {path.peer_pod} to {path.local_pod}"
                if not verdict.blocks:
                    yield from undecided.gaps(node.name, verdict, f"whether forwarded ICMP {label} {described} passes FORWARD")
                    continue
                yield Finding(
                    check="icmp-blocked",
                    severity=Severity.WARNING,
                    nodes=(node.name,),
                    summary=f"{node.name}: forwarded ICMP {label} {described} is {_past(verdict.verdict)} "
                    f"by {_decided_by(verdict)} while TCP on that path is accepted",
                    evidence=(_verdict_evidence(node.name, verdict),),
                    details=make_details(
                        direction="forward", table="filter", chain=verdict.chain, verdict=verdict.verdict,
                        rule=verdict.rule.text if verdict.rule else None, policy=None if verdict.rule else verdict.verdict,
                        icmp_label=label, icmp_type=f"{icmp_type}/{code}" if code else icmp_type, peer=path.peer,
                        source=tcp.src, destination=tcp.dst, in_interface=tcp.in_interface,
                        out_interface=tcp.out_interface,
                    ),
                )
                break


@check("forward-policy-drop", title="Forwarded pod traffic dropped", severity=Severity.ERROR, backends=("any",))
def forward_policy_drop(snapshot: ClusterSnapshot) -> Iterator[Finding | Gap]:
    """Pod traffic to or from a peer's pods meets a FORWARD DROP policy or catch-all REJECT.

    What it checks:
        A new TCP connection from one of this node's pods (in through its pod
        bridge or ``cali*`` veth) to a pod of each peer (out through the device
        of the node's route to that peer's pod subnet), and the same in the
        other direction, walked through the FORWARD chain of the filter table.
        A DROP or REJECT verdict is reported with the rule or policy that
        decided it. On a node with firewalld data the same packets also go
        through firewalld's forward filtering: policies between the two
        devices' zones, intra-zone forwarding and the ingress zone's target.
    Why it matters:
        Docker 1.13 and later set the FORWARD policy to DROP. Unless flannel's
        ``-s/-d POD_NETWORK -j ACCEPT`` rules, kube-proxy's or Calico's rules
        accept pod traffic first, every connection between pods on different
        nodes is dropped while node-to-node traffic works.
    Known problems:
        One peer per outgoing device is evaluated. A rule with a match module
        the evaluator does not read gives no verdict, unless the rule only logs
        or counts. The node then gets a gap naming the rule instead of a finding.
        Traffic bridged inside the node (OVS's br0 on docker0) reaches FORWARD
        only with br_netfilter, which is not checked.
    Example:
        ``node1: TCP from pod 10.244.23.2 to node2's pod 10.244.61.2 (in
        docker0, out flannel.1) is DROP by the FORWARD policy DROP``.
    Fix safety:
        Adding ACCEPT rules for the pod network in FORWARD is safe; changing
        the policy to ACCEPT also opens forwarding for non-pod traffic.
    """
    facts = cluster_facts(snapshot)
    undecided = _Undecided("forward-policy-drop")
    for name, node in sorted(facts.nodes.items()):
        if node.node.firewalld is None:
            iptables = _iptables(node, "filter")
            if iptables is None:
                continue
            tcp_verdict = _path_tcp_verdict(node, iptables)
            if tcp_verdict is not None and not tcp_verdict.blocks:
                # Every pod path gets this verdict.
                yield from undecided.gaps(name, tcp_verdict, "whether TCP between pods on different nodes passes FORWARD")
                continue
        for traffic in _forward_traffic(facts, node):
            path = traffic.path
            for packet, direction, verdict in ((traffic.outgoing, "to", traffic.outgoing_verdict),
                                               (traffic.incoming, "from", traffic.incoming_verdict)):
                if node.node.firewalld is not None:
                    from netdoctor.firewalld import evaluate_forward

                    zone_verdict = evaluate_forward(node.node.firewalld, packet)
                    if zone_verdict.blocks:
                        described = (f"TCP {packet.src} -> {packet.dst} ({direction} {path.peer}'s pods, in "
                                     f"{packet.in_interface}, out {packet.out_interface})")
                        yield Finding(
                            check="forward-policy-drop",
                            severity=Severity.ERROR,
                            nodes=(name,),
                            summary=f"{name}: {described} is {_past(zone_verdict.verdict)} by firewalld {zone_verdict.reason}",
                            evidence=(Evidence(name, "firewalld", zone_verdict.reason),),
                            details=make_details(
                                direction=direction, firewalld_zone=zone_verdict.zone,
                                firewalld_policy=zone_verdict.policy, verdict=zone_verdict.verdict, peer=path.peer,
                                source=packet.src, destination=packet.dst, in_interface=packet.in_interface,
                                out_interface=packet.out_interface,
                            ),
                        )
                        continue
                if verdict is None or not verdict.blocks:
                    yield from undecided.gaps(name, verdict, f"whether TCP {packet.src} -> {packet.dst} ({direction} "
                                              f"{path.peer}'s pods) passes FORWARD")
                    continue
                yield Finding(
                    check="forward-policy-drop",
                    severity=Severity.ERROR,
                    nodes=(name,),
                    summary=f"{name}: TCP {packet.src} -> {packet.dst} ({direction} {path.peer}'s pods, in "
                    f"{packet.in_interface}, out {packet.out_interface}) is {_past(verdict.verdict)} by {_decided_by(verdict)}",
                    evidence=(_verdict_evidence(name, verdict),),
                    details=make_details(
                        direction=direction, table="filter", chain=verdict.chain, verdict=verdict.verdict,
                        rule=verdict.rule.text if verdict.rule else None, policy=None if verdict.rule else verdict.verdict,
                        peer=path.peer, source=packet.src, destination=packet.dst, in_interface=packet.in_interface,
                        out_interface=packet.out_interface,
                    ),
                )


@record
class OverlayTraffic:
    """One kind of packet a peer sends to this node for the overlay: a UDP or TCP port, or an IP protocol."""

    label: str
    protocol: str
    dport: int | None
    #: Why the node needs it: ``flannel.1 (flannel VXLAN)``, ``OVS port gre1``, ...
    reason: str


#: Default ports: flannel's UDP backend, flannel's VXLAN backend (the Linux default VXLAN port), IANA VXLAN.
FLANNEL_UDP_PORT = 8285
FLANNEL_VXLAN_PORT = 8472
IANA_VXLAN_PORT = 4789
BGP_PORT = 179


def overlay_traffic(node: NodeFacts, backends: tuple[str, ...]) -> list[OverlayTraffic]:
    """Return the packets the node's overlay needs to receive from its peers, without duplicates."""
    found: dict[tuple[str, int | None], OverlayTraffic] = {}

    def add(protocol: str, dport: int | None, reason: str) -> None:
        if dport is not None:
            label = f"{protocol}/{dport}"
        else:
            label = f"IP protocol {PROTOCOL_NUMBERS.get(protocol, protocol)} ({protocol.upper()})"
        found.setdefault((protocol, dport), OverlayTraffic(label, protocol, dport, reason))

    interfaces = {interface.name: interface for interface in node.node.interfaces or ()}
    if "flannel-udp" in backends:
        add("udp", FLANNEL_UDP_PORT, "flannel0 (flannel UDP backend)")
    for name, interface in sorted(interfaces.items()):
        if name.startswith("flannel.") and "flannel-vxlan" in backends:
            port = interface.vxlan.port if interface.vxlan is not None and interface.vxlan.port else FLANNEL_VXLAN_PORT
            add("udp", port, f"{name} (flannel VXLAN)")
        elif name == "vxlan.calico":
            port = interface.vxlan.port if interface.vxlan is not None and interface.vxlan.port else IANA_VXLAN_PORT
            add("udp", port, "vxlan.calico (Calico VXLAN)")
    tunnel = interfaces.get("tunl0")
    if tunnel is not None and tunnel.is_up and any(address.family == 4 for address in tunnel.addresses):
        add("ipencap", None, "tunl0 (Calico IPIP)")
    # A full mesh gives each node a tunnel port per peer, so only a port with a new kind of packet
    # builds a label.
    for bridge in node.node.ovs or ():
        for ovs_port in bridge.ports:
            for ovs_interface in ovs_port.interfaces:
                if ovs_interface.type == "gre":
                    if ("gre", None) not in found:
                        add("gre", None, f"OVS port {ovs_interface.name}")
                elif ovs_interface.type == "vxlan":
                    port_text = _last_option(ovs_interface.options, "dst_port")
                    vxlan_port = IANA_VXLAN_PORT if port_text is None else _ovs_port(port_text)
                    if vxlan_port is None:
                        # The value gives no UDP port, so there is none to test.
                        continue
                    if ("udp", vxlan_port) not in found:
                        add("udp", vxlan_port, f"OVS port {ovs_interface.name}")
    if node.node.bgp or "calico" in backends and any(route.protocol == "bird" for route in _main_routes(node)):
        add("tcp", BGP_PORT, "BGP sessions")
    return [found[key] for key in sorted(found, key=lambda key: (key[0], key[1] or 0))]


def _ovs_port(text: str) -> int | None:
    """Return the UDP port an OVS ``dst_port`` option names, or None when it names none (0 or out of range).

    OVS 3.1 reads the option as C's ``atoi`` does: leading blanks, an optional
    sign, then ASCII digits up to the first other character.
    """
    digits = text.lstrip(" \t\n\r\f\v")
    if digits[:1] in ("+", "-"):
        if digits[0] == "-":
            return None
        digits = digits[1:]
    end = 0
    while end < len(digits) and digits[end] in "0123456789":
        end += 1
    digits = digits[:end].lstrip("0")
    if not digits or len(digits) > 5 or int(digits) > 65535:
        return None
    return int(digits)


def _last_option(options: tuple[tuple[str, str], ...], name: str) -> str | None:
    """Return the last value of an OVS interface option, the one ``dict(options)`` keeps."""
    found = None
    for key, value in options:
        if key == name:
            found = value
    return found


#: IP protocol numbers for messages.
PROTOCOL_NUMBERS = {"gre": 47, "ipencap": 4}


def _main_routes(node: NodeFacts) -> list[Route]:
    return list(node.node.routes.main()) if node.node.routes is not None else []


def _overlay_peer_address(facts: ClusterFacts, node: NodeFacts) -> tuple[str, str, str] | None:
    """Return ``(peer address, node address, underlay interface)`` for packets a peer sends over the underlay."""
    if not node.underlay_subnets:
        return None
    remotes = (
        _last_option(ovs_interface.options, "remote_ip")
        for bridge in node.node.ovs or () for port in bridge.ports for ovs_interface in port.interfaces
    )
    # Generators: the first peer on the node's underlay subnet usually ends the search.
    peers = chain((address for address in remotes if address), (
        peer.underlay_subnets[0][1].partition("/")[0] for peer in facts.iter_peers(node.name) if peer.underlay_subnets
    ))
    first = None
    for peer_address in peers:
        first = first or peer_address
        value = parse_ip(peer_address)[1] if _is_ipv4(peer_address) else None
        for prefix, cidr, device in node.underlay_subnets:
            if value is not None and prefix_contains(prefix, (prefix[0], value, 32)):
                return peer_address, cidr.partition("/")[0], device
    _, cidr, device = node.underlay_subnets[0]
    return (first or OUTSIDE_ADDRESS), cidr.partition("/")[0], device


def _is_ipv4(text: str) -> bool:
    try:
        return parse_ip(text)[0] == 4
    except AddressError:
        return False


@check("overlay-port-blocked", title="Overlay traffic blocked on arrival", severity=Severity.ERROR,
       backends=("flannel-udp", "flannel-vxlan", "ovs", "calico", "direct-routing"))
def overlay_port_blocked(snapshot: ClusterSnapshot) -> Iterator[Finding | Gap]:
    """The node's packet filter drops or rejects the encapsulated traffic its peers send it.

    What it checks:
        For each overlay the node runs, the packet a peer sends to it over the
        underlay: UDP 8285 for flannel's UDP backend, the flannel.1 VXLAN port
        (8472 unless the device shows another), UDP 4789 for Calico VXLAN and
        OVS VXLAN ports, IP protocol 47 for OVS GRE ports, IP protocol 4 for
        Calico IPIP (tunl0) and TCP 179 where BGP runs. The packet goes from a
        peer's underlay address (an OVS tunnel's ``remote_ip`` first) to the
        node's underlay address on the same subnet, in on that interface, in
        state NEW. It is walked through the iptables INPUT chain and, when the
        node has firewalld data, through the firewalld zone that applies to the
        underlay interface. A DROP or REJECT is reported with what decided it.
    Why it matters:
        Encapsulated packets are addressed to the node itself, so INPUT decides
        them before the tunnel device sees them. A CentOS/RHEL default INPUT
        chain that ends in ``-j REJECT --reject-with icmp-host-prohibited``, or
        a firewalld zone without the overlay's port, silently breaks every
        pod-to-pod path between nodes while node-to-node ping and SSH work.
    Known problems:
        A rule with a match module the evaluator does not read (``-m set``,
        ``-m recent``, ...) stops the walk, unless the rule only logs or
        counts. The node then gets a gap naming the rule instead of a finding. Filtering in raw nftables tables that
        neither iptables-save nor firewalld shows is not read. One peer address
        per node is evaluated, so a rule that allows only some peers is judged
        by that peer.
    Example:
        ``node1: udp/8472 (flannel.1 (flannel VXLAN)) from 10.0.1.22 to
        10.0.1.21 in eth0 is REJECT by '-A INPUT -j REJECT --reject-with
        icmp-host-prohibited'``.
    Fix safety:
        Inserting an ACCEPT for the overlay's port or protocol from the node
        subnet before the reject is safe; it opens only that traffic and only
        from the peers' subnet.
    """
    facts = cluster_facts(snapshot)
    backends = detect_backends(snapshot)
    undecided = _Undecided("overlay-port-blocked")
    for name, node in sorted(facts.nodes.items()):
        firewalld = node.node.firewalld
        iptables = _iptables(node, "filter")
        if (iptables is None and firewalld is None) or _input_never_blocks(node):
            continue
        traffic = overlay_traffic(node, backends.get(name, ()))
        endpoints = _overlay_peer_address(facts, node)
        if not traffic or endpoints is None:
            continue
        source, address, device = endpoints
        local = _local_addresses(node)
        for item in traffic:
            packet = Packet(item.protocol, source, address, in_interface=device, sport=40000 if item.dport else None,
                            dport=item.dport, local_addresses=local)
            if iptables is not None:
                verdict = iptables.evaluate("INPUT", packet)
                yield from undecided.gaps(name, verdict, f"whether {item.label} ({item.reason}) from {source} to {address} "
                                          "passes INPUT")
                if verdict.blocks:
                    described = f"{item.label} ({item.reason}) from {source} to {address} in {device}"
                    yield Finding(
                        check="overlay-port-blocked",
                        severity=Severity.ERROR,
                        nodes=(name,),
                        summary=f"{name}: {described} is {_past(verdict.verdict)} by {_decided_by(verdict)}",
                        evidence=(_verdict_evidence(name, verdict),),
                        details=make_details(
                            table="filter", chain=verdict.chain, verdict=verdict.verdict,
                            rule=verdict.rule.text if verdict.rule else None,
                            policy=None if verdict.rule else verdict.verdict, protocol=item.protocol, port=item.dport,
                            reason=item.reason, peer_underlay=source, destination=address, in_interface=device,
                        ),
                    )
                    continue
            if firewalld is not None:
                from netdoctor.firewalld import evaluate_input

                zone_verdict = evaluate_input(firewalld, packet)
                if zone_verdict.blocks:
                    described = f"{item.label} ({item.reason}) from {source} to {address} in {device}"
                    yield Finding(
                        check="overlay-port-blocked",
                        severity=Severity.ERROR,
                        nodes=(name,),
                        summary=f"{name}: {described} is {_past(zone_verdict.verdict)} by firewalld {zone_verdict.reason}",
                        evidence=(Evidence(name, "firewalld", zone_verdict.reason),),
                        details=make_details(
                            firewalld_zone=zone_verdict.zone, firewalld_policy=zone_verdict.policy,
                            verdict=zone_verdict.verdict, protocol=item.protocol, port=item.dport, reason=item.reason,
                            peer_underlay=source, destination=address, in_interface=device,
                        ),
                    )


@check("pod-traffic-masqueraded", title="Pod-to-pod traffic masqueraded", severity=Severity.WARNING, backends=("any",))
def pod_traffic_masqueraded(snapshot: ClusterSnapshot) -> Iterator[Finding | Gap]:
    """A MASQUERADE or SNAT rule rewrites the source of pod traffic bound for another node's pods.

    What it checks:
        For each path from one of the node's pods to a peer's pods (out by the
        device of the node's route to that peer's pod subnet), the nat table's
        POSTROUTING chain is walked for a new TCP packet from a local pod
        address to a peer pod address. A ``MASQUERADE`` or ``SNAT`` verdict is
        reported with the rule. When the node has firewalld data, a zone with
        ``masquerade: yes`` that applies to the outgoing device is reported too.
    Why it matters:
        Pods must see each other's real addresses: network policies, service
        endpoints and logs depend on it. Docker's own rule ``-s <bridge
        subnet> ! -o docker0 -j MASQUERADE`` matches every packet that leaves
        docker0 for flannel.1 or tunl0 unless an earlier ``RETURN`` (flannel's
        ``--ip-masq`` rules) exempts the pod network, so the peer sees the
        node's address instead of the pod's.
    Known problems:
        One peer per outgoing device is evaluated. A rule with a match module
        the evaluator does not read stops the walk, unless the rule only logs
        or counts. The node then gets a gap naming the rule instead of a
        finding. Paths
        that stay on the pod bridge (OVS's br0 inside docker0) never leave by
        another device and are not evaluated.
    Example:
        ``node1: TCP 198.51.100.2 -> node2's pod 198.51.100.66 (out flannel.1)
        is MASQUERADE by '-A POSTROUTING -s 198.51.100.0/26 ! -o docker0 -j
        MASQUERADE'``.
    Fix safety:
        Inserting ``-s POD_NETWORK -d POD_NETWORK -j RETURN`` before the
        masquerade rule is safe. Removing Docker's rule also stops masquerading
        for traffic to the outside and needs ``--ip-masq`` on flanneld instead.
    """
    facts = cluster_facts(snapshot)
    undecided = _Undecided("pod-traffic-masqueraded")
    for name, node in sorted(facts.nodes.items()):
        firewalld = node.node.firewalld
        iptables = _iptables(node, "nat")
        if iptables is None and firewalld is None:
            continue
        if firewalld is None and iptables is not None:
            shared = _path_nat_verdict(facts, node, iptables)
            if shared is not None and shared.verdict not in ("MASQUERADE", "SNAT"):
                # Every pod path gets this verdict.
                yield from undecided.gaps(name, shared, "whether nat POSTROUTING translates TCP between pods on different nodes")
                continue
        local = _local_addresses(node)
        for path in pod_paths(facts, node):
            packet = Packet("tcp", path.local_pod, path.peer_pod, None, path.peer_device, sport=40000, dport=80,
                            local_addresses=local)
            described = f"TCP {path.local_pod} -> {path.peer}'s pod {path.peer_pod} (out {path.peer_device})"
            if iptables is not None:
                verdict = iptables.evaluate("POSTROUTING", packet, table="nat")
                yield from undecided.gaps(name, verdict, f"whether nat POSTROUTING translates {described}")
                if verdict.verdict in ("MASQUERADE", "SNAT"):
                    yield Finding(
                        check="pod-traffic-masqueraded",
                        severity=Severity.WARNING,
                        nodes=(name,),
                        summary=f"{name}: {described} is {_past(verdict.verdict)} by {_decided_by(verdict)}",
                        evidence=(Evidence(name, "iptables", f"-A {verdict.rule.text}" if verdict.rule else "",
                                           verdict.rule.line if verdict.rule else None),),
                        details=make_details(
                            table="nat", chain=verdict.chain, verdict=verdict.verdict,
                            rule=verdict.rule.text if verdict.rule else None, peer=path.peer,
                            source=path.local_pod, destination=path.peer_pod, out_interface=path.peer_device,
                        ),
                    )
                    continue
            if firewalld is not None:
                from netdoctor.firewalld import masquerading_zone

                zone = masquerading_zone(firewalld, path.peer_device)
                if zone is not None:
                    yield Finding(
                        check="pod-traffic-masqueraded",
                        severity=Severity.WARNING,
                        nodes=(name,),
                        summary=f"{name}: {described} is masqueraded by firewalld zone {zone.name} "
                        f"(masquerade: yes), which applies to {path.peer_device}",
                        evidence=(Evidence(name, "firewalld", f"{zone.name}: masquerade: yes"),),
                        details=make_details(
                            firewalld_zone=zone.name, peer=path.peer, source=path.local_pod,
                            destination=path.peer_pod, out_interface=path.peer_device,
                        ),
                    )


def _path_nat_verdict(facts: ClusterFacts, node: NodeFacts, iptables: CompiledRuleset) -> Verdict | None:
    """Return the nat POSTROUTING verdict of the packets of every pod path, or None when it may depend on the path.

    The packets differ only in the peer's pod address and the outgoing
    device. When no rule tests the device, and every pod subnet of the cluster
    lies inside each destination prefix the rules test or outside it, every
    peer's pod address takes the same branches, so one packet gives the verdict of all.
    """
    own = node.pod_subnets()
    if not own or iptables.reads_any("POSTROUTING", frozenset({"out_interface"}), "nat"):
        return None
    prefixes = iptables.tested_prefixes("POSTROUTING", "dst", "nat")
    if prefixes is None:
        return None
    on_one_side = _pod_subnets_on_one_side(facts)
    if not all(on_one_side(prefix) for prefix in prefixes):
        return None
    # The packet that pod_traffic_masqueraded builds, with any cluster pod address and a device no rule tests.
    peer_pod = _host_in(_all_pod_subnets(facts)[0])
    packet = Packet("tcp", _host_in(own[0].prefix), peer_pod, None, "", sport=40000, dport=80,
                    local_addresses=_local_addresses(node))
    return iptables.evaluate("POSTROUTING", packet, table="nat")


def _all_pod_subnets(facts: ClusterFacts) -> list[Prefix]:
    """Return the prefix of every pod subnet of every node, without duplicates, in node order."""
    found: list[Prefix] | None = facts.memo.get("all pod subnets")
    if found is None:
        prefixes = (subnet.prefix for _, node in sorted(facts.nodes.items()) for subnet in node.pod_subnets())
        found = facts.memo["all pod subnets"] = list(dict.fromkeys(prefixes))
    return found


def _pod_subnets_on_one_side(facts: ClusterFacts) -> Callable[[str], bool]:
    """Return a test of whether every pod subnet lies inside a rule's prefix, or every one outside it.

    A prefix that does not parse counts as one side too, because its test gives one result for every packet.
    """
    results: dict[str, bool] = facts.memo.setdefault("pod subnets on one side", {})

    def on_one_side(text: str) -> bool:
        result = results.get(text)
        if result is None:
            try:
                prefix = make_prefix(text)
            except AddressError:
                # A mask that is no prefix length can split the pod subnets in any way.
                result = masked_address(text) is None
            else:
                subnets = _all_pod_subnets(facts)
                inside = sum(1 for subnet in subnets if prefix_contains(prefix, subnet))
                result = inside == len(subnets) or (
                    inside == 0 and not any(prefix_contains(subnet, prefix) for subnet in subnets)
                )
            results[text] = result
        return result

    return on_one_side
