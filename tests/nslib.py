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
from pathlib import Path

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


def build_docker_pair(lan: Namespace, a: Namespace, b: Namespace) -> None:
    """Build two Docker-style nodes on one LAN: eth0 192.168.100.1N/24, docker0 10.244.N.1/24 with one veth port.

    Forwarding is on, and node ``a`` routes node ``b``'s pod subnet via its LAN address.
    """
    lan.run("ip link add br-lan type bridge && ip link set br-lan up")
    for index, node in ((1, a), (2, b)):
        add_docker_node(lan, node, index)
    a.run("ip route add 10.244.2.0/24 via 192.168.100.12 dev eth0")


def add_docker_node(lan: Namespace, node: Namespace, index: int) -> None:
    """Attach a Docker-style node to the LAN bridge of :func:`build_docker_pair`: eth0 192.168.100.1N/24, docker0 10.244.N.1/24."""
    sh(f"ip -n {node.name} link add eth0 type veth peer name lan{index} netns {lan.name}")
    lan.run(f"ip link set lan{index} master br-lan up")
    node.run(f"ip addr add 192.168.100.1{index}/24 dev eth0 && ip link set eth0 up")
    node.run(
        f"ip link add docker0 type bridge && ip addr add 10.244.{index}.1/24 dev docker0 && "
        f"ip link add vp{index} type veth peer name vp{index}b && ip link set vp{index} master docker0 && "
        f"ip link set vp{index} up && ip link set vp{index}b up && ip link set docker0 up"
    )
    node.run("sysctl -qw net.ipv4.ip_forward=1")


#: The program each backend's lab cannot start without.
LAB_NEEDS = {
    "flannel-vxlan": "etcd",
    "direct-routing": "etcd",
    "calico-bgp": "bird",
    "frr": "vtysh",
    "ovs-gre": "ovs-vswitchd",
    "ovs-vxlan": "ovs-vswitchd",
}


def lab_available(backend: str) -> bool:
    """Tell whether the program a backend's lab needs is installed (also under /usr/sbin, off a user's PATH)."""
    program = LAB_NEEDS[backend]
    return shutil.which(program) is not None or Path("/usr/sbin", program).exists()
