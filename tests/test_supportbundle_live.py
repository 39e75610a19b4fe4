"""``netdoctor bundle`` against real state: network namespaces, a node root with planted secrets, and labs.

Each bundle is checked with ``load_bundle`` and compared with a live
collection of the same nodes. An anonymized bundle must give the same check
ids, severities and per-node counts. No member of it may contain an original
address, MAC or node name.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import nslib
import pytest

from netdoctor.capture.bundle import load_bundle
from netdoctor.collect import collect_cluster
from netdoctor.engine import Report, load_checks, run_checks
from netdoctor.lab.faults import break_fault
from netdoctor.lab.lifecycle import down, up
from netdoctor.lab.targets import lab_source
from netdoctor.model import ClusterSnapshot
from netdoctor.sources import EtcdOptions, add_etcd, collect_lab
from netdoctor.supportbundle import capture as capture_module
from netdoctor.supportbundle.anonymize import Anonymizer
from netdoctor.supportbundle.writer import BundleOptions, write_bundle
from netdoctor.target import Target

pytestmark = [nslib.needs_root, pytest.mark.netns]

_RUN = nslib.PREFIX.split("-")[1][-5:]


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as handle:
        return {member.name: handle.extractfile(member).read() for member in handle if member.isfile()}  # type: ignore[union-attr]


def _findings(report: Report) -> Counter[tuple[str, str, tuple[str, ...], str]]:
    return Counter((finding.check, finding.severity.label, finding.nodes, finding.summary) for finding in report.findings)


def _per_node(report: Report, names: dict[str, str] | None = None) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for finding in report.findings:
        for node in finding.nodes or ("",):
            counts[(finding.check, finding.severity.label, (names or {}).get(node, node))] += 1
    return counts


def _manifest(members: dict[str, bytes]) -> dict:  # type: ignore[type-arg]
    return json.loads(members["netdoctor-bundle/manifest.json"])


def _build_vxlan_pair(a: nslib.Namespace, b: nslib.Namespace) -> None:
    """Two nodes joined by a veth, each with a pod bridge and a VXLAN device with static FDB and routes."""
    nslib.sh(f"ip -n {a.name} link add eth0 type veth peer name eth0 netns {b.name}")
    for index, node in ((1, a), (2, b)):
        peer = 3 - index
        node.run(
            f"ip addr add 192.168.100.1{index}/24 dev eth0 && ip link set eth0 up && "
            f"ip link add cni0 type bridge && ip addr add 10.244.{index}.1/24 dev cni0 && ip link set cni0 up && "
            f"ip link add flannel.1 type vxlan id 1 local 192.168.100.1{index} dev eth0 dstport 8472 nolearning && "
            f"ip link set flannel.1 address 0e:00:00:00:00:0{index} && "
            f"ip addr add 10.244.{index}.0/32 dev flannel.1 && ip link set flannel.1 up && "
            f"ip neigh replace 10.244.{peer}.0 lladdr 0e:00:00:00:00:0{peer} dev flannel.1 nud permanent && "
            f"bridge fdb replace 0e:00:00:00:00:0{peer} dev flannel.1 dst 192.168.100.1{peer} self permanent && "
            f"ip route replace 10.244.{peer}.0/24 via 10.244.{peer}.0 dev flannel.1 onlink"
        )


def test_netns_round_trip_same_findings(tmp_path: Path) -> None:
    with nslib.namespaces("bn1", "bn2") as (a, b):
        _build_vxlan_pair(a, b)
        # A wrong MTU on one side, so there is something to find.
        b.run("ip link set flannel.1 mtu 1400")
        targets = [Target(a.name, netns=a.name), Target(b.name, netns=b.name)]
        live = run_checks(collect_cluster(targets, "netns"), load_checks())
        result = write_bundle(targets, tmp_path / "b.tar.gz", source="netns")

    bundled = run_checks(load_bundle(tmp_path / "b.tar.gz"), load_checks())
    assert _findings(bundled) == _findings(live)
    assert result.failed_steps == 0 or result.steps > result.failed_steps
    members = _members(tmp_path / "b.tar.gz")
    for name in ("manifest.json", "snapshot.json", "report.json", "report.md", "netdoctor.log"):
        assert f"netdoctor-bundle/{name}" in members
    report = json.loads(members["netdoctor-bundle/report.json"])
    assert sorted(item["check"] for item in report["findings"]) == sorted(finding.check for finding in bundled.findings)
    steps = _manifest(members)["steps"]
    assert {"node", "command", "exit_status", "started_at", "duration", "bytes", "truncated", "error"} <= set(steps[0])


def test_failed_steps_recorded_and_bundle_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = (("missing.txt", ("nd-no-such-program", "show")), ("slow.txt", ("sleep", "5")))
    monkeypatch.setattr(capture_module, "COMMANDS", capture_module.COMMANDS + extra)
    with nslib.namespaces("bf1") as (a,):
        result = write_bundle([Target(a.name, netns=a.name)], tmp_path / "f.tar.gz", source="netns",
                              options=BundleOptions(timeout=0.5))  # fmt: skip

    assert (tmp_path / "f.tar.gz").is_file()
    assert result.failed_steps >= 2
    steps = {step["command"]: step for step in _manifest(_members(tmp_path / "f.tar.gz"))["steps"] if "command" in step}
    assert "not installed" in steps["nd-no-such-program show"]["error"]
    assert "timed out" in steps["sleep 5"]["error"]
    assert steps["ip -j -d addr show"]["error"] is None
    assert steps["ip -j -d addr show"]["exit_status"] == 0


def test_output_cap_cut_shows_as_gap(tmp_path: Path) -> None:
    with nslib.namespaces("bc1") as (a,):
        a.run("ip link add br0 type bridge && ip link set br0 up && ip addr add 10.1.0.1/16 dev br0")
        a.run("for i in $(seq 1 250); do echo \"route add 10.2.$i.0/24 via 10.1.0.2\"; done | ip -batch -")
        write_bundle([Target(a.name, netns=a.name)], tmp_path / "c.tar.gz", source="netns",
                     options=BundleOptions(output_cap=4096))  # fmt: skip

    snapshot = load_bundle(tmp_path / "c.tar.gz")
    cut = [gap for gap in snapshot.gaps if gap.source == "ip-route.json" and "captured only in part" in gap.reason]
    assert cut, snapshot.gaps
    assert cut[0].node == a.name
    assert "4096-byte cap" in cut[0].reason
    # The cut JSON does not parse, so the routes part is a gap too, naming the member.
    assert any("ip-route" in gap.reason for gap in snapshot.gaps if gap.source == "routes")


def test_size_cap_cuts_later_members(tmp_path: Path) -> None:
    with nslib.namespaces("bs1") as (a,):
        write_bundle([Target(a.name, netns=a.name)], tmp_path / "s.tar.gz", source="netns",
                     options=BundleOptions(size_cap=2048))  # fmt: skip

    snapshot = load_bundle(tmp_path / "s.tar.gz")
    cut = [gap for gap in snapshot.gaps if "size cap" in gap.reason]
    assert cut
    assert snapshot.nodes[0].name == a.name


SECRETS = {
    "pem": "MIIEowIBAAKCAQEAplantedPEMsecretBODY0123456789",
    "token": "planted-kubeconfig-token-5f2a9c",
    "etcd_key": "MIIEvQplantedETCDkeyBODY987654321",
    "bird": "planted-bird-password",
    "bearer": "planted.bearer.value",
}


def _plant_secrets(root: Path) -> None:
    files = {
        "etc/kubernetes/kubelet.conf": (
            "apiVersion: v1\nkind: Config\nusers:\n- name: default-auth\n  user:\n"
            f"    token: {SECRETS['token']}\n    client-key-data: {SECRETS['pem']}\n"
        ),
        "var/lib/kubelet/config.yaml": (
            "kind: KubeletConfiguration\nstaticPodPath: /etc/kubernetes/manifests\n"
            f"# curl -H 'Authorization: Bearer {SECRETS['bearer']}'\n"
            f"-----BEGIN RSA PRIVATE KEY-----\n{SECRETS['pem']}\n-----END RSA PRIVATE KEY-----\n"
        ),
        "etc/cni/net.d/10-calico.conflist": json.dumps({
            "name": "k8s-pod-network", "plugins": [{"type": "calico", "etcd_key_file": "/etc/pki/cni/client.pem"}],
        }),
        "etc/pki/cni/client.pem": f"-----BEGIN PRIVATE KEY-----\n{SECRETS['etcd_key']}\n-----END PRIVATE KEY-----\n",
        "etc/cni/net.d/calico-tls/etcd-key": f"-----BEGIN EC PRIVATE KEY-----\n{SECRETS['etcd_key']}\n-----END EC PRIVATE KEY-----\n",
        "etc/cni/net.d/calico-tls/client.pem": f"-----BEGIN PRIVATE KEY-----\n{SECRETS['etcd_key']}\n-----END PRIVATE KEY-----\n",
        "etc/sysconfig/flanneld": "FLANNEL_OPTIONS=\"-etcd-keyfile=/etc/pki/flannel/etcd.pem -iface eth0\"\n",
        "etc/pki/flannel/etcd.pem": f"{SECRETS['etcd_key']}\n",
        "etc/bird/bird.conf": f'protocol bgp peer1 {{ neighbor 192.0.2.2 as 64512; password "{SECRETS["bird"]}"; }}\n',
        "run/flannel/subnet.env": "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_planted_secrets_never_written(tmp_path: Path) -> None:
    root = tmp_path / "node-root"
    _plant_secrets(root)
    with nslib.namespaces("br1") as (a,):
        write_bundle([Target(a.name, netns=a.name, root=root)], tmp_path / "r.tar.gz", source="netns")

    members = _members(tmp_path / "r.tar.gz")
    raw = (tmp_path / "r.tar.gz").read_bytes()
    for label, secret in SECRETS.items():
        for name, data in members.items():
            assert secret.encode() not in data, f"{label} secret leaked into {name}"
    assert SECRETS["token"].encode() not in raw
    folder = f"netdoctor-bundle/nodes/{a.name}"
    assert f"{folder}/files/etc/kubernetes/kubelet.conf" in members
    assert f"{folder}/files/etc/cni/net.d/10-calico.conflist" in members
    assert f"{folder}/files/etc/sysconfig/flanneld" in members
    assert f"{folder}/flannel-subnet.env" in members
    assert not any("etcd-key" in name for name in members)
    manifest = _manifest(members)
    rules = {entry["rule"] for entry in manifest["redactions"]}
    assert {"pem-private-key", "credential-field", "bearer-token", "config-password"} <= rules
    omitted = {entry["path"] for entry in manifest["omitted"]}
    assert "/etc/cni/net.d/calico-tls/etcd-key" in omitted
    assert "/etc/cni/net.d/calico-tls/client.pem" in omitted
    # The manifest names where secrets were and how many, never their values.
    assert all(isinstance(entry["count"], int) and entry["lines"] for entry in manifest["redactions"])


# -- labs


@pytest.fixture
def lab_base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nd-bundle-lab-"))
    path.chmod(0o755)
    yield path
    for child in path.iterdir():
        if child.is_dir():
            down(child.name, child)
    for child in path.iterdir():
        child.unlink() if child.is_file() else None
    path.rmdir()


def _lab_bundle(name: str, state_dir: Path, output: Path, key: bytes | None) -> Report:
    lab = lab_source(name, state_dir)
    cluster = add_etcd(ClusterSnapshot(), EtcdOptions(endpoints=(lab.etcd_endpoint,))) if lab.etcd_endpoint else None
    write_bundle(list(lab.targets), output, source=f"lab:{name}", cluster=cluster,
                 options=BundleOptions(anonymize_key=key))  # fmt: skip
    return run_checks(load_bundle(output), load_checks())


def _lab_live(name: str, state_dir: Path) -> Report:
    snapshot, endpoint = collect_lab(name, state_dir)
    if endpoint:
        snapshot = add_etcd(snapshot, EtcdOptions(endpoints=(endpoint,)))
    return run_checks(snapshot, load_checks())


def _original_forms(state_dir: Path, names: list[str]) -> list[str]:
    """Every IPv4 address, MAC and node name of the lab's nodes, in dotted, dashed and underscored forms."""
    text = (state_dir / "state.json").read_text()
    found: set[str] = set(names)
    for address in set(re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", text)):
        if address.startswith(("0.", "127.", "169.254.", "255.")):
            continue
        found.update({address, address.replace(".", "-"), address.replace(".", "_")})
    found.update(mac.lower() for mac in re.findall(r"\b(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\b", text))
    return sorted(found)


@pytest.mark.parametrize(("backend", "fault"), [("flannel-vxlan", "duplicate-mac"), ("calico-bgp", "blackhole-route")])
def test_lab_bundle_matches_live(lab_base: Path, backend: str, fault: str) -> None:
    name = f"b{backend[0]}{_RUN}"
    state_dir = lab_base / name
    state = up(name, backend, nodes=3, pods_per_node=1, state_dir=state_dir)
    break_fault(state, fault)

    live = _lab_live(name, state_dir)
    bundled = _lab_bundle(name, state_dir, lab_base / "plain.tar.gz", None)
    assert fault in {finding.check for finding in live.findings}
    assert _findings(bundled) == _findings(live)

    anonymizer = Anonymizer(bytes(range(32)), [node.name for node in state.plan.nodes])
    anonymized = _lab_bundle(name, state_dir, lab_base / "anon.tar.gz", bytes(range(32)))
    back = {anonymizer.map_name(node.name): node.name for node in state.plan.nodes}
    assert _per_node(anonymized, back) == _per_node(live)
    assert (lab_base / "anon.tar.gz.mapping.json").is_file()

    forms = _original_forms(state_dir, [node.name for node in state.plan.nodes])
    for member, data in _members(lab_base / "anon.tar.gz").items():
        text = data.decode("utf-8", "replace").lower()
        leaked = [form for form in forms if re.search(rf"(?<![\w.:-]){re.escape(form)}(?![\w:]|\.\d)", text)]
        assert not leaked, f"{member} holds original values {leaked[:5]}"
        assert not any(form in member for form in forms if not form[0].isdigit())
    down(name, state_dir)


def test_bundle_archive_is_one_folder(tmp_path: Path) -> None:
    with nslib.namespaces("bt1") as (a,):
        write_bundle([Target(a.name, netns=a.name)], tmp_path / "t.tar.gz", source="netns")
    with tarfile.open(tmp_path / "t.tar.gz") as archive:
        names = archive.getnames()
    assert all(name.startswith("netdoctor-bundle/") for name in names)


def test_tui_b_key_writes_bundle(tmp_path: Path) -> None:
    import asyncio

    from netdoctor.tui.app import NetdoctorApp
    from netdoctor.tui.bundle import BundleScreen
    from netdoctor.tui.source import SnapshotSource

    async def scenario(netns: str) -> None:
        app = NetdoctorApp(SnapshotSource(netns=netns), output_dir=tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.press("b")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, BundleScreen)
            await screen.workers.wait_for_complete()
            await pilot.pause()
            assert not screen.running
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, BundleScreen)

    with nslib.namespaces("bu1") as (a,):
        asyncio.run(scenario(a.name))

    (written,) = list(tmp_path.glob("netdoctor-bundle-*.tar.gz"))
    snapshot = load_bundle(written)
    assert [node.name for node in snapshot.nodes] == [a.name]
