"""The check catalogue: one module per concern.

``CATALOGUE`` maps every check id to the module that registers it, so that a run
of a few checks imports only their modules. A conformance test compares this
index with what the modules register.
"""

CATALOGUE: dict[str, str] = {
    "bgp-peer-down": "bgp",
    "blackhole-route": "routing",
    "bridge-outside-overlay-subnet": "addressing",
    "bridge-subnet-overlap": "addressing",
    "etcd-lease-mismatch": "flannel_etcd",
    "etcd-network-config-missing": "flannel_etcd",
    "forward-policy-drop": "filtering",
    "icmp-blocked": "filtering",
    "ip-forward-disabled": "kernel",
    "mtu-mismatch": "mtu",
    "overlay-interface-missing": "overlay",
    "pod-network-overlaps-host": "addressing",
    "route-missing": "routing",
    "duplicate-mac": "layer2",
    "flannel-backend-mismatch": "flannel",
    "route-wrong-nexthop": "routing",
    "tunnel-mesh-incomplete": "mesh",
    "vtep-mismatch": "flannel",
    "overlay-port-blocked": "filtering",
    "pod-traffic-masqueraded": "filtering",
    "rp-filter-strict": "kernel",
    "bridge-nf-disabled": "kernel",
}
