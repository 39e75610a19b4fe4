"""Collect configuration files under the node's root: flannel's ``subnet.env`` and Docker's ``daemon.json``.

A file that does not exist is not a gap, because most nodes run only one of
flannel and Docker: the part stays None. A file that exists but cannot be read
or parsed is a gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from netdoctor.capture import ParseError
from netdoctor.capture.docker import parse_docker_daemon
from netdoctor.capture.flannel import parse_subnet_env
from netdoctor.collect import Part
from netdoctor.model.node import Provenance
from netdoctor.target import CollectionError, Target

logger = logging.getLogger(__name__)

CHANGES_HOST = False

#: (node path, snapshot field, parser)
FILES: tuple[tuple[str, str, Callable[[str, str], Any]], ...] = (
    ("/run/flannel/subnet.env", "flannel_env", parse_subnet_env),
    ("/etc/docker/daemon.json", "docker", parse_docker_daemon),
)


def collect(target: Target) -> Part:
    """Read and parse each file that exists."""
    part = Part()
    for path, field_name, parser in FILES:
        try:
            text = target.read_file(path)
        except CollectionError as error:
            part.gap(target, field_name, str(error))
            continue
        if text is None:
            logger.debug("%s: %s does not exist", target.name, path)
            continue
        try:
            part.values[field_name] = parser(text, path)
        except ParseError as error:
            part.gap(target, field_name, f"cannot parse the file: {error}")
            continue
        part.provenance.append(Provenance(source=field_name, origin=str(target.path(path))))
    return part
