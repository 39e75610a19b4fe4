"""``lab up --firewall firewalld``: a firewalld per node on a private bus, really filtering, gone after ``lab down``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nslib
import pytest

from netdoctor.lab.lifecycle import down, up
from netdoctor.lab.ping import ping_matrix
from netdoctor.lab.run import list_netns, pid_alive

pytestmark = [
    nslib.needs_root,
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("firewalld") is None, reason="firewalld is not installed"),
]

_CONNECT = """
import socket, sys
connection = socket.socket()
connection.settimeout(2)
try:
    connection.connect((sys.argv[1], int(sys.argv[2])))
except OSError as error:
    print(error.errno)
else:
    print(0)
"""


def _connect_errno(netns: str, address: str, port: int) -> int:
    completed = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", _CONNECT, address, str(port)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(completed.stdout.strip())


def test_firewalld_lab_filters_and_goes_away() -> None:
    base = Path(tempfile.mkdtemp(prefix="nd-lab-test-"))
    name = f"tf{nslib.PREFIX.split('-')[1][-6:]}"
    state = up(name, "flannel-vxlan", nodes=2, pods_per_node=1, firewall="firewalld", state_dir=base / name)
    try:
        pids = dict(state.pids)
        assert {"node1/firewalld", "node1/dbus", "node2/firewalld", "node2/dbus"} <= set(pids)
        assert all(result.ok for result in ping_matrix(state.plan).values())

        zone = state.node_path("node1", "/etc/firewalld/zones/trusted.xml").read_text()
        assert '<source address="10.244.0.0/16"/>' in zone
        tables = subprocess.run(["ip", "netns", "exec", state.plan.nodes[0].netns, "nft", "list", "tables"],
                                capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert "inet firewalld" in tables

        # A closed port in the public zone is rejected with ICMP admin-prohibited: EHOSTUNREACH, not ECONNREFUSED.
        assert _connect_errno(state.plan.nodes[1].netns, state.plan.nodes[0].lan_ip, 5000) == 113
    finally:
        down(name, base / name)
        base.rmdir()
    assert list_netns(f"nd-{name}-") == []
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not (base / name).exists()
