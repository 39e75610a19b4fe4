"""Deterministic synthetic clusters for benchmarks and scale tests.

:func:`generate` builds a :class:`ClusterSnapshot` of N nodes of one backend
with consistent addresses, routes, tunnels, neighbours, FDB entries, etcd
leases, sysctls and iptables rules, as a healthy cluster of that design would
show them. Optional faults break one node (or one pair) in a known way, so a
run over the result must report exactly those checks.

The same backend, size, faults and seed always give the same snapshot, equal
byte for byte once dumped. The seed chooses which node or pair each fault hits,
and the MAC addresses.

Addressing, for node ``i`` (0-based, up to 65,000 nodes):

* underlay: ``10.0.0.0/16`` on ``eth0``, node ``i`` at ``10.0.(i // 250).(i % 250 + 1)``,
  the gateway at ``10.0.255.254``;
* pods: ``10.128.0.0/9``. Flannel and direct routing give each node a /24
  (``10.(128 + i // 256).(i % 256).0/24``); Calico gives each node a /26 block.

Calico clusters larger than a few hundred nodes peer with route reflectors
rather than a full BGP mesh, so here every node has two BGP sessions, to nodes
0 and 1, and those two have one session to every node.

With ``services``, every node also has the iptables rules that kube-proxy
writes for that many ClusterIP services in ``10.96.0.0/12``, on port 80. Each
service has one pod endpoint, on the nodes in turn, and five nat rules. Every
tenth service has no endpoint instead, and one filter rule that rejects its
traffic.

With ``counters``, each node's rules and built-in chains get packet and byte
counters of their own, as ``iptables-save -c`` on a real node gives them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from netdoctor.capture.iptables import parse_iptables_save
from netdoctor.model import ClusterSnapshot
from netdoctor.model.cluster import EtcdData
from netdoctor.model.node import (
    Address,
    BgpSession,
    FlannelSubnetEnv,
    Interface,
    IptablesRuleset,
    NodeSnapshot,
    OvsBridge,
    OvsInterface,
    OvsPort,
    Sysctls,
    TunnelInfo,
    VxlanInfo,
)
from netdoctor.model.record import replace
from netdoctor.model.routes import (
    NTF_SELF,
    NUD_STATES,
    ROUTE_TABLES,
    ROUTE_TYPES,
    RTNH_F_ONLINK,
    FdbEntry,
    FdbTable,
    Neighbour,
    NeighbourTable,
    Route,
    RouteTable,
)

#: Backends the generator builds.
BACKENDS = ("calico", "direct-routing", "flannel-vxlan", "ovs-vxlan")

#: Faults the generator injects, with the checks each one makes fail and the backends it applies to.
#: A stale blackhole replaces the peer's route, so the peer's block also has no route.
FAULTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "route-missing": (("route-missing",), ("calico", "direct-routing", "flannel-vxlan")),
    "stale-blackhole": (("blackhole-route", "route-missing"), ("calico",)),
    "ip-forward-off": (("ip-forward-disabled",), BACKENDS),
    "vtep-mismatch": (("vtep-mismatch",), ("flannel-vxlan",)),
    "tunnel-missing": (("tunnel-mesh-incomplete",), ("ovs-vxlan",)),
}

#: The largest cluster the addressing plan supports.
MAX_NODES = 65_000
#: The maximum number of services: the addresses that this generator numbers in ``10.96.0.0/12``.
MAX_SERVICES = 250 * 4096

COLLECTED_AT = "2026-01-15T09:30:00+00:00"
MAIN = ROUTE_TABLES["main"]
LOCAL = ROUTE_TABLES["local"]
UNICAST = ROUTE_TYPES["unicast"]
BLACKHOLE = ROUTE_TYPES["blackhole"]
LOCAL_TYPE = ROUTE_TYPES["local"]
SCOPE_LINK = 253
SCOPE_HOST = 254
PERMANENT = NUD_STATES["PERMANENT"]
FLAGS = ("BROADCAST", "MULTICAST", "UP", "LOWER_UP")

LAN_NETWORK = 10 << 24
LAN_GATEWAY = (10 << 24) | (255 << 8) | 254
POD_NETWORK = (10 << 24) | (128 << 16)
FLANNEL_CONFIG = '{"Network": "10.128.0.0/9", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}'
FLANNEL_PREFIX = "/coreos.com/network"

#: The chains and rules of the filter and nat tables on every node, without kube-proxy's service rules.
FILTER_CHAINS = (":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":KUBE-FORWARD - [0:0]")
FILTER_RULES = (
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
)
NAT_CHAINS = (":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]")
NAT_RULES = (
    "-A POSTROUTING -s 10.128.0.0/9 -d 10.128.0.0/9 -j RETURN",
    "-A POSTROUTING -s 10.128.0.0/9 ! -d 224.0.0.0/4 -j MASQUERADE",
)


def _iptables_text(filter_lines: Iterable[str], nat_lines: Iterable[str]) -> str:
    return "".join(line + "\n" for line in ("*filter", *filter_lines, "COMMIT", "*nat", *nat_lines, "COMMIT"))


#: The ``iptables-save`` output of every node of a cluster without services.
IPTABLES = _iptables_text(FILTER_CHAINS + FILTER_RULES, NAT_CHAINS + NAT_RULES)

SYSCTLS = (
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.eth0.rp_filter", "0"),
    ("net.ipv4.ip_forward", "1"),
)


@dataclass(frozen=True)
class Plan:
    """A generation request: the backend, the size, and the node or pair each fault hits."""

    backend: str
    nodes: int
    #: Fault name -> (node index, peer index); the peer is -1 for a fault of one node.
    faults: dict[str, tuple[int, int]]
    seed: int
    pods_per_node: int = 3
    #: kube-proxy ClusterIP services on every node.
    services: int = 0
    #: Whether each node's rules and built-in chains have counters of their own.
    counters: bool = False


def node_name(index: int) -> str:
    """Return the name of node ``index``."""
    return f"node{index:05d}"


def lan_address(index: int) -> int:
    """Return node ``index``'s underlay address as an integer."""
    return LAN_NETWORK | (index // 250) << 8 | (index % 250 + 1)


def _ip(value: int) -> str:
    return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def _subnet24(index: int) -> int:
    return POD_NETWORK + (index << 8)


def _block26(index: int) -> int:
    return POD_NETWORK + (index << 6)


def _mac(rng: random.Random) -> int:
    # Locally administered, unicast.
    return (0x02 << 40) | rng.getrandbits(40)


def plan(backend: str, nodes: int, faults: Iterable[str] = (), seed: int = 1, services: int = 0,
         counters: bool = False) -> Plan:
    """Validate the request and choose, from ``seed``, the node or pair each fault hits."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if not 2 <= nodes <= MAX_NODES:
        raise ValueError(f"node count {nodes} is out of range; choose 2 to {MAX_NODES}")
    if not 0 <= services <= MAX_SERVICES:
        raise ValueError(f"service count {services} is out of range; choose 0 to {MAX_SERVICES}")
    requested = list(dict.fromkeys(faults))  # a repeated fault is injected once
    for fault in requested:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        if backend not in FAULTS[fault][1]:
            raise ValueError(f"fault {fault!r} does not apply to {backend}; it applies to {', '.join(FAULTS[fault][1])}")
    # Each fault gets its own node. A third node keeps a node with one missing tunnel
    # or route connected to the rest, so each fault reports only its own checks.
    needed = max(3, len(requested))
    if requested and nodes < needed:
        raise ValueError(f"{len(requested)} fault(s) need at least {needed} nodes, not {nodes}")
    # Nodes 0 and 1 are Calico's route reflectors; faults land on other nodes when there are enough.
    low = 2 if nodes - 2 >= needed else 0
    rng = random.Random(f"{seed}:faults")
    targets = rng.sample(range(low, nodes), len(requested))
    chosen: dict[str, tuple[int, int]] = {}
    for fault, node in zip(requested, targets):
        peer = rng.randrange(low, nodes - 1)
        peer += peer >= node
        chosen[fault] = (node, peer)
    return Plan(backend, nodes, chosen, seed, services=services, counters=counters)


def generate(backend: str, nodes: int, faults: Iterable[str] = (), seed: int = 1, services: int = 0,
             counters: bool = False) -> ClusterSnapshot:
    """Build a synthetic cluster of ``nodes`` nodes running ``backend``, with ``faults`` injected.

    ``services`` adds kube-proxy's rules for that many ClusterIP services to
    every node, and ``counters`` gives each node's rules and built-in chains
    counters of their own. Raises ValueError naming the bad backend, size,
    fault or service count.
    """
    chosen = plan(backend, nodes, faults, seed, services, counters)
    macs = _vtep_macs(chosen)
    builder: Callable[[Plan, int, list[int]], NodeSnapshot] = _BUILDERS[backend]
    snapshots = tuple(builder(chosen, index, macs) for index in range(nodes))
    etcd = _flannel_etcd(chosen, macs) if backend == "flannel-vxlan" else None
    return ClusterSnapshot(
        nodes=snapshots,
        etcd=etcd,
        source=f"synthetic {backend}, {nodes} nodes, seed {seed}",
        collected_at=COLLECTED_AT,
    )


def expected_checks(faults: Iterable[str]) -> set[str]:
    """Return the check ids that a run over a generated cluster with ``faults`` must report."""
    return {check for fault in faults for check in FAULTS[fault][0]}


def _vtep_macs(chosen: Plan) -> list[int]:
    rng = random.Random(f"{chosen.seed}:macs")
    return [_mac(rng) for _ in range(chosen.nodes)]


def _fault_at(chosen: Plan, fault: str, index: int) -> int | None:
    """Return the peer index of ``fault`` when it hits node ``index``, else None."""
    hit = chosen.faults.get(fault)
    return hit[1] if hit is not None and hit[0] == index else None


def _sysctls(chosen: Plan, index: int) -> Sysctls:
    if _fault_at(chosen, "ip-forward-off", index) is None:
        return Sysctls(SYSCTLS)
    return Sysctls(tuple((key, "0" if key == "net.ipv4.ip_forward" else value) for key, value in SYSCTLS))


_RULESETS: dict[tuple[str, int, int], IptablesRuleset] = {}


def _iptables(chosen: Plan, index: int) -> IptablesRuleset:
    # One parsed ruleset serves every node: snapshots are immutable.
    key = (chosen.backend, chosen.nodes, chosen.services)
    if key not in _RULESETS:
        _RULESETS.clear()
        _RULESETS[key] = parse_iptables_save(iptables_save(chosen), "synthetic iptables-save")
    ruleset = _RULESETS[key]
    if not chosen.counters:
        return ruleset
    rng = random.Random(f"{chosen.seed}:counters:{index}")
    tables = []
    for table in ruleset.tables:
        # Most rules of a real node never match, and the others have counted up to a million packets.
        packets = tuple(rng.getrandbits(20) if rng.random() < 0.2 else 0 for _ in table.rules)
        chain_packets = [rng.getrandbits(24) for _ in table.chains]
        # 84 bytes, the size of an ICMP echo request, up to 1,500, the usual MTU.
        chains = tuple(chain if chain.policy is None else replace(chain, packets=count, bytes=count * rng.randrange(84, 1501))
                       for chain, count in zip(table.chains, chain_packets))
        tables.append(replace(table, chains=chains, rule_packets=packets,
                              rule_bytes=tuple(count * 84 for count in packets)))
    return replace(ruleset, tables=tuple(tables))


def iptables_save(chosen: Plan) -> str:
    """Return the ``iptables-save`` output of every node of ``chosen``: :data:`IPTABLES` and kube-proxy's rules."""
    if not chosen.services:
        return IPTABLES
    filter_chains = [*FILTER_CHAINS, ":KUBE-SERVICES - [0:0]"]
    portals = '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
    filter_rules = [*FILTER_RULES, f"-A FORWARD -m conntrack --ctstate NEW {portals}"]
    nat_chains = [*NAT_CHAINS, ":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]"]
    # kube-proxy puts its POSTROUTING jump first: it masquerades only packets that KUBE-MARK-MASQ marked.
    nat_rules = ['-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
                 *NAT_RULES,
                 f"-A PREROUTING {portals}",
                 f"-A OUTPUT {portals}",
                 "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
                 "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
                 "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
                 ('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
                  "-j MASQUERADE --random-fully")]
    first_block = _block26 if chosen.backend == "calico" else _subnet24
    for number in range(chosen.services):
        address = f"10.{96 + number // 250 // 256}.{number // 250 % 256}.{number % 250 + 1}"
        name = f"default/service-{number}:http"
        if number % 10 == 9:
            filter_rules.append(f'-A KUBE-SERVICES -d {address}/32 -p tcp -m comment --comment "{name} has no endpoints" '
                                "-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable")
            continue
        node = number % chosen.nodes
        endpoint = _ip(first_block(node) + 2 + number // chosen.nodes % chosen.pods_per_node)
        service, backend = f"KUBE-SVC-{number:016X}", f"KUBE-SEP-{number:016X}"
        nat_chains += [f":{service} - [0:0]", f":{backend} - [0:0]"]
        cluster_ip = f'-d {address}/32 -p tcp -m comment --comment "{name} cluster IP" -m tcp --dport 80'
        nat_rules += [
            f"-A KUBE-SERVICES {cluster_ip} -j {service}",
            f"-A {service} ! -s 10.128.0.0/9 {cluster_ip} -j KUBE-MARK-MASQ",
            f'-A {service} -m comment --comment "{name} -> {endpoint}:8080" -j {backend}',
            f'-A {backend} -s {endpoint}/32 -m comment --comment "{name}" -j KUBE-MARK-MASQ',
            f'-A {backend} -p tcp -m comment --comment "{name}" -m tcp -j DNAT --to-destination {endpoint}:8080',
        ]
    return _iptables_text(filter_chains + filter_rules, nat_chains + nat_rules)


def _eth0(index: int, mac: int, mtu: int = 1500) -> Interface:
    lan = _ip(lan_address(index))
    return Interface(
        "eth0", 2, "ethernet", "UP", mtu, flags=FLAGS, mac=_mac_text(mac ^ 1),
        addresses=(Address(4, lan, 16, broadcast="10.0.255.255", label="eth0"),),
    )


def _loopback() -> Interface:
    return Interface("lo", 1, "loopback", "UNKNOWN", 65536, flags=("LOOPBACK", "UP", "LOWER_UP"),
                     addresses=(Address(4, "127.0.0.1", 8, scope="host", label="lo"),))


def _mac_text(value: int) -> str:
    return ":".join(f"{value >> shift & 255:02x}" for shift in range(40, -8, -8))


def _base_routes(index: int) -> list[tuple[object, ...]]:
    """Return the default, underlay and local-table routes every node has, as Route field tuples."""
    lan = lan_address(index)
    return [
        (4, MAIN, 0, 0, UNICAST, "static", 0, 100, LAN_GATEWAY, "eth0", 0, 0, 0, 0, ()),
        (4, MAIN, LAN_NETWORK, 16, UNICAST, "kernel", SCOPE_LINK, 100, 0, "eth0", lan, 0, 0, 0, ()),
        (4, LOCAL, lan, 32, LOCAL_TYPE, "kernel", SCOPE_HOST, 0, 0, "eth0", lan, 0, 0, 0, ()),
        (4, LOCAL, 127 << 24, 8, LOCAL_TYPE, "kernel", SCOPE_HOST, 0, 0, "lo", 127 << 24 | 1, 0, 0, 0, ()),
    ]


def _route_table(rows: list[tuple[object, ...]]) -> RouteTable:
    table: RouteTable = RouteTable.from_rows(Route(*row) for row in rows)  # type: ignore[arg-type]
    return table


def _pod_veths(chosen: Plan, index: int, prefix: str, mtu: int, master: str | None) -> list[Interface]:
    return [
        Interface(f"{prefix}{index:05x}{pod:02x}", 10 + pod, "veth", "UP", mtu, flags=FLAGS,
                  mac="ee:ee:ee:ee:ee:ee", master=master, link_index=2, link_netns=f"pod{pod}")
        for pod in range(chosen.pods_per_node)
    ]


def _calico(chosen: Plan, index: int, macs: list[int]) -> NodeSnapshot:
    block = _block26(index)
    tunnel_address = _ip(block)
    interfaces = [
        _loopback(),
        _eth0(index, macs[index]),
        Interface("tunl0", 3, "ipip", "UNKNOWN", 1480, flags=("NOARP", "UP", "LOWER_UP"),
                  addresses=(Address(4, tunnel_address, 32, label="tunl0"),), tunnel=TunnelInfo()),
        *_pod_veths(chosen, index, "cali", 1480, None),
    ]

    rows = _base_routes(index)
    rows.append((4, MAIN, block, 26, BLACKHOLE, "bird", 0, 0, 0, "", 0, 0, 0, 0, ()))
    for pod in range(chosen.pods_per_node):
        rows.append((4, MAIN, block + 2 + pod, 32, UNICAST, "boot", SCOPE_LINK, 0, 0, interfaces[3 + pod].name, 0, 0, 0, 0, ()))
    missing = _fault_at(chosen, "route-missing", index)
    stale = _fault_at(chosen, "stale-blackhole", index)
    for peer in range(chosen.nodes):
        if peer == index or peer == missing:
            continue
        if peer == stale:
            rows.append((4, MAIN, _block26(peer), 26, BLACKHOLE, "bird", 0, 0, 0, "", 0, 0, 0, 0, ()))
            continue
        rows.append((4, MAIN, _block26(peer), 26, UNICAST, "bird", 0, 0, lan_address(peer), "tunl0", 0, RTNH_F_ONLINK, 0, 0, ()))

    # Nodes 0 and 1 are the route reflectors: they peer with every node, the others with them.
    if index in (0, 1):
        peers: Iterable[int] = (peer for peer in range(chosen.nodes) if peer != index)
    else:
        peers = (0, 1)
    sessions = tuple(
        BgpSession("bird", f"Mesh_{_ip(lan_address(peer)).replace('.', '_')}", "Established",
                   neighbor=_ip(lan_address(peer)), since="2026-01-15", info="Established")
        for peer in peers
    )
    return NodeSnapshot(
        node_name(index), interfaces=tuple(interfaces), routes=_route_table(rows), iptables=_iptables(chosen, index),
        sysctls=_sysctls(chosen, index), bgp=sessions,
    )


def _direct(chosen: Plan, index: int, macs: list[int]) -> NodeSnapshot:
    subnet = _subnet24(index)
    interfaces = [
        _loopback(),
        _eth0(index, macs[index]),
        Interface("docker0", 3, "bridge", "UP", 1500, flags=FLAGS, mac=_mac_text(macs[index] ^ 2),
                  addresses=(Address(4, _ip(subnet + 1), 24, label="docker0"),)),
        *_pod_veths(chosen, index, "veth", 1500, "docker0"),
    ]
    rows = _base_routes(index)
    rows.append((4, MAIN, subnet, 24, UNICAST, "kernel", SCOPE_LINK, 0, 0, "docker0", subnet + 1, 0, 0, 0, ()))
    missing = _fault_at(chosen, "route-missing", index)
    for peer in range(chosen.nodes):
        if peer != index and peer != missing:
            rows.append((4, MAIN, _subnet24(peer), 24, UNICAST, "static", 0, 0, lan_address(peer), "eth0", 0, 0, 0, 0, ()))
    return NodeSnapshot(
        node_name(index), interfaces=tuple(interfaces), routes=_route_table(rows), iptables=_iptables(chosen, index),
        sysctls=_sysctls(chosen, index),
    )


def _flannel(chosen: Plan, index: int, macs: list[int]) -> NodeSnapshot:
    subnet = _subnet24(index)
    lan = lan_address(index)
    interfaces = [
        _loopback(),
        _eth0(index, macs[index]),
        Interface("flannel.1", 3, "vxlan", "UNKNOWN", 1450, flags=FLAGS, mac=_mac_text(macs[index]),
                  addresses=(Address(4, _ip(subnet), 32, label="flannel.1"),),
                  vxlan=VxlanInfo(vni=1, local=_ip(lan), port=8472, dev="eth0", learning=False)),
        Interface("cni0", 4, "bridge", "UP", 1450, flags=FLAGS, mac=_mac_text(macs[index] ^ 2),
                  addresses=(Address(4, _ip(subnet + 1), 24, label="cni0"),)),
        *_pod_veths(chosen, index, "veth", 1450, "cni0"),
    ]

    rows = _base_routes(index)
    rows.append((4, MAIN, subnet, 24, UNICAST, "kernel", SCOPE_LINK, 0, 0, "cni0", subnet + 1, 0, 0, 0, ()))
    neighbours = []
    fdb = []
    missing = _fault_at(chosen, "route-missing", index)
    wrong_mac = _fault_at(chosen, "vtep-mismatch", index)
    for peer in range(chosen.nodes):
        if peer == index:
            continue
        peer_subnet = _subnet24(peer)
        if peer != missing:
            rows.append((4, MAIN, peer_subnet, 24, UNICAST, "boot", 0, 0, peer_subnet, "flannel.1", 0, RTNH_F_ONLINK, 0, 0, ()))
        mac = macs[peer] ^ 0x10 if peer == wrong_mac else macs[peer]
        neighbours.append(Neighbour(4, peer_subnet, "flannel.1", mac, PERMANENT, 0))
        fdb.append(FdbEntry(mac, "flannel.1", "", 4, lan_address(peer), 0, 0, 0, PERMANENT, NTF_SELF))

    env = FlannelSubnetEnv(network="10.128.0.0/9", subnet=f"{_ip(subnet + 1)}/24", mtu=1450, ipmasq=True,
                           values=(("FLANNEL_NETWORK", "10.128.0.0/9"), ("FLANNEL_SUBNET", f"{_ip(subnet + 1)}/24"),
                                   ("FLANNEL_MTU", "1450"), ("FLANNEL_IPMASQ", "true")))
    return NodeSnapshot(
        node_name(index), interfaces=tuple(interfaces), routes=_route_table(rows),
        neighbours=NeighbourTable.from_rows(neighbours), fdb=FdbTable.from_rows(fdb), iptables=_iptables(chosen, index),
        sysctls=_sysctls(chosen, index), flannel_env=env,
    )


def _flannel_etcd(chosen: Plan, macs: list[int]) -> EtcdData:
    keys = [(f"{FLANNEL_PREFIX}/config", FLANNEL_CONFIG)]
    for index in range(chosen.nodes):
        subnet = _subnet24(index)
        lease = (
            f'{{"PublicIP":"{_ip(lan_address(index))}","BackendType":"vxlan",'
            f'"BackendData":{{"VtepMAC":"{_mac_text(macs[index])}"}}}}'
        )
        keys.append((f"{FLANNEL_PREFIX}/subnets/{_ip(subnet)}-24", lease))
    keys.sort()
    return EtcdData(keys=tuple(keys), origin="synthetic etcd v3")


def _ovs(chosen: Plan, index: int, macs: list[int]) -> NodeSnapshot:
    subnet = _subnet24(index)
    interfaces = [
        _loopback(),
        _eth0(index, macs[index]),
        Interface("ovs-system", 3, "openvswitch", "DOWN", 1500, flags=("BROADCAST", "MULTICAST")),
        Interface("br0", 4, "openvswitch", "UNKNOWN", 1450, flags=FLAGS, mac=_mac_text(macs[index] ^ 4),
                  master="docker0"),
        Interface("docker0", 5, "bridge", "UP", 1450, flags=FLAGS, mac=_mac_text(macs[index] ^ 2),
                  addresses=(Address(4, _ip(subnet + 1), 24, label="docker0"),)),
        *_pod_veths(chosen, index, "veth", 1450, "docker0"),
    ]
    rows = _base_routes(index)
    rows.append((4, MAIN, subnet, 24, UNICAST, "kernel", SCOPE_LINK, 0, 0, "docker0", subnet + 1, 0, 0, 0, ()))
    rows.append((4, MAIN, POD_NETWORK, 9, UNICAST, "static", 0, 0, 0, "docker0", 0, 0, 0, 0, ()))
    missing = _fault_at(chosen, "tunnel-missing", index)
    ports = [OvsPort("br0", (OvsInterface("br0", "internal"),))]
    for peer in range(chosen.nodes):
        if peer == index or peer == missing:
            continue
        name = f"vxlan{peer}"
        options = (("key", "flow"), ("remote_ip", _ip(lan_address(peer))))
        ports.append(OvsPort(name, (OvsInterface(name, "vxlan", options),)))
    return NodeSnapshot(
        node_name(index), interfaces=tuple(interfaces), routes=_route_table(rows), iptables=_iptables(chosen, index),
        sysctls=_sysctls(chosen, index), ovs=(OvsBridge("br0", tuple(ports)),),
    )


_BUILDERS: dict[str, Callable[[Plan, int, list[int]], NodeSnapshot]] = {
    "calico": _calico,
    "direct-routing": _direct,
    "flannel-vxlan": _flannel,
    "ovs-vxlan": _ovs,
}


def main(argv: list[str] | None = None) -> int:
    """Write a synthetic cluster as a snapshot file: ``python -m netdoctor.synthetic --help``."""
    import sys
    from pathlib import Path

    from netdoctor.commandline import ArgumentParser, CommandError
    from netdoctor.model.serialize import write_snapshot

    parser = ArgumentParser(
        prog="python -m netdoctor.synthetic",
        description="Write a deterministic synthetic cluster as a netdoctor snapshot file.",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="calico", help="the pod-network design (default: calico)")
    parser.add_argument("--nodes", type=int, default=100, help="number of nodes (default: 100)")
    parser.add_argument("--fault", action="append", default=[], choices=sorted(FAULTS),
                        help="inject a fault; repeat for several")
    parser.add_argument("--seed", type=int, default=1, help="seed that places the faults and picks MACs (default: 1)")
    parser.add_argument("--services", type=int, default=0,
                        help="kube-proxy ClusterIP services whose iptables rules every node gets (default: 0)")
    parser.add_argument("--counters", action="store_true",
                        help="give each node's iptables rules and built-in chains counters of their own")
    parser.add_argument("-o", "--output", type=Path, required=True, help="snapshot file to write")
    try:
        options = parser.parse_args(argv)
        try:
            snapshot = generate(options.backend, options.nodes, options.fault, options.seed, options.services,
                                options.counters)
        except ValueError as error:
            parser.error(str(error))
        try:
            with options.output.open("w", encoding="utf-8") as stream:
                write_snapshot(snapshot, stream)
        except OSError as error:
            raise CommandError(f"cannot write {options.output}: {error.strerror or error}") from None
    except CommandError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.status
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
