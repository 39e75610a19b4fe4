"""ip-forward-disabled."""

from __future__ import annotations

from test_checks_support import flannel_cluster, run

from netdoctor.model import Sysctls


def test_ip_forward_off() -> None:
    findings = run(flannel_cluster(2, sysctls=Sysctls((("net.ipv4.ip_forward", "0"),))), "ip-forward-disabled")

    assert [(finding.nodes, finding.summary) for finding in findings] == [
        (("node1",), "node1: net.ipv4.ip_forward = 0, so the node does not route pod traffic"),
    ]
    assert findings[0].evidence[0].item == "net.ipv4.ip_forward = 0"


def test_ip_forward_on_is_silent() -> None:
    assert run(flannel_cluster(2), "ip-forward-disabled") == []


def test_ip_forward_not_captured_is_silent() -> None:
    assert run(flannel_cluster(2, sysctls=None), "ip-forward-disabled") == []
    assert run(flannel_cluster(2, sysctls=Sysctls()), "ip-forward-disabled") == []
