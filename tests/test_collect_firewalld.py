"""Tests of the firewalld collector on a node root written by firewall-offline-cmd."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from netdoctor.collectors import firewalld
from netdoctor.firewall import Packet
from netdoctor.firewalld import evaluate_input
from netdoctor.target import Target

pytestmark = pytest.mark.skipif(
    shutil.which("firewall-offline-cmd") is None or not Path("/usr/lib/firewalld/zones").is_dir(),
    reason="needs firewalld's firewall-offline-cmd and its default configuration",
)


class OfflineRoot(Target):
    """A node root whose firewalld is not running, so the collector reads the XML files."""

    def which(self, program: str) -> str | None:
        return None if program == "firewall-cmd" else super().which(program)


def _offline(root: Path, *arguments: str) -> None:
    command = ["firewall-offline-cmd", "--system-config", str(root / "etc/firewalld"),
               "--default-config", str(root / "usr/lib/firewalld"), *arguments]
    subprocess.run(command, check=True, capture_output=True, text=True)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree("/usr/lib/firewalld", tmp_path / "usr/lib/firewalld")
    (tmp_path / "etc/firewalld").mkdir(parents=True)
    (tmp_path / "etc/firewalld/firewalld.conf").write_text("DefaultZone=public\nFirewallBackend=nftables\n")
    return tmp_path


def test_xml_zone_overrides_default(root: Path) -> None:
    _offline(root, "--zone=public", "--add-port=8472/udp")
    _offline(root, "--zone=public", "--add-interface=eth0")
    _offline(root, "--zone=trusted", "--add-source=10.244.0.0/16")
    _offline(root, "--zone=public", "--add-rich-rule", 'rule family="ipv4" source address="10.0.0.0/8" port '
             'port="179" protocol="tcp" accept')

    part = firewalld.collect(OfflineRoot(name="node1", root=root))
    state = part.values["firewalld"]
    public = state.zone("public")

    assert part.gaps == []
    assert state.default_zone == "public"
    assert public.interfaces == ("eth0",)
    assert public.ports == ("8472/udp",)
    assert public.services == ("ssh", "dhcpv6-client")
    assert public.rich_rules == ('rule family="ipv4" source address="10.0.0.0/8" port port="179" protocol="tcp" accept',)
    assert public.forward is True
    assert state.zone("trusted").sources == ("10.244.0.0/16",)
    assert state.zone("trusted").target == "ACCEPT"
    assert state.zone("block").target == "%%REJECT%%"
    assert {service.name: service.ports for service in state.services}["ssh"] == ("22/tcp",)
    assert part.provenance[0].origin == f"{root / 'etc/firewalld'} over {root / 'usr/lib/firewalld'}"


def test_collected_zone_evaluates(root: Path) -> None:
    _offline(root, "--zone=public", "--add-port=8472/udp")
    _offline(root, "--zone=public", "--add-interface=eth0")
    state = firewalld.collect(OfflineRoot(name="node1", root=root)).values["firewalld"]

    vxlan = Packet("udp", "192.0.2.12", "192.0.2.11", "eth0", sport=40000, dport=8472)
    flannel_udp = Packet("udp", "192.0.2.12", "192.0.2.11", "eth0", sport=40000, dport=8285)
    ssh = Packet("tcp", "192.0.2.12", "192.0.2.11", "eth0", sport=40000, dport=22)

    assert evaluate_input(state, vxlan).verdict == "ACCEPT"
    assert evaluate_input(state, flannel_udp).verdict == "REJECT"
    assert evaluate_input(state, ssh).reason == "zone public (interface eth0): service ssh"


def test_no_firewalld_is_not_a_gap(tmp_path: Path) -> None:
    part = firewalld.collect(OfflineRoot(name="node1", root=tmp_path))

    assert part.values == {}
    assert part.gaps == []


def test_broken_zone_file_is_a_gap(root: Path) -> None:
    (root / "etc/firewalld/zones").mkdir()
    (root / "etc/firewalld/zones/public.xml").write_text("<zone><service name='ssh'>")

    part = firewalld.collect(OfflineRoot(name="node1", root=root))

    assert part.values == {}
    assert part.gaps[0].source == "firewalld"
    assert "cannot read the firewalld XML configuration" in part.gaps[0].reason



def test_host_root_without_running_firewalld_is_skipped() -> None:
    # The host's own /etc/firewalld filters nothing while firewalld is not running.
    part = firewalld.collect(OfflineRoot(name="host", root=Path("/")))

    assert part.values == {}
    assert part.gaps == []


@pytest.mark.parametrize(("text", "priority"), [("-5", -5), ("30", 30), ("²", -1), ("--5", -1), ("", -1)])
def test_policy_priority_read_as_whole_number(text: str, priority: int) -> None:
    root = ElementTree.fromstring(f'<policy priority="{text}" target="ACCEPT"><ingress-zone name="public"/></policy>')

    assert firewalld._policy_from_xml("allow-host", root).priority == priority
