"""Collectors: one module per source of node state.

Each module defines ``collect(target) -> netdoctor.collect.Part`` and records a
gap instead of raising when its source is missing, unreadable or slow.
``COLLECTORS`` lists the modules in the order they run.
"""

COLLECTORS: tuple[str, ...] = ("netlink", "iptables", "sysctl", "files", "ovs", "bgp", "firewalld")
