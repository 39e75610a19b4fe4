"""The addressing plan of a lab: node, pod and LAN names and addresses.

Every address is chosen here, before anything is built, so that ``lab up``,
``lab break`` and ``lab status`` agree on them. The addresses live only inside
the lab's namespaces, so every lab uses the same ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from ipaddress import IPv4Network
from typing import Any

BACKENDS = ("flannel-vxlan", "direct-routing", "calico-bgp", "frr", "ovs-gre", "ovs-vxlan")
FIREWALLS = ("iptables", "firewalld")

#: The underlay: node i has 10.0.0.(10 + i)/24 on ``eth0``.
LAN_NETWORK = IPv4Network("10.0.0.0/24")
#: The pod network of every backend except calico-bgp; node i owns 10.244.i.0/24.
POD_NETWORK = IPv4Network("10.244.0.0/16")
#: Calico's default IPv4 pool; node i owns the i-th /26 block.
CALICO_POOL = IPv4Network("192.168.0.0/16")
#: The overlay MTU flanneld sets for VXLAN: 1500 minus 50 bytes of encapsulation.
VXLAN_MTU = 1450
#: The MTU of the OVS overlay: 1500 minus 50 (VXLAN) or 38 (GRE with a key) bytes,
#: rounded down to the VXLAN figure so both OVS backends use one value.
OVS_MTU = 1450
FLANNEL_VNI = 1
FLANNEL_PORT = 8472
BGP_AS = 64512
MAX_NODES = 64
MAX_PODS = 8

_LAB_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")


class PlanError(ValueError):
    """A lab parameter is invalid; the message names the value and the valid range."""


@dataclass(frozen=True)
class PodPlan:
    """One pod: its namespace, its address and the host end of its veth."""

    name: str
    netns: str
    address: str
    host_veth: str


@dataclass(frozen=True)
class NodePlan:
    """One node: its namespace, LAN address, pod subnet and pods."""

    name: str
    index: int
    netns: str
    lan_ip: str
    lan_veth: str
    subnet: str
    gateway: str
    vtep_mac: str
    pods: tuple[PodPlan, ...]

    @property
    def subnet_key(self) -> str:
        """The flannel lease key suffix for this node's subnet, such as ``10.244.1.0-24``."""
        return self.subnet.replace("/", "-")


@dataclass(frozen=True)
class LabPlan:
    """The whole lab: its name, backend, firewall and nodes."""

    name: str
    backend: str
    firewall: str
    nodes: tuple[NodePlan, ...]
    lan_netns: str
    pod_network: str

    def node(self, name: str) -> NodePlan:
        """Return one node by name; raise :class:`PlanError` naming the valid nodes."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise PlanError(f"lab {self.name} has no node {name!r}; its nodes are {', '.join(n.name for n in self.nodes)}")

    def peers(self, node: NodePlan) -> tuple[NodePlan, ...]:
        """Return every node except ``node``."""
        return tuple(peer for peer in self.nodes if peer.name != node.name)

    @property
    def pods(self) -> tuple[PodPlan, ...]:
        """Every pod of every node, in node order."""
        return tuple(pod for node in self.nodes for pod in node.pods)

    def to_json(self) -> dict[str, Any]:
        """Return the plan as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabPlan:
        """Rebuild a plan written by :meth:`to_json`."""
        nodes = tuple(
            NodePlan(**{**node, "pods": tuple(PodPlan(**pod) for pod in node["pods"])}) for node in data["nodes"]
        )
        return cls(**{**data, "nodes": nodes})


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid lab name, else raise :class:`PlanError`."""
    if not _LAB_NAME.match(name):
        raise PlanError(
            f"invalid lab name {name!r}: use 1 to 10 lowercase letters and digits, starting with a letter"
        )
    return name


def calico_veth(pod_netns: str) -> str:
    """Return the host veth name Calico would give a pod: ``cali`` and 11 hex digits."""
    return "cali" + hashlib.sha1(pod_netns.encode()).hexdigest()[:11]


def make_plan(name: str, backend: str, nodes: int, pods_per_node: int = 2, firewall: str = "iptables") -> LabPlan:
    """Choose every name and address of a lab; raise :class:`PlanError` for invalid parameters."""
    check_name(name)
    if backend not in BACKENDS:
        raise PlanError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if firewall not in FIREWALLS:
        raise PlanError(f"unknown firewall {firewall!r}: choose one of {', '.join(FIREWALLS)}")
    if not 2 <= nodes <= MAX_NODES:
        raise PlanError(f"invalid node count {nodes}: a lab has 2 to {MAX_NODES} nodes")
    if not 1 <= pods_per_node <= MAX_PODS:
        raise PlanError(f"invalid pod count {pods_per_node}: a node has 1 to {MAX_PODS} pods")

    calico = backend == "calico-bgp"
    blocks = list(CALICO_POOL.subnets(new_prefix=26)) if calico else []
    plans = []
    for index in range(1, nodes + 1):
        node_name = f"node{index}"
        netns = f"nd-{name}-{node_name}"
        if calico:
            subnet = blocks[index - 1]
            # Calico answers pod ARP with a proxy and uses no gateway address on the node.
            gateway = "169.254.1.1"
        else:
            subnet = IPv4Network(f"10.244.{index}.0/24")
            gateway = str(subnet.network_address + 1)
        pods = []
        for number in range(1, pods_per_node + 1):
            pod_netns = f"{netns}-pod{number}"
            address = str(subnet.network_address + 1 + number)
            veth = calico_veth(pod_netns) if calico else f"veth{index}p{number}"
            pods.append(PodPlan(f"{node_name}-pod{number}", pod_netns, address, veth))
        plans.append(
            NodePlan(
                name=node_name,
                index=index,
                netns=netns,
                lan_ip=str(LAN_NETWORK.network_address + 10 + index),
                lan_veth=node_name,
                subnet=str(subnet),
                gateway=gateway,
                vtep_mac=f"0e:00:00:00:{index // 256:02x}:{index % 256:02x}",
                pods=tuple(pods),
            )
        )
    return LabPlan(
        name=name,
        backend=backend,
        firewall=firewall,
        nodes=tuple(plans),
        lan_netns=f"nd-{name}-lan",
        pod_network=str(CALICO_POOL if calico else POD_NETWORK),
    )
