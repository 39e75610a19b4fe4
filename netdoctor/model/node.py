"""What one node's network looks like: interfaces, routes, neighbours, firewall, daemons.

Every part is optional. ``None`` means the part was not captured (no program,
no permission, no file in a bundle), which is different from an empty part:
an empty route table is a finding, an absent one is a gap.
"""

from __future__ import annotations

from typing import Any

from netdoctor.model.addr import parse_prefix
from netdoctor.model.record import record
from netdoctor.model.routes import FdbTable, NeighbourTable, RouteTable

#: The largest MTU Linux accepts (``IP_MAX_MTU``, 2^31 - 1 in the kernel's netdevice code).
MAX_MTU = 2**31 - 1


@record
class Address:
    """An address assigned to an interface, with its prefix length (``inet 10.0.0.1/24``)."""

    family: int
    address: str
    prefixlen: int
    scope: str = "global"
    peer: str | None = None
    broadcast: str | None = None
    label: str | None = None
    #: Address flags as ``ip addr`` prints them: ``dynamic``, ``noprefixroute``, ``secondary``, ...
    flags: tuple[str, ...] = ()

    @property
    def cidr(self) -> str:
        """The address with its prefix length, as ``ip addr`` prints it."""
        return f"{self.address}/{self.prefixlen}"

    @property
    def network(self) -> tuple[int, int, int]:
        """The connected prefix as ``(family, network, length)``."""
        family, value, plen = parse_prefix(self.cidr)
        bits = 32 if family == 4 else 128
        return family, value >> (bits - plen) << (bits - plen) if plen else 0, plen


@record
class VxlanInfo:
    """VXLAN device details (``ip -d link``: ``vxlan id 1 local 10.0.0.1 dev eth0 dstport 8472``)."""

    vni: int
    local: str | None = None
    #: Multicast group or unicast remote of the device, if set.
    remote: str | None = None
    port: int | None = None
    #: The underlay device the VXLAN socket is bound to.
    dev: str | None = None
    learning: bool | None = None


@record
class TunnelInfo:
    """Point-to-point tunnel details of a gre, gretap, ipip or sit device."""

    local: str | None = None
    remote: str | None = None
    ttl: int | None = None
    key: str | None = None


@record
class Interface:
    """A network interface as netlink or ``ip -d addr`` reports it."""

    name: str
    index: int
    #: Link kind: ethernet, loopback, bridge, veth, vxlan, gre, gretap, ipip, sit, tun,
    #: openvswitch, ... (``IFLA_INFO_KIND``; ``ethernet`` or ``loopback`` when the kernel gives none).
    kind: str
    #: Operational state: UP, DOWN, UNKNOWN, LOWERLAYERDOWN, ...
    state: str
    mtu: int
    flags: tuple[str, ...] = ()
    mac: str | None = None
    #: The bridge or bond this interface is enslaved to.
    master: str | None = None
    #: The peer interface index of a veth (``@if23``), when known.
    link_index: int | None = None
    #: The namespace id of the peer, when it lives in another namespace (``link-netns``/``link-netnsid``).
    link_netns: str | None = None
    addresses: tuple[Address, ...] = ()
    vxlan: VxlanInfo | None = None
    tunnel: TunnelInfo | None = None

    @property
    def is_up(self) -> bool:
        """Whether the interface is administratively up (the ``UP`` flag)."""
        return "UP" in self.flags


@record
class IptablesOption:
    """One option of a match or target (``--dport 8472``, ``! --state NEW``)."""

    name: str
    values: tuple[str, ...] = ()
    negated: bool = False


@record
class IptablesMatch:
    """A ``-m MODULE`` match with its options; the implicit protocol match uses the protocol name."""

    module: str
    options: tuple[IptablesOption, ...] = ()


@record
class IptablesRule:
    """One ``-A CHAIN ...`` line of ``iptables-save``, with its parsed conditions.

    Address and interface conditions keep their text (``10.244.0.0/16``, ``cali+``);
    ``None`` means the rule does not test that field.
    """

    chain: str
    #: 1-based line number in the ``iptables-save`` output, for evidence.
    line: int
    #: The rule as written after ``-A``, starting with the chain name
    #: (``INPUT -p icmp -j REJECT``), for evidence and for deleting it by its full text.
    text: str
    protocol: str | None = None
    protocol_negated: bool = False
    source: str | None = None
    source_negated: bool = False
    destination: str | None = None
    destination_negated: bool = False
    in_interface: str | None = None
    in_interface_negated: bool = False
    out_interface: str | None = None
    out_interface_negated: bool = False
    fragment: bool | None = None
    matches: tuple[IptablesMatch, ...] = ()
    #: ``-j`` target or ``-g`` chain; None for a rule that only counts.
    target: str | None = None
    goto: bool = False
    target_options: tuple[IptablesOption, ...] = ()


