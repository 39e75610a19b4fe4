"""Tests of the sysctl collector: each namespace's own values are read."""

from __future__ import annotations

import nslib
import pytest

from netdoctor.collectors import sysctl
from netdoctor.target import Target

pytestmark = [nslib.needs_root, pytest.mark.netns]


def test_each_namespace_reads_its_own_ip_forward():
    with nslib.namespaces("off", "on") as (off, on):
        off.run("sysctl -qw net.ipv4.ip_forward=0")
        on.run("sysctl -qw net.ipv4.ip_forward=1")
        on.run("sysctl -qw net.ipv4.conf.all.rp_filter=2")

        read_off = sysctl.collect(Target(name="off", netns=off.name))
        read_on = sysctl.collect(Target(name="on", netns=on.name))

    assert read_off.values["sysctls"].get("net.ipv4.ip_forward") == "0"
    assert read_on.values["sysctls"].get("net.ipv4.ip_forward") == "1"
    assert read_on.values["sysctls"].get("net.ipv4.conf.all.rp_filter") == "2"
    assert read_off.gaps == []


def test_only_net_keys_collected():
    with nslib.namespaces("keys") as (ns,):
        values = sysctl.collect(Target(name="n1", netns=ns.name)).values["sysctls"].as_dict()
    assert values
    assert all(key.startswith("net.") for key in values)
    assert "net.ipv4.conf.lo.rp_filter" in values
