"""Tests of the Open vSwitch parsers: ovs-vsctl show text and the OVSDB JSON dump."""

from __future__ import annotations

import json

import pytest
from fuzzing import mutations, parse_or_reject
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import sample

from netdoctor.capture import ParseError
from netdoctor.capture.ovs import parse_ovs_json, parse_ovs_vsctl_show


def test_show_and_dump_agree():
    shown = parse_ovs_vsctl_show(sample("ovs-vsctl-show-two-bridges.txt"), "ovs-vsctl show")
    dumped = parse_ovs_json(sample("ovsdb-dump-two-bridges.json"), "ovsdb-client dump")
    assert shown == dumped


def test_show_tunnel_options_and_types():
    bridges = parse_ovs_vsctl_show(sample("ovs-vsctl-show-two-bridges.txt"), "x")
    assert [bridge.name for bridge in bridges] == ["br0", "br1"]
    br0 = bridges[0]
    assert br0.datapath_type == "netdev"
    interfaces = {item.name: item for port in br0.ports for item in port.interfaces}
    assert interfaces["gre1"].type == "gre"
    assert interfaces["gre1"].option("remote_ip") == "192.0.2.13"
    assert interfaces["vx 1"].option("key") == "a,b"
    assert interfaces["vx 1"].option("remote_ip") == "flow"
    assert interfaces["p1"].type == ""


def test_show_bond_port_has_two_interfaces():
    br1 = parse_ovs_vsctl_show(sample("ovs-vsctl-show-two-bridges.txt"), "x")[1]
    bond = next(port for port in br1.ports if port.name == "bond0")
    assert [item.name for item in bond.interfaces] == ["e1", "e2"]


def test_real_quoted_capture():
    bridges = parse_ovs_vsctl_show(sample("ovs-vsctl-show-gre.txt"), "x")
    gre = next(port for port in bridges[0].ports if port.name == "gre1").interfaces[0]
    assert gre.option("remote_ip") == "10.0.2.5"
    assert bridges[0].datapath_type is None


def test_show_error_line():
    text = 'Bridge br0\n    Port t1\n        Interface t1\n            type: gre\n            error: "could not add network device t1 to ofproto (No such device)"\n'
    interface = parse_ovs_vsctl_show(text, "x")[0].ports[0].interfaces[0]
    assert interface.error == "could not add network device t1 to ofproto (No such device)"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("    Port p1\n", 1),
        ("Bridge br0\n        Interface i1\n", 2),
        ("Bridge br0\n Port p\n  Interface i\n   options: {remote_ip=}x\n", 4),
        ("Bridge br0\n  something odd here\n", 2),
        ('Bridge "br0\n', 1),
    ],
)
def test_show_malformed_names_line(text, line):
    with pytest.raises(ParseError) as raised:
        parse_ovs_vsctl_show(text, "show.txt")
    assert raised.value.line == line


def test_dump_missing_table_rejected():
    first_line = sample("ovsdb-dump-two-bridges.json").splitlines()[0]
    with pytest.raises(ParseError) as raised:
        parse_ovs_json(first_line, "dump.json")
    assert "table is missing" in raised.value.message


def test_dump_truncated_names_line():
    text = sample("ovsdb-dump-two-bridges.json")
    cut = text[: text.index('"Interface table"') + 40]
    with pytest.raises(ParseError) as raised:
        parse_ovs_json(cut, "dump.json")
    assert raised.value.line == cut.count("\n") + 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_show_random_text(text):
    parse_or_reject(parse_ovs_vsctl_show, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("ovs-vsctl-show-two-bridges.txt")))
def test_fuzz_show_mutated_sample(text):
    parse_or_reject(parse_ovs_vsctl_show, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("ovsdb-dump-two-bridges.json")))
def test_fuzz_dump_mutated_sample(text):
    parse_or_reject(parse_ovs_json, text)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.text(max_size=5) | st.integers(),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=20,
    )
)
def test_fuzz_dump_random_json_rows(row):
    table = {
        "caption": "Interface table",
        "headings": ["_uuid", "name", "type", "options"],
        "data": [[row, row, row, row]],
    }
    others = '{"caption":"Bridge table","headings":["_uuid"],"data":[]}\n{"caption":"Port table","headings":["_uuid"],"data":[]}\n'
    parse_or_reject(parse_ovs_json, others + json.dumps(table))
