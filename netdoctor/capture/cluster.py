"""Parse cluster-level captures: etcd keys and ``kubectl get nodes -o json``.

:func:`load_json` is shared by the parsers of JSON captures so that every
malformed JSON document gives the same kind of error, with its line.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from netdoctor.capture import TOO_MANY_DIGITS, ParseError
from netdoctor.model.addr import AddressError, parse_ip, parse_prefix
from netdoctor.model.cluster import EtcdData, KubeNode

logger = logging.getLogger(__name__)

#: Annotation prefixes that describe the pod network of a node.
NETWORK_ANNOTATION_PREFIXES = ("flannel.alpha.coreos.com/", "projectcalico.org/")


def load_json(text: str, source: str) -> Any:
    """Decode one JSON document, raising :class:`ParseError` with the line of the first error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ParseError(
            source, error.lineno, f"invalid JSON: {error.msg} (column {error.colno})"
        ) from None
    except RecursionError:
        raise ParseError(source, None, "invalid JSON: nested too deeply to read") from None
    except ValueError:
        # CPython's default limit on converting decimal text to int raises this while parsing.
        raise ParseError(source, None, TOO_MANY_DIGITS) from None


def line_of(text: str, needle: str) -> int | None:
    """Return the 1-based line where ``needle`` first appears, to point errors at a JSON key."""
    position = text.find(needle)
    if position < 0:
        return None
    return text.count("\n", 0, position) + 1


def parse_etcd_json(text: str, source: str) -> EtcdData:
    """Parse etcd keys captured as ``{"key": "value", ...}``.

    The output of ``etcdctl get --prefix -w json`` (``{"kvs": [{"key": BASE64,
    "value": BASE64}, ...]}``) is read too. Values must be strings; keys are
    sorted.
    """
    document = load_json(text, source)
    if not isinstance(document, dict):
        raise ParseError(
            source, 1, f"expected a JSON object of key: value pairs, not {type(document).__name__}"
        )

    if "kvs" in document or "header" in document:
        return EtcdData(keys=_etcdctl_pairs(document, text, source), origin=source)

    pairs: list[tuple[str, str]] = []
    for key, value in document.items():
        if not isinstance(value, str):
            raise ParseError(
                source,
                line_of(text, json.dumps(key)),
                f"value of key {key!r} is {type(value).__name__}: expected a string",
            )
        pairs.append((key, value))
    return EtcdData(keys=tuple(sorted(pairs)), origin=source)


def _etcdctl_pairs(document: dict[str, Any], text: str, source: str) -> tuple[tuple[str, str], ...]:
    entries = document.get("kvs") or []
    if not isinstance(entries, list):
        raise ParseError(source, line_of(text, '"kvs"'), "'kvs' must be a list")
    pairs: list[tuple[str, str]] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise ParseError(source, line_of(text, '"kvs"'), f"kvs[{position}] has no 'key' string")
        try:
            key = base64.b64decode(entry["key"], validate=True).decode("utf-8")
            value = base64.b64decode(str(entry.get("value", "")), validate=True).decode("utf-8")
        except ValueError as error:  # binascii.Error and UnicodeDecodeError are ValueErrors
            raise ParseError(
                source, line_of(text, '"kvs"'), f"kvs[{position}] is not base64 UTF-8 text: {error}"
            ) from None
        pairs.append((key, value))
    return tuple(sorted(pairs))


def parse_kube_nodes(text: str, source: str) -> tuple[KubeNode, ...]:
    """Parse ``kubectl get nodes -o json`` (a List, or one Node) into nodes sorted by name."""
    document = load_json(text, source)
    if not isinstance(document, dict):
        raise ParseError(
            source, 1, f"expected a JSON object (a Node or a List), not {type(document).__name__}"
        )

    if "items" in document:
        items = document["items"]
        if not isinstance(items, list):
            raise ParseError(
                source, line_of(text, '"items"'), "'items' must be a list of Node objects"
            )
    else:
        items = [document]

    nodes = [_kube_node(item, position, text, source) for position, item in enumerate(items)]
    names = [node.name for node in nodes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ParseError(
            source, line_of(text, json.dumps(duplicates[0])), f"duplicate node names: {duplicates}"
        )
    return tuple(sorted(nodes, key=lambda node: node.name))


def _kube_node(item: Any, position: int, text: str, source: str) -> KubeNode:
    where = f"items[{position}]"
    if not isinstance(item, dict):
        raise ParseError(source, None, f"{where} is {type(item).__name__}: expected a Node object")
    metadata = _mapping(item.get("metadata"), f"{where}.metadata", text, source)
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ParseError(
            source,
            line_of(text, '"metadata"'),
            f"{where}.metadata.name is missing: every Node needs a name",
        )
    node_line = line_of(text, json.dumps(name))

    spec = _mapping(item.get("spec"), f"node {name}: spec", text, source)
    cidrs = spec.get("podCIDRs")
    if cidrs is None:
        cidrs = [spec["podCIDR"]] if spec.get("podCIDR") else []
    if not isinstance(cidrs, list) or not all(isinstance(cidr, str) for cidr in cidrs):
        raise ParseError(source, node_line, f"node {name}: spec.podCIDRs must be a list of strings")
    for cidr in cidrs:
        try:
            parse_prefix(cidr)
        except AddressError as error:
            raise ParseError(source, node_line, f"node {name}: invalid pod CIDR: {error}") from None

    status = _mapping(item.get("status"), f"node {name}: status", text, source)
    addresses = status.get("addresses") or []
    if not isinstance(addresses, list):
        raise ParseError(source, node_line, f"node {name}: status.addresses must be a list")
    internal = tuple(
        str(entry.get("address"))
        for entry in addresses
        if isinstance(entry, dict) and entry.get("type") == "InternalIP" and entry.get("address")
    )
    for address in internal:
        try:
            parse_ip(address)
        except AddressError as error:
            raise ParseError(source, node_line, f"node {name}: invalid InternalIP: {error}") from None

    annotations = _mapping(
        metadata.get("annotations"), f"node {name}: metadata.annotations", text, source
    )
    network = tuple(
        sorted(
            (key, str(value))
            for key, value in annotations.items()
            if key.startswith(NETWORK_ANNOTATION_PREFIXES)
        )
    )
    return KubeNode(name=name, pod_cidrs=tuple(cidrs), internal_ips=internal, annotations=network)


def _mapping(value: Any, where: str, text: str, source: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError(source, None, f"{where} is {type(value).__name__}: expected an object")
    return value
