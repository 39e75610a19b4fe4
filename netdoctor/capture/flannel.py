"""Parse ``/run/flannel/subnet.env``, the file flanneld writes for the container runtime."""

from __future__ import annotations

import logging
import re

from netdoctor.capture import ParseError
from netdoctor.model.node import FlannelSubnetEnv
from netdoctor.model.table import decimal_value

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_subnet_env(text: str, source: str) -> FlannelSubnetEnv:
    """Parse the ``KEY=value`` lines of ``subnet.env``.

    ``FLANNEL_NETWORK``, ``FLANNEL_SUBNET``, ``FLANNEL_MTU`` and ``FLANNEL_IPMASQ``
    fill their fields; every line, known or not, is kept in ``values``. An
    ``export`` prefix and quotes around a value are accepted.
    """
    values: list[tuple[str, str]] = []
    fields: dict[str, tuple[int, str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()

        name, separator, value = line.partition("=")
        name = name.strip()
        if not separator or not _NAME.match(name):
            raise ParseError(source, number, f"invalid line {line[:60]!r}: expected 'KEY=value'")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values.append((name, value))
        fields[name] = (number, value)

    mtu: int | None = None
    if "FLANNEL_MTU" in fields:
        number, value = fields["FLANNEL_MTU"]
        mtu = decimal_value(value)
        if mtu is None:
            raise ParseError(
                source, number, f"invalid FLANNEL_MTU {value!r}: expected a whole number of bytes"
            )

    ipmasq: bool | None = None
    if "FLANNEL_IPMASQ" in fields:
        number, value = fields["FLANNEL_IPMASQ"]
        if value.lower() not in ("true", "false"):
            raise ParseError(
                source, number, f"invalid FLANNEL_IPMASQ {value!r}: expected true or false"
            )
        ipmasq = value.lower() == "true"

    return FlannelSubnetEnv(
        network=fields["FLANNEL_NETWORK"][1] if "FLANNEL_NETWORK" in fields else None,
        subnet=fields["FLANNEL_SUBNET"][1] if "FLANNEL_SUBNET" in fields else None,
        mtu=mtu,
        ipmasq=ipmasq,
        values=tuple(values),
    )
