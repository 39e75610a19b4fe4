"""Parse ``sysctl -a`` output: ``key = value`` lines, or ``key=value`` as ``sysctl -N``-less tools print."""

from __future__ import annotations

import logging
import re

from netdoctor.capture import ParseError
from netdoctor.model.node import Sysctls

logger = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/:+@]*$")


def parse_sysctl(text: str, source: str) -> Sysctls:
    """Parse ``sysctl -a`` lines into :class:`Sysctls`, keys in dotted form.

    A key written with slashes (``net/ipv4/ip_forward``) becomes dotted. A key
    that already has dots keeps its slashes, because ``sysctl`` prints an
    interface name such as ``flannel.1`` as ``flannel/1`` inside a dotted key.
    Lines that ``sysctl`` prints about keys it could not read
    (``sysctl: permission denied on key ...``) are skipped. A key that appears
    twice keeps its last value.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";", "sysctl:")):
            continue

        key, separator, value = line.partition("=")
        key = key.strip()
        if not separator:
            raise ParseError(source, number, f"invalid line {line[:60]!r}: expected 'key = value'")
        if not _KEY.match(key):
            raise ParseError(
                source,
                number,
                f"invalid key {key[:60]!r}: expected a dotted name such as net.ipv4.ip_forward",
            )
        if "." not in key:
            key = key.strip("/").replace("/", ".")
        values[key] = value.strip()
    return Sysctls(values=tuple(sorted(values.items())))