@record
class IptablesChain:
    """A chain of one table: a built-in chain has a policy, a user chain has none."""

    name: str
    policy: str | None = None
    packets: int | None = None
    bytes: int | None = None


#: The built-in chains of each table, the same for iptables and ip6tables. iptables-restore accepts a
#: rule for one of them without a ``:CHAIN`` line, and rejects a rule for any other undeclared chain
#: (iptables 1.8.9, legacy and nf_tables).
BUILTIN_CHAINS: dict[str, frozenset[str]] = {
    "filter": frozenset({"INPUT", "FORWARD", "OUTPUT"}),
    "nat": frozenset({"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}),
    "mangle": frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}),
    "raw": frozenset({"PREROUTING", "OUTPUT"}),
    "security": frozenset({"INPUT", "FORWARD", "OUTPUT"}),
}


@record
class IptablesTable:
    """One ``*table`` section of ``iptables-save``: its chains and rules in order."""

    name: str
    chains: tuple[IptablesChain, ...] = ()
    rules: tuple[IptablesRule, ...] = ()
    #: Packet and byte counters of each rule, in the order of ``rules``, from ``iptables-save -c``. Both are
    #: empty for a capture without counters, and an item is None for a rule without them. The counters differ
    #: on every node, so they are kept here, and nodes with equal rules share the rule objects.
    rule_packets: tuple[int | None, ...] = ()
    rule_bytes: tuple[int | None, ...] = ()

    def chain(self, name: str) -> IptablesChain | None:
        """Return the chain of that name, if the table declares it."""
        for chain in self.chains:
            if chain.name == name:
                return chain
        return None

    def rules_of(self, chain: str) -> tuple[IptablesRule, ...]:
        """Return the rules of one chain, in evaluation order."""
        return tuple(rule for rule in self.rules if rule.chain == chain)

    def counters(self, position: int) -> tuple[int, int] | None:
        """Return the packets and bytes of the rule at ``position`` in ``rules``, or None when not captured."""
        if not self.rule_packets:
            return None
        packets, count = self.rule_packets[position], self.rule_bytes[position]
        return None if packets is None or count is None else (packets, count)


@record
class IptablesRuleset:
    """The whole output of ``iptables-save`` (family 4) or ``ip6tables-save`` (family 6)."""

    family: int
    tables: tuple[IptablesTable, ...] = ()

    def table(self, name: str) -> IptablesTable | None:
        """Return the table of that name, if captured."""
        for table in self.tables:
            if table.name == name:
                return table
        return None


@record
class FlannelSubnetEnv:
    """``/run/flannel/subnet.env`` as flanneld writes it."""

    network: str | None = None
    subnet: str | None = None
    mtu: int | None = None
    ipmasq: bool | None = None
    #: Every ``KEY=value`` line, including those not named above.
    values: tuple[tuple[str, str], ...] = ()


@record
class DockerDaemon:
    """The network settings of ``/etc/docker/daemon.json``; None where the file does not set them."""

    bip: str | None = None
    mtu: int | None = None
    iptables: bool | None = None
    ip_masq: bool | None = None
    #: The file's full text, kept for evidence and for bundles.
    raw: str = ""


@record
class OvsInterface:
    """An Open vSwitch interface with its type (``gre``, ``vxlan``, ``internal``, ...) and options."""

    name: str
    type: str = ""
    options: tuple[tuple[str, str], ...] = ()
    #: Error text OVS reports for the interface, if any.
    error: str | None = None

    def option(self, name: str) -> str | None:
        """Return one option value such as ``remote_ip``."""
        for key, value in self.options:
            if key == name:
                return value
        return None


@record
class OvsPort:
    """A port of an OVS bridge and its interfaces."""

    name: str
    interfaces: tuple[OvsInterface, ...] = ()


@record
class OvsBridge:
    """An OVS bridge with its ports."""

    name: str
    ports: tuple[OvsPort, ...] = ()
    datapath_type: str | None = None


@record
class BgpSession:
    """A BGP session of BIRD or FRR, as ``birdc show protocols`` or ``show bgp summary json`` reports it."""

    #: ``bird`` or ``frr``.
    daemon: str
    #: The protocol name (BIRD) or the neighbour address (FRR).
    name: str
    state: str
    neighbor: str | None = None
    since: str | None = None
    #: BIRD's Info column or FRR's last error, e.g. ``Active Socket: Connection refused``.
    info: str | None = None

    @property
    def established(self) -> bool:
        """Whether the session is up."""
        return self.state == "Established" or (self.info or "").startswith("Established")


