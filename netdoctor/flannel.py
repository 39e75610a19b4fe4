"""Flannel's control-plane data in etcd: the network config and the subnet leases.

flanneld reads ``<prefix>/config`` (``/coreos.com/network`` unless started with
``-etcd-prefix``) and keeps one lease per node under ``<prefix>/subnets/``, keyed
``10.244.23.0-24``, whose value names the node's ``PublicIP`` and, for VXLAN, its
``VtepMAC``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING

from netdoctor.model import EtcdData
from netdoctor.model.record import record

if TYPE_CHECKING:
    from ipaddress import IPv4Network

DEFAULT_PREFIX = "/coreos.com/network"


@record
class NetworkConfig:
    """The parsed ``<prefix>/config`` value, or why it is unusable (``error`` set)."""

    key: str
    network: IPv4Network | None = None
    subnet_len: int | None = None
    backend_type: str | None = None
    vni: int | None = None
    port: int | None = None
    error: str | None = None


@record
class Lease:
    """One subnet lease: the node's pod subnet and its underlay address."""

    key: str
    subnet: IPv4Network
    public_ip: str | None
    backend_type: str | None
    vtep_mac: str | None


def prefixes(etcd: EtcdData) -> tuple[str, ...]:
    """Return the flannel key prefixes present in etcd, the default one first if present."""
    found = {key.rsplit("/", 1)[0] for key, _ in etcd.keys if key.endswith("/config") and "/network/" in key + "/"}
    found |= {key.split("/subnets/", 1)[0] for key, _ in etcd.keys if "/subnets/" in key}
    return tuple(sorted(found, key=lambda prefix: (prefix != DEFAULT_PREFIX, prefix)))


@lru_cache(maxsize=64)
def network_config(etcd: EtcdData, prefix: str = DEFAULT_PREFIX) -> NetworkConfig:
    """Parse the network config under ``prefix``; ``error`` tells why it is missing or invalid."""
    # Imported here because a snapshot without etcd keys never needs it.
    from ipaddress import IPv4Network, ip_network

    key = f"{prefix}/config"
    raw = etcd.get(key)
    if raw is None:
        return NetworkConfig(key, error=f"{key} is absent")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        return NetworkConfig(key, error=f"{key} is not valid JSON ({error.msg} at column {error.colno})")
    if not isinstance(data, dict) or not isinstance(data.get("Network"), str):
        return NetworkConfig(key, error=f"{key} has no \"Network\" string")
    try:
        network = ip_network(data["Network"], strict=False)
    except ValueError:
        return NetworkConfig(key, error=f"{key} has an invalid Network {data['Network']!r}")
    if not isinstance(network, IPv4Network):
        return NetworkConfig(key, error=f"{key} has an IPv6 Network; flannel's Network is IPv4")
    backend = data["Backend"] if isinstance(data.get("Backend"), dict) else {}
    subnet_len = data.get("SubnetLen")
    return NetworkConfig(
        key,
        network=network,
        subnet_len=subnet_len if isinstance(subnet_len, int) else None,
        # flannel's default backend is UDP when the config names none.
        backend_type=str(backend.get("Type", "udp")).lower(),
        vni=backend.get("VNI") if isinstance(backend.get("VNI"), int) else None,
        port=backend.get("Port") if isinstance(backend.get("Port"), int) else None,
    )


@lru_cache(maxsize=64)
def leases(etcd: EtcdData, prefix: str = DEFAULT_PREFIX) -> tuple[Lease, ...]:
    """Return the parseable leases under ``prefix``, sorted by subnet; unparseable ones are skipped."""
    from ipaddress import IPv4Network, ip_network

    found: list[Lease] = []
    for key, raw in etcd.with_prefix(f"{prefix}/subnets/"):
        name = key.rsplit("/", 1)[1]
        try:
            subnet = ip_network(name.replace("-", "/"), strict=False)
            data = json.loads(raw)
        except (ValueError, json.JSONDecodeError):
            continue
        if not isinstance(subnet, IPv4Network) or not isinstance(data, dict):
            continue
        backend_data = data["BackendData"] if isinstance(data.get("BackendData"), dict) else {}
        public_ip = data.get("PublicIP")
        backend_type = data.get("BackendType")
        vtep_mac = backend_data.get("VtepMAC")
        found.append(
            Lease(
                key,
                subnet,
                public_ip if isinstance(public_ip, str) else None,
                backend_type.lower() if isinstance(backend_type, str) else None,
                vtep_mac.lower() if isinstance(vtep_mac, str) else None,
            )
        )
    return tuple(sorted(found, key=lambda lease: (int(lease.subnet.network_address), lease.key)))
