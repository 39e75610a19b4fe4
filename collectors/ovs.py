"""Collect the Open vSwitch bridges, ports and tunnel interfaces from the OVS database.

The database is read with ``ovsdb-client dump --format=json`` through the unix
socket under the node's root (``/run/openvswitch/db.sock`` or
``/var/run/openvswitch/db.sock``), so a test can point a target at an
ovsdb-server running in a temporary directory. Without ovsdb-client or a
socket, the node has no OVS to read and a gap records why.
"""

from __future__ import annotations

import logging

from netdoctor.capture import ParseError
from netdoctor.capture.ovs import parse_ovs_json
from netdoctor.collect import Part
from netdoctor.model.node import Provenance
from netdoctor.target import CollectionError, Target

logger = logging.getLogger(__name__)

CHANGES_HOST = False

SOCKETS = ("/run/openvswitch/db.sock", "/var/run/openvswitch/db.sock")

#: Seconds ovsdb-client waits for the database before giving up.
DB_TIMEOUT = 5


def collect(target: Target) -> Part:
    """Dump the Open_vSwitch database, or record why it could not be read."""
    part = Part()
    socket = next((target.path(path) for path in SOCKETS if target.path(path).exists()), None)
    if socket is None:
        # Open vSwitch is optional: a node without a running ovsdb-server has no OVS part and no gap.
        part.meta["ovs"] = f"not running (no database socket at {target.path(SOCKETS[0])})"
        return part
    if target.which("ovsdb-client") is None:
        part.gap(target, "ovs", f"ovsdb-server runs ({socket}) but ovsdb-client is not installed here")
        return part

    argv = [
        "ovsdb-client",
        f"--timeout={DB_TIMEOUT}",
        "dump",
        "--format=json",
        f"unix:{socket}",
        "Open_vSwitch",
    ]
    command = " ".join(argv)
    try:
        result = target.run(argv)
    except CollectionError as error:
        part.gap(target, "ovs", str(error))
        return part
    if result.returncode != 0:
        reason = (
            result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no error output"
        )
        part.gap(target, "ovs", f"{command} failed with exit status {result.returncode}: {reason}")
        return part
    try:
        bridges = parse_ovs_json(result.stdout, command)
    except ParseError as error:
        part.gap(target, "ovs", f"cannot parse the database dump: {error}")
        return part
    part.values["ovs"] = bridges
    part.provenance.append(Provenance(source="ovs", origin=command))
    return part
