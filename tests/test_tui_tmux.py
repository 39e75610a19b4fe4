"""A real-terminal test: tmux runs the TUI on a bundle, receives keys, and capture-pane shows the screen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tui_support

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (scripts/setup installs it)")

CASE = tui_support.CASES / "calico-stale-blackhole-for-moved-block"


def _capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True).stdout


def _wait_for(session: str, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear within {timeout} s; the screen was:\n{screen}")


@pytest.fixture
def session() -> Iterator[str]:
    name = f"nd-tui-{os.getpid()}"
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, check=False)


def test_bundle_in_tmux(session: str) -> None:
    if not CASE.is_dir():
        pytest.skip(f"capture case {CASE.name} is not present")
    # The installed console script, started outside the checkout: "python -m" from the
    # repository would import ./netdoctor, where the catalogue folders are not subpackages.
    netdoctor = Path(sys.executable).parent / "netdoctor"
    command = f"{netdoctor} --bundle {CASE}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-c", "/", "-x", "120", "-y", "36", command], check=True
    )

    screen = _wait_for(session, "blackhole-route")
    assert "cluster (3 nodes)" in screen
    assert "node1 calico" in screen

    subprocess.run(["tmux", "send-keys", "-t", session, "2"], check=True)
    screen = _wait_for(session, "pairs broken")
    assert "1 of 6 pairs broken: node1→node3" in screen

    subprocess.run(["tmux", "send-keys", "-t", session, "?"], check=True)
    _wait_for(session, "netdoctor keys")

    subprocess.run(["tmux", "send-keys", "-t", session, "Escape"], check=True)
    screen = _wait_for(session, "pairs broken")
    assert "netdoctor keys" not in screen
    subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True, check=False)
        if alive.returncode != 0:
            break
        time.sleep(0.2)
    assert alive.returncode != 0, "the TUI did not exit on q"
