"""Tests of the iptables collector against rules loaded into a real namespace."""

from __future__ import annotations

import subprocess

import nslib
import pytest

from netdoctor.collectors import iptables
from netdoctor.target import Target

pytestmark = [nslib.needs_root, pytest.mark.netns]

RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p udp -m udp --dport 8472 -m comment --comment "flannel vxlan" -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""


class MissingProgramTarget(Target):
    """A target whose node lacks the named programs."""

    def __init__(self, name: str, netns: str, missing: set[str]) -> None:
        super().__init__(name=name, netns=netns)
        object.__setattr__(self, "_missing", missing)

    def which(self, program: str) -> str | None:
        if program in self._missing:  # type: ignore[attr-defined]
            return None
        return super().which(program)


def test_rules_loaded_in_namespace_are_collected():
    with nslib.namespaces("ipt") as (ns,):
        subprocess.run(
            ["ip", "netns", "exec", ns.name, "iptables-restore"], input=RULES, text=True, check=True
        )
        # One UDP datagram over loopback so that the first rule's counters move.
        ns.run("python3 -c \"import socket; socket.socket(2, 2).sendto(b'x', ('127.0.0.1', 9))\"")

        part = iptables.collect(Target(name="n1", netns=ns.name))

    table = part.values["iptables"].table("filter")
    assert table.chain("FORWARD").policy == "DROP"
    rules = table.rules_of("INPUT")
    assert [rule.target for rule in rules] == ["ACCEPT", "ACCEPT", "REJECT"]
    assert rules[0].in_interface == "lo"
    counters = table.counters(table.rules.index(rules[0]))
    assert counters is not None
    assert counters[0] >= 1
    assert rules[1].matches[-1].options[0].values == ("flannel vxlan",)
    assert "ip6tables" in part.values
    assert [item.origin for item in part.provenance] == ["iptables-save -c", "ip6tables-save -c"]
    assert part.gaps == []


def test_missing_program_is_gap():
    with nslib.namespaces("ipt") as (ns,):
        part = iptables.collect(MissingProgramTarget("n1", ns.name, {"ip6tables-save"}))
    assert "iptables" in part.values
    assert "ip6tables" not in part.values
    assert [(gap.source, gap.reason) for gap in part.gaps] == [
        ("ip6tables", "ip6tables-save is not installed")
    ]
