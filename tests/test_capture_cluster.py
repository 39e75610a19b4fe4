"""Tests of the etcd and kubectl node parsers."""

from __future__ import annotations

import json

import pytest
from fuzzing import mutations, parse_or_reject
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import sample

from netdoctor.capture import ParseError
from netdoctor.capture.cluster import parse_etcd_json, parse_kube_nodes


def test_etcd_key_value_capture():
    data = parse_etcd_json(sample("etcd-flannel.json"), "etcd.json")
    assert data.origin == "etcd.json"
    assert json.loads(data.get("/kube-centos/network/config"))["Network"] == "172.30.0.0/16"
    assert len(data.with_prefix("/kube-centos/network/subnets/")) == 3
    assert [key for key, _ in data.keys] == sorted(key for key, _ in data.keys)


def test_etcdctl_json_capture():
    data = parse_etcd_json(sample("etcdctl-get-prefix.json"), "etcdctl")
    assert json.loads(data.get("/coreos.com/network/config"))["Network"] == "10.244.0.0/16"
    assert len(data.keys) == 2


def test_etcd_non_string_value_names_line():
    with pytest.raises(ParseError) as raised:
        parse_etcd_json('{\n  "/a": "x",\n  "/b": 5\n}', "etcd.json")
    assert raised.value.line == 3


def test_etcd_bad_base64_rejected():
    with pytest.raises(ParseError):
        parse_etcd_json('{"kvs": [{"key": "!!!", "value": ""}]}', "etcdctl")


def test_kube_nodes_flannel_annotations():
    nodes = parse_kube_nodes(sample("kube-nodes-flannel.json"), "nodes.json")
    assert [node.name for node in nodes] == ["worker-a", "worker-b"]
    worker_b = nodes[1]
    assert worker_b.pod_cidrs == ("10.244.2.0/24", "2001:db8:2::/64")
    assert worker_b.internal_ips == ("198.51.100.12", "2001:db8::12")
    keys = [key for key, _ in worker_b.annotations]
    assert "node.alpha.kubernetes.io/ttl" not in keys
    assert "flannel.alpha.coreos.com/public-ip" in keys
    assert nodes[0].pod_cidrs == ("10.244.1.0/24",)


def test_kube_nodes_calico_capture():
    nodes = parse_kube_nodes(sample("kube-nodes-calico.json"), "nodes.json")
    assert nodes[0].pod_cidrs == ()
    assert dict(nodes[0].annotations)["projectcalico.org/IPv4Address"] == "10.0.0.51/24"
    assert nodes[0].internal_ips == ("10.0.0.51",)


@pytest.mark.parametrize(("spec", "status", "message"), [
    ({"podCIDR": "10.244/24"}, {}, "node n1: invalid pod CIDR: invalid IP address '10.244'"),
    ({"podCIDRs": ["10.244.0.0/24", "010.245.0.0/24"]}, {}, "invalid IP address '010.245.0.0'"),
    ({}, {"addresses": [{"type": "InternalIP", "address": "10.0.0.051"}]},
     "node n1: invalid InternalIP: invalid IP address '10.0.0.051'"),
])
def test_node_address_checked(spec: dict[str, object], status: dict[str, object], message: str) -> None:
    text = json.dumps({"kind": "Node", "metadata": {"name": "n1"}, "spec": spec, "status": status})

    with pytest.raises(ParseError, match=message):
        parse_kube_nodes(text, "node.json")


def test_single_node_object():
    text = '{"kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.0.0/24"}}'
    assert parse_kube_nodes(text, "node.json")[0].pod_cidrs == ("10.244.0.0/24",)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{"items": [\n{"metadata": {}}\n]}', 2),
        ('{"items": 3}', 1),
        ('{"items": [\n{"metadata": {"name": "a"}},\n{"metadata": {"name": "a"}}]}', 2),
        ('{"items": [\n', 2),
    ],
)
def test_kube_nodes_malformed(text, line):
    with pytest.raises(ParseError) as raised:
        parse_kube_nodes(text, "nodes.json")
    assert raised.value.line == line


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text(text):
    parse_or_reject(parse_etcd_json, text)
    parse_or_reject(parse_kube_nodes, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("kube-nodes-flannel.json")))
def test_fuzz_mutated_nodes(text):
    parse_or_reject(parse_kube_nodes, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("etcdctl-get-prefix.json")))
def test_fuzz_mutated_etcd(text):
    parse_or_reject(parse_etcd_json, text)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "items",
                    "metadata",
                    "name",
                    "spec",
                    "podCIDRs",
                    "podCIDR",
                    "status",
                    "addresses",
                    "annotations",
                    "kvs",
                    "key",
                    "value",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_fuzz_random_json(document):
    parse_or_reject(parse_kube_nodes, json.dumps(document))
    parse_or_reject(parse_etcd_json, json.dumps(document))
