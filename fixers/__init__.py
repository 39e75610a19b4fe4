"""Fixers: the remedies for findings, one module per concern.

``CATALOGUE`` maps every fixer id to the module that registers it, and
``FIXES`` maps each check id to the fixers that address its findings, in the
order they apply. :func:`netdoctor.fix.attach_fixes` copies ``FIXES`` into the
findings, so checks never import fixers. A conformance test compares both
indexes with what the modules register and with the check catalogue.
"""

CATALOGUE: dict[str, str] = {
    "accept-icmp": "filtering",
    "accept-overlay-port": "filtering",
    "accept-pod-forward": "filtering",
    "add-peer-route": "routing",
    "docker-bip-from-subnet-env": "addressing",
    "enable-bridge-nf": "kernel",
    "enable-ip-forward": "kernel",
    "loosen-rp-filter": "kernel",
    "lower-pod-mtu": "mtu",
    "renumber-pod-network": "addressing",
    "remove-shadowing-blackhole": "routing",
    "repair-flannel-lease": "flannel_etcd",
    "repair-ovs-tunnel-mesh": "mesh",
    "replace-vtep-entry": "flannel",
    "replace-wrong-route": "routing",
    "restart-bgp-session": "bgp",
    "restore-underlay-mtu": "mtu",
    "restore-flannel-backend": "flannel",
    "restore-overlay-interface": "overlay",
    "return-before-masquerade": "filtering",
    "set-unique-mac": "layer2",
    "write-flannel-network-config": "flannel_etcd",
}

FIXES: dict[str, tuple[str, ...]] = {
    "bgp-peer-down": ("restart-bgp-session",),
    "blackhole-route": ("remove-shadowing-blackhole",),
    "bridge-outside-overlay-subnet": ("docker-bip-from-subnet-env",),
    "bridge-subnet-overlap": ("docker-bip-from-subnet-env",),
    "etcd-lease-mismatch": ("repair-flannel-lease",),
    "etcd-network-config-missing": ("write-flannel-network-config",),
    "forward-policy-drop": ("accept-pod-forward",),
    "icmp-blocked": ("accept-icmp",),
    "ip-forward-disabled": ("enable-ip-forward",),
    "mtu-mismatch": ("restore-underlay-mtu", "lower-pod-mtu"),
    "overlay-interface-missing": ("restore-overlay-interface",),
    "pod-network-overlaps-host": ("renumber-pod-network",),
    "route-missing": ("add-peer-route",),
    "duplicate-mac": ("set-unique-mac",),
    "flannel-backend-mismatch": ("restore-flannel-backend",),
    "route-wrong-nexthop": ("replace-wrong-route",),
    "tunnel-mesh-incomplete": ("repair-ovs-tunnel-mesh",),
    "vtep-mismatch": ("replace-vtep-entry",),
    "overlay-port-blocked": ("accept-overlay-port",),
    "pod-traffic-masqueraded": ("return-before-masquerade",),
    "rp-filter-strict": ("loosen-rp-filter",),
    "bridge-nf-disabled": ("enable-bridge-nf",),
}
