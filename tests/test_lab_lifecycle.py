"""``lab up``/``lab down`` as a whole: clean removal (also after a crash), two labs side by side, 8 nodes, bad input."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nslib
import pytest
from cli_runner import invoke

from netdoctor.lab import bird
from netdoctor.lab.faults import break_fault, heal
from netdoctor.lab.lifecycle import down, up
from netdoctor.lab.ping import ping_matrix
from netdoctor.lab.run import list_netns, pid_alive, run
from netdoctor.lab.state import STATE_FILE, LabError, load_state

pytestmark = [nslib.needs_root, pytest.mark.netns]

_RUN = nslib.PREFIX.split("-")[1][-5:]


@pytest.fixture
def base() -> Iterator[Path]:
    """A world-searchable directory for state directories, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="nd-lab-test-"))
    path.chmod(0o755)
    yield path
    for child in path.iterdir():
        down(child.name, child)
    path.rmdir()


def test_down_removes_everything(base: Path) -> None:
    name = f"td{_RUN}"
    state = up(name, "calico-bgp", nodes=2, pods_per_node=1, state_dir=base / name)
    pids = dict(state.pids)
    assert len(pids) == 2
    removed = down(name, base / name)
    assert f"namespace nd-{name}-lan" in removed
    assert list_netns(f"nd-{name}-") == []
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not (base / name).exists()


def test_down_after_crash_without_pids(base: Path) -> None:
    name = f"tc{_RUN}"
    state = up(name, "flannel-vxlan", nodes=2, pods_per_node=1, state_dir=base / name)
    etcd_pid = state.pids["etcd"]
    # A crash before the PIDs were saved: only the PID files under the state directory remain.
    document = json.loads((base / name / STATE_FILE).read_text())
    document["pids"] = {}
    (base / name / STATE_FILE).write_text(json.dumps(document))
    down(name, base / name)
    assert not pid_alive(etcd_pid)
    assert list_netns(f"nd-{name}-") == []


def test_down_without_state_file(base: Path) -> None:
    name = f"ts{_RUN}"
    state = up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)
    (base / name / STATE_FILE).unlink()
    down(name, base / name)
    assert not pid_alive(state.pids["etcd"])
    assert list_netns(f"nd-{name}-") == []
    assert not (base / name).exists()


def test_down_without_state_or_pid_files(base: Path) -> None:
    name = f"tp{_RUN}"
    # etcd runs outside the lab's namespaces, so only its command line still leads to it.
    state = up(name, "flannel-vxlan", nodes=2, pods_per_node=1, state_dir=base / name)
    (base / name / STATE_FILE).unlink()
    for pid_file in (base / name).rglob("*.pid"):
        pid_file.unlink()
    down(name, base / name)
    assert not any(pid_alive(pid) for pid in state.pids.values())
    assert not (base / name).exists()


def test_two_labs_coexist(base: Path) -> None:
    first = up(f"ta{_RUN}", "flannel-vxlan", nodes=2, pods_per_node=1, state_dir=base / f"ta{_RUN}")
    second = up(f"tb{_RUN}", "flannel-vxlan", nodes=2, pods_per_node=1, state_dir=base / f"tb{_RUN}")
    assert first.etcd_endpoint != second.etcd_endpoint
    down(first.name, first.state_dir)
    assert list_netns(f"nd-{first.name}-") == []
    assert all(result.ok for result in ping_matrix(second.plan).values())


def test_up_twice_is_rejected(base: Path) -> None:
    name = f"tu{_RUN}"
    up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)
    with pytest.raises(LabError, match="already exists"):
        up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)


def test_eight_node_lab(base: Path) -> None:
    name = f"t8{_RUN}"
    state = up(name, "flannel-vxlan", nodes=8, pods_per_node=2, state_dir=base / name)
    matrix = ping_matrix(state.plan)
    assert len(matrix) == 16 * 15
    assert [pair for pair, result in matrix.items() if not result.ok] == []
    fdb = nslib.sh(f"bridge -n nd-{name}-node1 fdb show dev flannel.1").stdout
    assert fdb.count("permanent") == 7


def test_cli_up_status_down(base: Path) -> None:
    name = f"tl{_RUN}"
    arguments = ["--name", name, "--state-dir", str(base / name)]
    result = invoke("lab", "up", "--backend", "direct-routing", "--nodes", "2", "--pods", "1", *arguments)
    assert result.exit_code == 0, result.output
    assert "node2" in result.output
    result = invoke("lab", "status", *arguments)
    assert result.exit_code == 0, result.output
    assert "ping matrix: 2/2 pod pairs answer" in result.output
    result = invoke("lab", "break", "bgp-peer-down", *arguments)
    assert result.exit_code == 2
    assert "runs no BGP sessions" in result.output
    result = invoke("lab", "break", "no-such-fault", *arguments)
    assert result.exit_code == 2
    assert "unknown fault 'no-such-fault'" in result.output
    result = invoke("lab", "down", *arguments)
    assert result.exit_code == 0, result.output
    assert list_netns(f"nd-{name}-") == []


