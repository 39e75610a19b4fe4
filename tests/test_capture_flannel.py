"""Tests of the flannel subnet.env parser."""

from __future__ import annotations

import pytest
from fuzzing import mutations, parse_or_reject
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import sample

from netdoctor.capture import ParseError
from netdoctor.capture.flannel import parse_subnet_env


def test_real_capture():
    env = parse_subnet_env(sample("flannel-subnet.env"), "subnet.env")
    assert env.network == "172.30.0.0/16"
    assert env.subnet == "172.30.41.1/24"
    assert env.mtu == 1450
    assert env.ipmasq is False


def test_unknown_keys_and_quotes_kept():
    env = parse_subnet_env(sample("flannel-subnet-extra.env"), "subnet.env")
    assert env.ipmasq is True
    assert ("FLANNEL_IPV6_NETWORK", "2001:db8:1::/48") in env.values
    assert len(env.values) == 5


def test_missing_keys_are_none():
    env = parse_subnet_env("FLANNEL_SUBNET=10.244.1.1/24\n", "x")
    assert env.network is None
    assert env.mtu is None
    assert env.ipmasq is None


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_MTU=big\n", 2, "FLANNEL_MTU"),
        ("FLANNEL_IPMASQ=maybe\n", 1, "FLANNEL_IPMASQ"),
        ("FLANNEL_NETWORK 10.244.0.0/16\n", 1, "KEY=value"),
        ("1X=2\n", 1, "KEY=value"),
    ],
)
def test_malformed_lines_named(text, line, words):
    with pytest.raises(ParseError) as raised:
        parse_subnet_env(text, "subnet.env")
    assert raised.value.line == line
    assert words in raised.value.message


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text(text):
    parse_or_reject(parse_subnet_env, text)


@settings(max_examples=200, deadline=None)
@given(mutations(sample("flannel-subnet-extra.env")))
def test_fuzz_mutated_sample(text):
    parse_or_reject(parse_subnet_env, text)
