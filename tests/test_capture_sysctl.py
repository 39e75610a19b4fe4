"""Tests of the sysctl -a parser."""

from __future__ import annotations

import pytest
from fuzzing import mutations, parse_or_reject
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import sample

from netdoctor.capture import ParseError
from netdoctor.capture.sysctl import parse_sysctl


def test_spaced_and_compact_lines():
    sysctls = parse_sysctl(sample("sysctl-a-net.txt"), "sysctl -a")
    assert sysctls.get("net.ipv4.ip_forward") == "0"
    assert sysctls.get("net.ipv6.conf.all.forwarding") == "1"
    assert sysctls.get("net.bridge.bridge-nf-call-iptables") == "1"


def test_interface_with_dot_keeps_slash():
    sysctls = parse_sysctl(sample("sysctl-a-net.txt"), "sysctl -a")
    assert sysctls.get("net.ipv4.conf.flannel/1.rp_filter") == "0"


def test_tab_inside_value_kept():
    assert (
        parse_sysctl(sample("sysctl-a-net.txt"), "x").get("net.ipv4.ip_local_port_range")
        == "32768\t60999"
    )


def test_permission_denied_lines_skipped():
    sysctls = parse_sysctl(sample("sysctl-a-net.txt"), "x")
    assert not any(key.startswith("sysctl") for key in sysctls.as_dict())
    assert sysctls.get("net.ipv6.conf.all.stable_secret") is None


def test_slash_keys_normalized():
    sysctls = parse_sysctl("net/ipv4/ip_forward = 1\n", "x")
    assert sysctls.get("net.ipv4.ip_forward") == "1"


def test_empty_value_allowed():
    assert parse_sysctl("kernel.domainname = \n", "x").get("kernel.domainname") == ""


def test_real_capture():
    assert parse_sysctl(sample("sysctl-a-net.txt"), "x").get("net.ipv4.conf.eth0.rp_filter") == "1"


@pytest.mark.parametrize(
    ("text", "line"),
    [("net.ipv4.ip_forward = 1\nnet.ipv4.ip_forward\n", 2), ("bad key = 1\n", 1), ("= 1\n", 1)],
)
def test_malformed_lines_named(text, line):
    with pytest.raises(ParseError) as raised:
        parse_sysctl(text, "sysctl.txt")
    assert raised.value.line == line


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_random_text(text):
    parse_or_reject(parse_sysctl, text)


@settings(max_examples=200, deadline=None)
@given(mutations(sample("sysctl-a-net.txt")))
def test_fuzz_mutated_sample(text):
    parse_or_reject(parse_sysctl, text)