def test_status_of_missing_lab(base: Path) -> None:
    result = invoke("lab", "status", "--name", "nolab", "--state-dir", str(base / "nolab"))
    assert result.exit_code == 2
    assert "no lab state at" in result.output
    assert "Traceback" not in result.output


def test_heal_after_fix_removed_blackhole(base: Path) -> None:
    name = f"th{_RUN}"
    state = up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)
    break_fault(state, "blackhole-route", "node2")
    destination = f"{state.plan.node('node1').pods[0].address}/32"
    netns = state.plan.node("node2").netns
    # 'netdoctor fix --apply' deletes the blackhole, so heal finds it gone.
    subprocess.run(["ip", "-n", netns, "route", "del", "blackhole", destination], check=True)

    assert heal(state) == ["blackhole-route on node2"]
    assert state.faults == []
    assert "blackhole" not in subprocess.run(
        ["ip", "-n", netns, "route", "show", destination], check=True, capture_output=True, text=True).stdout


def test_heal_removes_blackhole(base: Path) -> None:
    name = f"tb{_RUN}"
    state = up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)
    break_fault(state, "blackhole-route", "node2")
    destination = f"{state.plan.node('node1').pods[0].address}/32"
    netns = state.plan.node("node2").netns

    assert heal(state) == ["blackhole-route on node2"]
    assert "blackhole" not in subprocess.run(
        ["ip", "-n", netns, "route", "show", destination], check=True, capture_output=True, text=True).stdout


def test_heal_after_fix_added_tunnel(base: Path) -> None:
    name = f"tt{_RUN}"
    state = up(name, "ovs-vxlan", nodes=2, pods_per_node=1, state_dir=base / name)
    break_fault(state, "tunnel-mesh-incomplete", "node2")
    node2 = state.plan.node("node2")
    database = f"--db=unix:{base / name}/nodes/node1/run/openvswitch/db.sock"
    # 'netdoctor fix --apply' adds a tunnel port of its own naming to node1.
    subprocess.run(["ovs-vsctl", database, "add-port", "br-int", "vxlan0", "--", "set", "interface", "vxlan0",
                    "type=vxlan", f"options:remote_ip={node2.lan_ip}"], check=True)

    assert heal(state) == ["tunnel-mesh-incomplete on node2"]
    ports = subprocess.run(["ovs-vsctl", database, "list-ports", "br-int"], check=True, capture_output=True,
                           text=True).stdout.split()
    assert "vxlan0" not in ports
    assert "vxlan-node2" in ports


def test_heal_after_hold_timers_expired(base: Path) -> None:
    name = f"tk{_RUN}"
    state = up(name, "calico-bgp", nodes=3, pods_per_node=1, state_dir=base / name)
    break_fault(state, "pod-network-overlaps-host", "node2")
    # node2 now routes its LAN peers into a pod. BIRD may keep sending through eth0 all the same, so BGP is also
    # dropped on node2 until both ends of node1's session time out.
    node1, node2 = state.plan.node("node1"), state.plan.node("node2")
    rules = [f"{chain} -p tcp --{port} 179 -j DROP" for chain in ("INPUT", "OUTPUT") for port in ("sport", "dport")]
    for rule in rules:
        nslib.sh(f"ip netns exec {node2.netns} iptables -I {rule}")
    deadline = time.monotonic() + 30
    protocols = ""
    while "Hold timer expired" not in protocols and time.monotonic() < deadline:
        time.sleep(0.5)
        protocols = bird.birdc(state, node1, "show protocols")
    for rule in rules:
        nslib.sh(f"ip netns exec {node2.netns} iptables -D {rule}")
    assert "Hold timer expired" in protocols, protocols

    # Both ends of the session wait out BIRD's error wait time unless the heal restarts both.
    assert heal(state) == ["pod-network-overlaps-host on node2"]
    assert [pair for pair, result in ping_matrix(state.plan).items() if not result.ok] == []


