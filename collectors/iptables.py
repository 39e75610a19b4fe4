"""Collect the IPv4 and IPv6 firewall rules with ``iptables-save -c`` and ``ip6tables-save -c``.

``iptables-save`` only reads the ruleset. ``iptables -L`` is never used, because
listing can load kernel modules and so change the host.
"""

from __future__ import annotations

import logging

from netdoctor.capture import ParseError
from netdoctor.capture.iptables import parse_iptables_save
from netdoctor.collect import Part
from netdoctor.model.node import Provenance
from netdoctor.target import CollectionError, Target

logger = logging.getLogger(__name__)

#: (program, snapshot field, address family)
COMMANDS = (("iptables-save", "iptables", 4), ("ip6tables-save", "ip6tables", 6))

#: Whether this collector can change the node: it cannot, it only reads.
CHANGES_HOST = False


def collect(target: Target) -> Part:
    """Read both rulesets; each one that cannot be read becomes a gap."""
    part = Part()
    for program, field_name, family in COMMANDS:
        argv = [program, "-c"]
        command = " ".join(argv)
        if target.which(program) is None:
            part.gap(target, field_name, f"{program} is not installed")
            continue
        try:
            result = target.run(argv)
        except CollectionError as error:
            part.gap(target, field_name, str(error))
            continue
        if result.returncode != 0:
            reason = (
                result.stderr.strip().splitlines()[-1]
                if result.stderr.strip()
                else "no error output"
            )
            part.gap(
                target,
                field_name,
                f"{command} failed with exit status {result.returncode}: {reason}",
            )
            continue
        if result.truncated:
            part.gap(target, field_name, f"{command} printed more than {target.output_cap} bytes")
            continue
        try:
            ruleset = parse_iptables_save(result.stdout, command, family=family)
        except ParseError as error:
            part.gap(target, field_name, f"cannot parse the output: {error}")
            continue
        part.values[field_name] = ruleset
        part.provenance.append(Provenance(source=field_name, origin=command))
    return part
