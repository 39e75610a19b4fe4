"""The raw view's text renderings of captured parts."""

from __future__ import annotations

from netdoctor.capture.iptables import parse_iptables_save
from netdoctor.model import NodeSnapshot
from netdoctor.tui.rawtext import available_sources, source_lines

COUNTED = """\
*filter
:INPUT ACCEPT [7:420]
:FORWARD DROP [3:180]
:KUBE-FIREWALL - [0:0]
[12:1008] -A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT
[0:0] -A INPUT -j KUBE-FIREWALL
COMMIT
"""


def test_iptables_rendered_as_saved() -> None:
    node = NodeSnapshot("node-a", iptables=parse_iptables_save(COUNTED, "iptables-save.txt"))

    assert "iptables" in available_sources(node)
    assert source_lines(node, "iptables") == COUNTED.splitlines()


def test_iptables_without_counters() -> None:
    plain = "*nat\n:POSTROUTING ACCEPT\n-A POSTROUTING -s 10.244.0.0/16 ! -o cni0 -j MASQUERADE\nCOMMIT\n"
    node = NodeSnapshot("node-a", iptables=parse_iptables_save(plain, "iptables-save.txt"))

    assert source_lines(node, "iptables") == plain.splitlines()