def test_heal_resumes_at_the_failed_step(base: Path) -> None:
    name = f"tr{_RUN}"
    state = up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)
    break_fault(state, "bridge-outside-overlay-subnet", "node2")
    undo = state.faults[0]["undo"]
    # A failing step right after the first one, which gives the bridge its address back.
    undo.insert(1, {"run": ["false"]})
    steps = len(undo)
    state.save()
    with pytest.raises(LabError):
        heal(state)
    saved = load_state(base / name)
    assert saved.faults[0]["undo"][0] == {"run": ["false"]}
    assert len(saved.faults[0]["undo"]) == steps - 1

    saved.faults[0]["undo"].pop(0)
    assert heal(saved) == ["bridge-outside-overlay-subnet on node2"]
    assert load_state(base / name).faults == []
    assert [pair for pair, result in ping_matrix(saved.plan).items() if not result.ok] == []


def test_down_of_lab_that_never_existed(base: Path) -> None:
    name = f"tn{_RUN}"
    result = invoke("lab", "down", "--name", name, "--state-dir", str(base / name))

    assert result.exit_code == 0, result.output
    assert result.output == f"lab {name}: nothing to remove: no state directory, namespace or process of this lab exists\n"


def test_programs_found_in_system_directories(monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/usr/sbin/bridge").exists() and not Path("/sbin/bridge").exists():
        pytest.skip("bridge is not installed in /usr/sbin or /sbin")
    # A user's PATH often lacks /usr/sbin, where Debian installs bridge.
    monkeypatch.setenv("PATH", "/nonexistent")

    assert run(["bridge", "-V"]).startswith("bridge utility")
    with pytest.raises(LabError, match="nd-no-such-program was not found on PATH or in /usr/sbin or /sbin; install it"):
        run(["nd-no-such-program"])


def test_heal_after_the_fault_was_repaired_by_hand(base: Path) -> None:
    name = f"tf{_RUN}"
    state = up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)
    node2 = state.plan.node("node2")
    break_fault(state, "bridge-outside-overlay-subnet", "node2")
    # The fix a person makes: the bridge's own address back, Docker's gone, and the pod's default route again.
    prefix = node2.subnet.split("/")[1]
    nslib.sh(f"ip -n {node2.netns} addr del 172.17.0.1/16 dev docker0")
    nslib.sh(f"ip -n {node2.netns} addr add {node2.gateway}/{prefix} dev docker0")
    nslib.sh(f"ip -n {node2.pods[0].netns} route replace default via {node2.gateway}")

    assert heal(state) == ["bridge-outside-overlay-subnet on node2"]
    assert [pair for pair, result in ping_matrix(state.plan).items() if not result.ok] == []


def test_heal_names_the_fault_and_the_failed_line(base: Path) -> None:
    name = f"tg{_RUN}"
    state = up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)
    break_fault(state, "blackhole-route", "node1")
    break_fault(state, "mtu-mismatch", "node2")
    netns = state.plan.node("node1").netns
    # A heal line that fails for another reason than the change being there already, in the older fault.
    state.faults[0]["undo"].insert(0, {"ip": netns, "lines": ["link set nd-no-such-link mtu 1500"]})
    state.save()

    with pytest.raises(LabError) as raised:
        heal(state)

    message = str(raised.value)
    assert message.startswith(
        f"healing blackhole-route on node1 failed: ip -n {netns}: 'link set nd-no-such-link mtu 1500' failed: ")
    assert "; healed before it: mtu-mismatch on node2. 'netdoctor lab heal' starts again at this step" in message


def test_heal_of_stacked_bgp_faults(base: Path) -> None:
    name = f"tq{_RUN}"
    state = up(name, "calico-bgp", nodes=3, pods_per_node=1, state_dir=base / name)
    # Healed newest first: while the session stays down, BGP cannot converge after ip-forward-disabled's heal.
    break_fault(state, "bgp-peer-down", "node2")
    break_fault(state, "ip-forward-disabled", "node2")

    assert heal(state) == ["ip-forward-disabled on node2", "bgp-peer-down on node2"]
    assert [pair for pair, result in ping_matrix(state.plan).items() if not result.ok] == []


def test_route_missing_on_a_route_already_gone(base: Path) -> None:
    name = f"tg{_RUN}"
    state = up(name, "direct-routing", nodes=2, pods_per_node=1, state_dir=base / name)
    node1, node2 = state.plan.node("node1"), state.plan.node("node2")
    # What bgp-peer-down does to the routes of a BGP lab, done by hand.
    nslib.sh(f"ip -n {node1.netns} route del {node2.subnet}")

    with pytest.raises(LabError, match=f"node1 has no route to node2's pod subnet {node2.subnet} to delete; "
                                       "no fault is active, so it was removed outside the lab"):
        break_fault(state, "route-missing", "node1")
    assert load_state(base / name).faults == []