@record
class FirewalldZone:
    """One zone of ``firewall-cmd --list-all-zones``; list fields keep firewalld's own spelling."""

    name: str
    #: Whether the zone is bound to an interface or source (``public (active)``).
    active: bool = False
    #: Whether the header marks it as the default zone (firewalld 0.x prints ``(default, active)``).
    default: bool = False
    #: ``default``, ``ACCEPT``, ``DROP``, ``%%REJECT%%``; None when the block has no ``target:`` line.
    target: str | None = None
    icmp_block_inversion: bool | None = None
    interfaces: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    #: Port entries such as ``8472/udp`` or ``30000-32767/tcp``.
    ports: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    #: Intra-zone forwarding (``forward: yes``), printed by firewalld 1.0 and later.
    forward: bool | None = None
    masquerade: bool | None = None
    forward_ports: tuple[str, ...] = ()
    source_ports: tuple[str, ...] = ()
    icmp_blocks: tuple[str, ...] = ()
    #: Rich rules as firewalld prints them, e.g. ``rule family="ipv4" source address="10.244.0.0/16" accept``.
    rich_rules: tuple[str, ...] = ()


@record
class FirewalldPolicy:
    """One policy of ``firewall-cmd --list-all-policies`` (firewalld 0.9 and later)."""

    name: str
    active: bool = False
    priority: int | None = None
    target: str | None = None
    ingress_zones: tuple[str, ...] = ()
    egress_zones: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    masquerade: bool | None = None
    forward_ports: tuple[str, ...] = ()
    source_ports: tuple[str, ...] = ()
    icmp_blocks: tuple[str, ...] = ()
    rich_rules: tuple[str, ...] = ()


@record
class FirewalldService:
    """A firewalld service definition (``services/NAME.xml``) with its includes already resolved."""

    name: str
    #: Port entries such as ``8472/udp`` or ``30000-32767/tcp``.
    ports: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    source_ports: tuple[str, ...] = ()


@record
class FirewalldState:
    """The runtime firewalld configuration of a node: zones, the default zone and policies."""

    zones: tuple[FirewalldZone, ...] = ()
    default_zone: str | None = None
    #: None when policies were not captured (firewalld older than 0.9 has none).
    policies: tuple[FirewalldPolicy, ...] | None = None
    #: Service definitions read from the node; empty when only ``firewall-cmd`` output was captured.
    services: tuple[FirewalldService, ...] = ()

    def zone(self, name: str) -> FirewalldZone | None:
        """Return the zone of that name, if captured."""
        for zone in self.zones:
            if zone.name == name:
                return zone
        return None


@record
class Sysctls:
    """Kernel parameters as ``key -> value`` text, with keys in dotted form."""

    values: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """Return a value such as ``net.ipv4.ip_forward``, or None if it was not captured."""
        for name, value in self.values:
            if name == key:
                return value
        return None

    def as_dict(self) -> dict[str, str]:
        """Return all captured values as a dict."""
        return dict(self.values)


@record
class Provenance:
    """Where one part of a snapshot came from: a command, a file or a netlink dump."""

    source: str
    origin: str


@record
class NodeSnapshot:
    """Everything collected from one node. ``None`` parts were not captured."""

    name: str
    interfaces: tuple[Interface, ...] | None = None
    routes: RouteTable | None = None
    neighbours: NeighbourTable | None = None
    fdb: FdbTable | None = None
    iptables: IptablesRuleset | None = None
    ip6tables: IptablesRuleset | None = None
    sysctls: Sysctls | None = None
    flannel_env: FlannelSubnetEnv | None = None
    docker: DockerDaemon | None = None
    ovs: tuple[OvsBridge, ...] | None = None
    bgp: tuple[BgpSession, ...] | None = None
    firewalld: FirewalldState | None = None
    provenance: tuple[Provenance, ...] = ()
    #: Bundle files that no parser reads, kept by name so nothing is silently dropped.
    extra_files: tuple[str, ...] = ()
    #: Free-form facts a collector wants to keep (e.g. the iproute2 version); never judged.
    meta: tuple[tuple[str, str], ...] = ()

    def interface(self, name: str) -> Interface | None:
        """Return the interface of that name, if captured."""
        for interface in self.interfaces or ():
            if interface.name == name:
                return interface
        return None

    def ports_of(self, bridge: str) -> tuple[Interface, ...]:
        """Return the interfaces enslaved to a bridge."""
        return tuple(interface for interface in self.interfaces or () if interface.master == bridge)

    def parts(self) -> dict[str, Any]:
        """Return the captured parts by source name, for views and gap reporting."""
        names = ("interfaces", "routes", "neighbours", "fdb", "iptables", "ip6tables", "sysctls",
                 "flannel_env", "docker", "ovs", "bgp", "firewalld")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}
