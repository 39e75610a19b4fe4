"""Parse ``/etc/docker/daemon.json`` for the settings that shape the node network."""

from __future__ import annotations

import json
import logging
from typing import Any

from netdoctor.capture import ParseError
from netdoctor.capture.cluster import line_of, load_json
from netdoctor.model.addr import AddressError, parse_prefix
from netdoctor.model.node import DockerDaemon

logger = logging.getLogger(__name__)


def parse_docker_daemon(text: str, source: str) -> DockerDaemon:
    """Parse ``daemon.json``: ``bip``, ``mtu``, ``iptables`` and ``ip-masq``; other keys are ignored.

    An empty file counts as ``{}``, as dockerd reads it.
    """
    document: Any = {} if not text.strip() else load_json(text, source)
    if not isinstance(document, dict):
        raise ParseError(source, 1, f"expected a JSON object, not {type(document).__name__}")

    bip = document.get("bip")
    if bip is not None and not isinstance(bip, str):
        raise _wrong_type(text, source, "bip", 'a CIDR string such as "192.0.2.1/24"')
    if bip:
        try:
            parse_prefix(bip)
        except AddressError as error:
            raise ParseError(source, line_of(text, '"bip"'), f"invalid value of 'bip': {error}; expected a CIDR "
                                                            'such as "192.0.2.1/24"') from None

    mtu = document.get("mtu")
    if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int) or mtu <= 0):
        raise _wrong_type(text, source, "mtu", "a positive whole number of bytes")

    flags: dict[str, bool | None] = {}
    for key in ("iptables", "ip-masq"):
        value = document.get(key)
        if value is not None and not isinstance(value, bool):
            raise _wrong_type(text, source, key, "true or false")
        flags[key] = value

    return DockerDaemon(
        bip=bip, mtu=mtu, iptables=flags["iptables"], ip_masq=flags["ip-masq"], raw=text
    )


def _wrong_type(text: str, source: str, key: str, expected: str) -> ParseError:
    return ParseError(
        source, line_of(text, json.dumps(key)), f"invalid value of {key!r}: expected {expected}"
    )
