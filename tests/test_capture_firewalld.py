"""Tests of the firewall-cmd output parsers."""

from __future__ import annotations

import pytest
from fuzzing import mutations, parse_or_reject
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import sample

from netdoctor.capture import ParseError
from netdoctor.capture.firewalld import (
    parse_default_zone,
    parse_firewalld_policies,
    parse_firewalld_state,
    parse_firewalld_zones,
)


def test_zones_of_firewalld_1():
    zones = parse_firewalld_zones(
        sample("firewalld-list-all-zones.txt"), "firewall-cmd --list-all-zones"
    )
    assert [zone.name for zone in zones] == ["public", "block", "trusted"]
    public, block, trusted = zones
    assert public.active is True
    assert block.active is False
    assert public.interfaces == ("eth0",)
    assert public.ports == ("6443/tcp", "10250/tcp")
    assert public.forward is True
    assert public.masquerade is False
    assert public.icmp_block_inversion is False
    assert public.rich_rules == (
        'rule family="ipv4" source address="10.244.0.0/16" accept',
        'rule family="ipv4" port port="8472" protocol="udp" drop',
    )
    assert public.forward_ports == ("port=8080:proto=tcp:toport=80:toaddr=",)
    assert block.target == "%%REJECT%%"
    assert trusted.sources == ("10.244.0.0/16",)
    assert trusted.interfaces == ("cni0", "flannel.1")
    assert trusted.masquerade is True


def test_zones_of_firewalld_0_6():
    zones = parse_firewalld_zones(sample("firewalld-0.6-list-all-zones.txt"), "x")
    public = zones[0]
    assert public.default is True
    assert public.active is True
    assert public.forward is None
    assert public.rich_rules == ()
    assert zones[1].target == "DROP"


def test_policies():
    policies = parse_firewalld_policies(sample("firewalld-list-all-policies.txt"), "x")
    assert [policy.name for policy in policies] == ["allow-host-ipv6", "k8s-egress"]
    assert policies[0].priority == -15000
    assert policies[0].ingress_zones == ("ANY",)
    assert len(policies[0].rich_rules) == 2
    assert policies[1].masquerade is True
    assert policies[1].egress_zones == ("public",)


def test_state_default_zone():
    state = parse_firewalld_state(
        sample("firewalld-list-all-zones.txt"),
        "zones",
        sample("firewalld-default-zone.txt"),
        "default",
    )
    assert state.default_zone == "public"
    assert state.policies is None
    assert state.zone("trusted").masquerade is True


def test_state_default_from_header_mark():
    state = parse_firewalld_state(sample("firewalld-0.6-list-all-zones.txt"), "zones")
    assert state.default_zone == "public"


def test_default_zone_rejects_two_lines():
    with pytest.raises(ParseError) as raised:
        parse_default_zone("public\ntrusted\n", "default")
    assert raised.value.line == 1
    with pytest.raises(ParseError):
        parse_default_zone("", "default")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("  target: default\n", 1),
        ("\trule accept\n", 1),
        ("public\n  target default\n", 2),
        ("public\n  masquerade: maybe\n", 2),
        ("public\n  ports: \n  ports: \n", 3),
        ("public (active\n", 1),
    ],
)
def test_malformed_zones_name_line(text, line):
    with pytest.raises(ParseError) as raised:
        parse_firewalld_zones(text, "zones.txt")
    assert raised.value.line == line


def test_bad_priority_names_line():
    with pytest.raises(ParseError) as raised:
        parse_firewalld_policies("p1\n  priority: high\n", "policies")
    assert raised.value.line == 2


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_random_text(text):
    parse_or_reject(parse_firewalld_zones, text)
    parse_or_reject(parse_firewalld_policies, text)
    parse_or_reject(parse_default_zone, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("firewalld-list-all-zones.txt")))
def test_fuzz_mutated_zones(text):
    parse_or_reject(parse_firewalld_zones, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("firewalld-list-all-policies.txt")))
def test_fuzz_mutated_policies(text):
    parse_or_reject(parse_firewalld_policies, text)
