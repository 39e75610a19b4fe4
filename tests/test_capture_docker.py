"""Tests of the Docker daemon.json parser."""

from __future__ import annotations

import pytest
from fuzzing import mutations, parse_or_reject
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import sample

from netdoctor.capture import ParseError
from netdoctor.capture.docker import parse_docker_daemon


def test_network_settings():
    daemon = parse_docker_daemon(sample("docker-daemon.json"), "daemon.json")
    assert daemon.bip == "192.0.2.1/24"
    assert daemon.mtu == 1450
    assert daemon.iptables is False
    assert daemon.ip_masq is False
    assert daemon.raw == sample("docker-daemon.json")


def test_unset_keys_are_none():
    daemon = parse_docker_daemon('{"log-driver": "journald"}', "x")
    assert (daemon.bip, daemon.mtu, daemon.iptables, daemon.ip_masq) == (None, None, None, None)


def test_empty_file_is_empty_object():
    assert parse_docker_daemon("\n", "x").mtu is None


def test_invalid_json_names_line():
    with pytest.raises(ParseError) as raised:
        parse_docker_daemon('{\n  "mtu": 1450,\n  "bip": \n}\n', "daemon.json")
    assert raised.value.line == 4
    assert "invalid JSON" in raised.value.message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{\n  "mtu": "1450"\n}', 2),
        ('{\n  "iptables": "no"\n}', 2),
        ('{\n\n  "bip": 5\n}', 3),
        ('{"mtu": true}', 1),
        ('{\n  "mtu": 1450,\n  "bip": "192.0.2/24"\n}', 3),
        ('{\n  "bip": "192.0.2.1/+24"\n}', 2),
    ],
)
def test_wrong_types_name_line(text, line):
    with pytest.raises(ParseError) as raised:
        parse_docker_daemon(text, "daemon.json")
    assert raised.value.line == line


def test_top_level_array_rejected():
    with pytest.raises(ParseError):
        parse_docker_daemon("[]", "daemon.json")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text(text):
    parse_or_reject(parse_docker_daemon, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("docker-daemon.json")))
def test_fuzz_mutated_sample(text):
    parse_or_reject(parse_docker_daemon, text)
