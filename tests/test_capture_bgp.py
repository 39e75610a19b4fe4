"""Tests of the BIRD and FRR BGP session parsers."""

from __future__ import annotations

import json

import pytest
from fuzzing import mutations, parse_or_reject
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import sample

from netdoctor.capture import ParseError
from netdoctor.capture.bgp import parse_bird_protocols, parse_frr_bgp_summary


def test_bird16_calico_capture():
    sessions = parse_bird_protocols(sample("bird16-calico-protocols.txt"), "birdc show protocols")
    assert [session.name for session in sessions] == ["Mesh_10_0_0_52", "Mesh_10_0_0_53"]
    assert all(session.established for session in sessions)
    assert sessions[0].neighbor == "10.0.0.52"
    assert sessions[0].since == "2021-06-21"
    assert sessions[0].daemon == "bird"


def test_bird163_capture():
    sessions = parse_bird_protocols(sample("bird163-protocols.txt"), "x")
    assert len(sessions) == 1
    assert sessions[0].state == "Established"


def test_bird2_states():
    sessions = {
        session.name: session
        for session in parse_bird_protocols(sample("bird2-show-protocols.txt"), "x")
    }
    assert set(sessions) == {"n2", "n3", "n4", "n5"}
    assert sessions["n2"].state == "Established"
    assert sessions["n2"].since == "19:34:45.622"
    assert sessions["n3"].state == "Active"
    assert sessions["n3"].info == "Active Socket: Connection refused"
    assert sessions["n3"].established is False
    assert sessions["n4"].since == "2026-12-03 08:01:02"
    assert sessions["n4"].state == "Connect"
    assert sessions["n5"].state == "down"
    assert sessions["n5"].info is None
    assert sessions["n2"].neighbor is None


def test_bird_without_header_rejected():
    with pytest.raises(ParseError) as raised:
        parse_bird_protocols(
            "bird: Unable to connect to server control socket (/run/bird/bird.ctl): No such file or directory\n",
            "birdc",
        )
    assert raised.value.line == 1
    assert "Unable to connect" in raised.value.message


def test_bird_short_row_names_line():
    text = "BIRD 2.0.12 ready.\nName Proto Table State Since Info\nn2 BGP\n"
    with pytest.raises(ParseError) as raised:
        parse_bird_protocols(text, "birdc")
    assert raised.value.line == 3


def test_frr_address_families_merged():
    sessions = parse_frr_bgp_summary(sample("frr-bgp-summary.json"), "vtysh")
    assert [session.name for session in sessions] == [
        "198.51.100.12",
        "198.51.100.13",
        "2001:db8::12",
    ]
    up, active, admin = sessions
    assert up.established is True
    assert up.since == "00:01:43"
    assert up.daemon == "frr"
    assert active.state == "Active"
    assert admin.state == "Idle (Admin)"
    assert admin.info == "Admin"


def test_frr_old_top_level_peers():
    sessions = parse_frr_bgp_summary(sample("frr-bgp-summary-old.json"), "vtysh")
    assert len(sessions) == 1
    assert sessions[0].neighbor == "198.51.100.12"
    assert sessions[0].established is True


def test_frr_no_instance_is_empty():
    assert parse_frr_bgp_summary("{}", "vtysh") == ()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("% No BGP process is configured\n", 1),
        ('{\n"ipv4Unicast": {"peers": {\n', 3),
        ('{"peers": {"192.0.2.1": {}}}', None),
    ],
)
def test_frr_malformed(text, line):
    with pytest.raises(ParseError) as raised:
        parse_frr_bgp_summary(text, "vtysh")
    assert raised.value.line == line


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_bird_random_text(text):
    parse_or_reject(parse_bird_protocols, "Name Proto Table State Since Info\n" + text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("bird2-show-protocols.txt")))
def test_fuzz_bird_mutated_sample(text):
    parse_or_reject(parse_bird_protocols, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("frr-bgp-summary.json")))
def test_fuzz_frr_mutated_sample(text):
    parse_or_reject(parse_frr_bgp_summary, text)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.text(max_size=5) | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["peers", "state", "ipv4Unicast", "192.0.2.1", "peerUptime"]),
                inner,
                max_size=3,
            )
        ),
        max_leaves=20,
    )
)
def test_fuzz_frr_random_json(document):
    parse_or_reject(parse_frr_bgp_summary, json.dumps(document))
