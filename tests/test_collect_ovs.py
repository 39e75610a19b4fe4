"""Tests of the OVS collector against a real ovsdb-server in a temporary node root."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from samples import sample

from netdoctor.capture.ovs import parse_ovs_vsctl_show
from netdoctor.collectors import ovs
from netdoctor.target import Target

needs_ovs = pytest.mark.skipif(
    shutil.which("ovsdb-server", path=os.environ.get("PATH", "") + ":/usr/sbin") is None,
    reason="needs Open vSwitch (ovsdb-server)",
)
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


@pytest.fixture
def ovsdb(tmp_path):
    """Run an ovsdb-server whose socket is at ROOT/var/run/openvswitch/db.sock; yield (root, db)."""
    if not SCHEMA.exists():
        pytest.skip("the Open vSwitch schema is not installed")
    rundir = tmp_path / "var" / "run" / "openvswitch"
    rundir.mkdir(parents=True)
    database = tmp_path / "conf.db"
    subprocess.run(["ovsdb-tool", "create", str(database), str(SCHEMA)], check=True)
    pidfile = tmp_path / "ovsdb-server.pid"
    subprocess.run(
        [
            "ovsdb-server",
            str(database),
            f"--remote=punix:{rundir / 'db.sock'}",
            f"--pidfile={pidfile}",
            f"--unixctl={tmp_path / 'ovsdb-server.ctl'}",
            f"--log-file={tmp_path / 'ovsdb-server.log'}",
            "--detach",
        ],
        check=True,
    )
    try:
        yield tmp_path, f"unix:{rundir / 'db.sock'}"
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGTERM)


def vsctl(db: str, *arguments: str) -> str:
    completed = subprocess.run(
        ["ovs-vsctl", f"--db={db}", "--no-wait", *arguments],
        check=True,
        capture_output=True,
        text=True,
    )
    return completed.stdout


@needs_ovs
def test_gre_bridge_collected_and_matches_show(ovsdb):
    root, db = ovsdb
    vsctl(db, "init")
    vsctl(db, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
    vsctl(
        db,
        "add-port",
        "br0",
        "gre1",
        "--",
        "set",
        "interface",
        "gre1",
        "type=gre",
        "options:remote_ip=192.0.2.5",
    )

    part = ovs.collect(Target(name="n1", root=root))

    assert part.gaps == []
    bridges = part.values["ovs"]
    gre = next(port for port in bridges[0].ports if port.name == "gre1").interfaces[0]
    assert gre.type == "gre"
    assert gre.option("remote_ip") == "192.0.2.5"
    assert bridges == parse_ovs_vsctl_show(vsctl(db, "show"), "ovs-vsctl show")


@needs_ovs
def test_empty_database_gives_no_bridges(ovsdb):
    root, db = ovsdb
    vsctl(db, "init")
    part = ovs.collect(Target(name="n1", root=root))
    assert part.values["ovs"] == ()


@needs_ovs
def test_no_socket_means_not_running(tmp_path):
    part = ovs.collect(Target(name="n1", root=tmp_path))
    assert "ovs" not in part.values
    assert part.gaps == []
    assert part.meta["ovs"].startswith("not running (no database socket at ")


def test_sample_show_parses():
    assert parse_ovs_vsctl_show(sample("ovs-vsctl-show-gre.txt"), "x")[0].name == "br0"
