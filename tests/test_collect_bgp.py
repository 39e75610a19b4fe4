"""Tests of the BGP collector against real BIRD daemons in two namespaces."""

from __future__ import annotations

import os
import shutil
import time

import nslib
import pytest

from netdoctor.collectors import bgp
from netdoctor.target import Target

pytestmark = [nslib.needs_root, pytest.mark.netns]

needs_bird = pytest.mark.skipif(
    shutil.which("bird", path=os.environ.get("PATH", "") + ":/usr/sbin") is None,
    reason="needs BIRD 2",
)

CONFIG = """
router id 10.99.0.{me};
protocol device {{ }}
protocol bgp peer{other} {{
    local 10.99.0.{me} as 64512;
    neighbor 10.99.0.{other} as 64512;
    direct;
    connect retry time 1;
    ipv4 {{ import none; export none; }};
}}
protocol bgp ghost {{
    local 10.99.0.{me} as 64512;
    neighbor 10.99.0.250 as 64512;
    direct;
    connect retry time 1;
    ipv4 {{ import none; export none; }};
}}
"""


def start_bird(namespace: nslib.Namespace, root, me: int, other: int) -> None:
    rundir = root / "run" / "bird"
    rundir.mkdir(parents=True)
    config = root / "bird.conf"
    config.write_text(CONFIG.format(me=me, other=other))
    namespace.run(f"bird -c {config} -s {rundir / 'bird.ctl'} -P {root / 'bird.pid'}")


def wait_established(target: Target, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        part = bgp.collect(target)
        sessions = {session.name: session for session in part.values.get("bgp", ())}
        if (
            sessions.get("peer2") is not None
            and sessions["peer2"].established
            or time.monotonic() > deadline
        ):
            return {"part": part, "sessions": sessions}
        time.sleep(0.5)


@needs_bird
def test_bird_sessions_collected(tmp_path):
    with nslib.namespaces("b1", "b2") as (one, two):
        nslib.sh(f"ip -n {one.name} link add eth0 type veth peer name eth0 netns {two.name}")
        for index, namespace in ((1, one), (2, two)):
            namespace.ip(f"addr add 10.99.0.{index}/24 dev eth0")
            namespace.ip("link set eth0 up")
        start_bird(one, tmp_path / "n1", 1, 2)
        start_bird(two, tmp_path / "n2", 2, 1)

        result = wait_established(Target(name="n1", netns=one.name, root=tmp_path / "n1"))

    sessions = result["sessions"]
    assert set(sessions) == {"peer2", "ghost"}
    assert sessions["peer2"].established
    assert sessions["peer2"].daemon == "bird"
    assert not sessions["ghost"].established
    assert sessions["ghost"].state in ("Active", "Connect", "start")
    sources = [gap.source for gap in result["part"].gaps]
    assert "bgp:bird" not in sources
    assert result["part"].meta["bird socket"] == "/run/bird/bird.ctl"


def test_nothing_running_means_no_gap(tmp_path):
    part = bgp.collect(Target(name="n1", root=tmp_path))
    assert "bgp" not in part.values
    assert part.gaps == []
    assert part.meta["bird"].startswith("not running (no control socket at ")
    assert part.meta["frr"].startswith("not running (no bgpd.vty in ")


@needs_bird
def test_stale_socket_is_gap(tmp_path):
    (tmp_path / "run" / "bird").mkdir(parents=True)
    (tmp_path / "run" / "bird" / "bird.ctl").write_text("")
    part = bgp.collect(Target(name="n1", root=tmp_path))
    bird_gaps = [gap.reason for gap in part.gaps if gap.source == "bgp:bird"]
    assert len(bird_gaps) == 1
    assert "failed" in bird_gaps[0]
