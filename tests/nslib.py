"""Throwaway network namespaces for tests.

Every namespace is named ``nd-t<pid>-<name>`` so that tests running in parallel
never collide and a leftover can be traced to its run. Namespaces are deleted on
exit even when the test fails; processes started inside them are killed first,
because a daemon left in a namespace keeps its interfaces alive.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PREFIX = f"nd-t{os.getpid()}-"

#: Marks a test that builds network namespaces: it needs root and iproute2.
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="builds network namespaces: needs root and iproute2"
)


def sh(command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a shell command on the host (for ``ip netns``/``ip -n`` commands only)."""
    return subprocess.run(command, shell=True, check=check, capture_output=True, text=True)


class Namespace:
    """A network namespace created by a test."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace."""
        completed = subprocess.run(
            ["ip", "netns", "exec", self.name, "sh", "-c", command],
            capture_output=True,
            check=False,
            text=True,
        )
        if check and completed.returncode != 0:
            raise RuntimeError(f"in {self.name}: {command!r} failed: {completed.stderr.strip()}")
        return completed

    def ip(self, arguments: str) -> str:
        """Run ``ip -n NAME ARGUMENTS`` and return its output."""
        completed = sh(f"ip -n {shlex.quote(self.name)} {arguments}", check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"ip -n {self.name} {arguments}: {completed.stderr.strip()}")
        return completed.stdout


def delete(name: str) -> None:
    """Kill the processes of a namespace, then delete it."""
    pids = sh(f"ip netns pids {shlex.quote(name)}", check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    sh(f"ip netns delete {shlex.quote(name)}", check=False)


@contextmanager
def namespaces(*names: str) -> Iterator[list[Namespace]]:
    """Create namespaces with loopback up, and delete them on exit."""
    created: list[Namespace] = []
    try:
        for name in names:
            full = PREFIX + name
            sh(f"ip netns add {shlex.quote(full)}")
            created.append(Namespace(full))
            sh(f"ip -n {shlex.quote(full)} link set lo up")
        yield created
    finally:
        for namespace in created:
            delete(namespace.name)


def leftovers() -> list[str]:
    """Return the namespaces of this test run that still exist."""
    listed = sh("ip netns list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listed if line.startswith(PREFIX)]
