"""``--firewall firewalld``: one firewalld per node on a private D-Bus, its config under the node's directory.

Each node gets its own ``dbus-daemon`` (a system bus listening on
``<node>/run/dbus/system_bus_socket``) and a ``firewalld --nofork`` inside its
namespace, started with ``--system-config <node>/etc/firewalld``, so neither the
host's bus nor ``/etc/firewalld`` is touched. firewalld's nftables table then
exists only in the node's namespace.

The zones are written as XML before firewalld starts, as a node's persisted
config: ``public`` holds the LAN interface and opens the overlay and BGP ports,
``trusted`` holds the pod network as a source and the pod and overlay devices.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from netdoctor.lab.plan import FLANNEL_PORT, LabPlan, NodePlan
from netdoctor.lab.run import in_netns, kill_pid
from netdoctor.lab.state import LabError, LabState

logger = logging.getLogger(__name__)

SYSTEM_CONFIG = Path("/etc/firewalld")
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def lan_device(plan: LabPlan) -> str:
    """Return the device that holds a node's LAN address: ``br-phy`` under OVS, else ``eth0``."""
    return "br-phy" if plan.backend.startswith("ovs-") else "eth0"


def pod_devices(plan: LabPlan) -> list[str]:
    """Return the pod and overlay devices that go into the trusted zone."""
    if plan.backend == "flannel-vxlan":
        return ["docker0", "flannel.1"]
    if plan.backend.startswith("ovs-"):
        return ["docker0", "br-int"]
    if plan.backend == "calico-bgp":
        return []
    return ["docker0"]


def zone_files(plan: LabPlan) -> dict[str, str]:
    """Return the ``public`` and ``trusted`` zone XML of a node."""
    public = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<zone>",
        "  <short>Public</short>",
        f'  <interface name="{lan_device(plan)}"/>',
        '  <service name="ssh"/>',
        f'  <port port="{FLANNEL_PORT}" protocol="udp"/>',
        '  <port port="4789" protocol="udp"/>',
        '  <port port="179" protocol="tcp"/>',
        '  <protocol value="gre"/>',
        "  <masquerade/>",
        "  <forward/>",
        "</zone>",
    ]
    trusted = ['<?xml version="1.0" encoding="utf-8"?>', '<zone target="ACCEPT">', "  <short>Trusted</short>"]
    trusted += [f'  <interface name="{device}"/>' for device in pod_devices(plan)]
    trusted += [f'  <source address="{plan.pod_network}"/>', "  <forward/>", "</zone>"]
    return {"public.xml": "\n".join(public) + "\n", "trusted.xml": "\n".join(trusted) + "\n"}


def bus_socket(state: LabState, node: NodePlan) -> Path:
    """Return the path of a node's private system bus socket."""
    return state.node_path(node.name, "/run/dbus/system_bus_socket")


def bus_environment(state: LabState, node: NodePlan) -> dict[str, str]:
    """Return the environment that points ``firewall-cmd`` at a node's firewalld."""
    return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={bus_socket(state, node)}"}


def write_config(state: LabState, node: NodePlan) -> Path:
    """Copy the host's firewalld defaults under the node and write its zones; return the config directory."""
    if not SYSTEM_CONFIG.is_dir() or shutil.which("firewalld") is None:
        raise LabError("firewalld is not installed: install the firewalld package, or use --firewall iptables")
    config = state.node_path(node.name, "/etc/firewalld")
    shutil.copytree(SYSTEM_CONFIG, config, dirs_exist_ok=True)
    for name, text in zone_files(state.plan).items():
        (config / "zones" / name).write_text(text)
    return config


def start_bus(state: LabState, node: NodePlan) -> None:
    """Start a node's private system bus and record its PID."""
    socket = bus_socket(state, node)
    socket.parent.mkdir(parents=True, exist_ok=True)
    config = state.node_path(node.name, "/etc/dbus-1/system.conf")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(BUS_CONFIG.format(socket=socket))
    output = in_netns(node.netns, ["dbus-daemon", f"--config-file={config}", "--fork", "--print-pid", "--nopidfile"])
    state.pids[f"{node.name}/dbus"] = int(output.split()[0])
    state.save()


def start_firewalld(state: LabState, node: NodePlan, config: Path) -> subprocess.Popen[bytes]:
    """Start firewalld in a node's namespace on its private bus and record its PID."""
    log_dir = state.node_path(node.name, "/var/log")
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = ["ip", "netns", "exec", node.netns, "firewalld", "--nofork", "--nopid", "--system-config", str(config),
            "--log-target", "file", "--log-file", str(log_dir / "firewalld")]  # fmt: skip
    process = subprocess.Popen(
        argv, env=bus_environment(state, node), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    # ip netns exec replaces itself with firewalld, so the PID is firewalld's.
    state.pids[f"{node.name}/firewalld"] = process.pid
    state.save()
    return process


def wait_running(state: LabState, node: NodePlan, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``firewall-cmd --state`` returns ``running``; raise :class:`LabError` on exit or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"{node.name}: firewalld exited with status {process.returncode}; see var/log/firewalld under the node")
        completed = subprocess.run(
            ["firewall-cmd", "--state"], env=bus_environment(state, node), capture_output=True, text=True, check=False
        )
        if completed.stdout.strip() == "running":
            return
        time.sleep(0.1)
    kill_pid(process.pid)
    raise LabError(f"{node.name}: firewalld was not running after {timeout:g} s; see var/log/firewalld under the node")


def start(state: LabState) -> None:
    """Start a bus and a firewalld on every node, all at once, and wait until each is running."""
    processes = []
    for node in state.plan.nodes:
        config = write_config(state, node)
        start_bus(state, node)
        processes.append((node, start_firewalld(state, node, config)))
    for node, process in processes:
        wait_running(state, node, process)
