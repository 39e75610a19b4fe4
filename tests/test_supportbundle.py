"""Support bundle parts that need no namespaces: anonymization, redaction, manifest gaps, a bundle written
from fixture captures and the CLI's input errors.

The anonymization test runs every capture case (copied into a temporary
folder) through the anonymizer and requires the same check ids, severities and
per-node counts as the original.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from cli_runner import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from netdoctor.capture.bundle import (
    SNAPSHOT_FILE,
    SUPPORT_BUNDLE_FILES,
    load_bundle,
    read_bundle_files,
)
from netdoctor.engine import Report, load_checks, run_checks
from netdoctor.supportbundle import capture as capture_module
from netdoctor.supportbundle.anonymize import AnonymizeError, Anonymizer, parse_key
from netdoctor.supportbundle.redact import (
    REDACTED,
    holds_only_private_key,
    is_secret_path,
    key_file_paths,
    redact_text,
)
from netdoctor.supportbundle.writer import TOP_FOLDER, write_bundle
from netdoctor.target import Target

REPOSITORY = Path(__file__).resolve().parent.parent
CASES = REPOSITORY.parent / "shared" / "cases"
KEY = bytes(range(32))


def _case_dirs() -> list[Path]:
    if not CASES.is_dir():
        return []
    return sorted(path for path in CASES.iterdir() if (path / "expected.json").is_file())


def _per_node(report: Report, names: dict[str, str] | None = None) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for finding in report.findings:
        for node in finding.nodes or ("",):
            counts[(finding.check, finding.severity.label, (names or {}).get(node, node))] += 1
    return counts


def _common_prefix(a: int, b: int, bits: int) -> int:
    return bits - (a ^ b).bit_length()


@pytest.mark.parametrize("case", _case_dirs(), ids=lambda path: path.name)
def test_anonymized_case_same_findings(case: Path, tmp_path: Path) -> None:
    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    files = read_bundle_files(copy)
    nodes = sorted({name.split("/")[1] for name in files if name.startswith("nodes/")})
    anonymizer = Anonymizer(KEY, nodes)
    anonymized = tmp_path / "anonymized"
    for name, data in files.items():
        path = anonymized / "/".join(anonymizer.text(part) for part in name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(anonymizer.text(data.decode("utf-8")))

    original = run_checks(load_bundle(copy), load_checks())
    mapped = run_checks(load_bundle(anonymized), load_checks())
    back = {anonymizer.map_name(node): node for node in nodes}
    assert _per_node(mapped, back) == _per_node(original)
    assert len(mapped.gaps) == len(original.gaps)
    for node in nodes:
        assert not (anonymized / "nodes" / node).exists()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_ipv4_prefixes_preserved(a: int, b: int) -> None:
    anonymizer = Anonymizer(KEY)
    image_a = int(ipaddress.IPv4Address(anonymizer.map_ipv4(str(ipaddress.IPv4Address(a)))))
    image_b = int(ipaddress.IPv4Address(anonymizer.map_ipv4(str(ipaddress.IPv4Address(b)))))
    assert _common_prefix(image_a, image_b, 32) == _common_prefix(a, b, 32)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**128 - 1), st.integers(0, 127))
def test_ipv6_prefixes_preserved(a: int, shared: int) -> None:
    b = a ^ (1 << (127 - shared)) ^ random.Random(a).getrandbits(127 - shared)
    anonymizer = Anonymizer(KEY)
    image_a = int(ipaddress.IPv6Address(anonymizer.map_ipv6(str(ipaddress.IPv6Address(a)))))
    image_b = int(ipaddress.IPv6Address(anonymizer.map_ipv6(str(ipaddress.IPv6Address(b % 2**128)))))
    assert _common_prefix(image_a, image_b, 128) == _common_prefix(a, b % 2**128, 128)


@pytest.mark.parametrize(
    "text",
    ["0.0.0.0/0", "127.0.0.1", "169.254.1.1", "224.0.0.5", "255.255.255.255", "255.255.255.0", "::1", "ff02::1", "::"],
)
def test_special_addresses_kept(text: str) -> None:
    assert Anonymizer(KEY).text(text) == text


def test_ordinary_address_never_special() -> None:
    anonymizer = Anonymizer(KEY)
    special = [ipaddress.ip_network(net) for net in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3")]
    for value in range(0x0A000000, 0x0A000000 + 2**24, 4099):
        image = ipaddress.IPv4Address(anonymizer.map_ipv4(str(ipaddress.IPv4Address(value))))
        assert not any(image in network for network in special), image


def test_forms_map_consistently() -> None:
    anonymizer = Anonymizer(KEY, ["node1"])
    out = anonymizer.text("10.0.0.52 10-0-0-52 Mesh_10_0_0_52 subnets/172.16.1.0-24 172.16.1.0/32 remote_ip=\"10.0.0.52\"")
    dotted, dashed, underscored, lease, vtep, ovs = out.split(" ")
    assert dashed == dotted.replace(".", "-")
    assert underscored == "Mesh_" + dotted.replace(".", "_")
    assert lease.removeprefix("subnets/").removesuffix("-24") == vtep.removesuffix("/32")
    assert ovs == f'remote_ip="{dotted}"'
    assert "10.0.0.52" not in out


def test_network_address_stays_network() -> None:
    out = Anonymizer(KEY).text("10.244.0.0/16 10.244.3.7/16 2001:db8:5::/48")
    network, host, network6 = out.split()
    assert ipaddress.ip_network(network).prefixlen == 16
    assert ipaddress.ip_interface(host).network == ipaddress.ip_network(network)
    assert ipaddress.ip_network(network6).prefixlen == 48


def test_mac_locally_administered_and_stable() -> None:
    anonymizer = Anonymizer(KEY)
    first = anonymizer.map_mac("52:54:00:12:34:56")
    assert first == anonymizer.map_mac("52:54:00:12:34:56")
    assert int(first[:2], 16) & 0b11 == 0b10
    assert anonymizer.map_mac("ff:ff:ff:ff:ff:ff") == "ff:ff:ff:ff:ff:ff"
    assert anonymizer.map_mac("01:00:5e:00:00:05") == "01:00:5e:00:00:05"
    images = {anonymizer.map_mac(f"02:00:00:00:{i // 256:02x}:{i % 256:02x}") for i in range(2000)}
    assert len(images) == 2000


def test_reveal_round_trip() -> None:
    anonymizer = Anonymizer(KEY, ["node1", "worker-7"])
    text = "node1 10.0.0.11/24 via 10.0.0.12 lease 10.244.1.0-24 mac 0e:00:00:00:00:01 worker-7 2001:db8::1/64\n"
    hidden = anonymizer.text(text)
    assert hidden != text
    assert Anonymizer(KEY).reveal(hidden, anonymizer.mapping()) == text


def test_different_keys_differ() -> None:
    assert Anonymizer(KEY).map_ipv4("10.0.0.1") != Anonymizer(bytes(32)).map_ipv4("10.0.0.1")


@pytest.mark.parametrize(
    "text",
    [
        "999.1.1.1 1.2.3 1.2.3.4.5 256.256.256.256",
        ":" * 5000,
        "1" * 100_000,
        "a:" * 20_000,
        "10." * 10_000,
        "\x00\xff\ud7ff 10.0.0.1\u202e",
        "12:34:56 std::string a::b 1::2::3 fe80::%eth0",
        "-".join(["10"] * 5000),
    ],
)
def test_hostile_text_does_not_raise(text: str) -> None:
    anonymizer = Anonymizer(KEY, ["a.b", "x+y", "(node)", "*"])
    out = anonymizer.text(text)
    assert isinstance(out, str)
    assert "10.0.0.1 " not in out


@pytest.mark.parametrize("key", ["zz", "abcd", ""])
def test_bad_key_rejected(key: str) -> None:
    with pytest.raises(AnonymizeError):
        parse_key(key)


def test_redaction_rules() -> None:
    text = (
        "users:\n- user:\n    token: s3cr3t-token\n    client-key-data: c2VjcmV0\n    tokenFile: /var/token\n"
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
        "Authorization: Bearer abc.def\n"
        'protocol bgp p { password "bird-pass"; }\n'
        " neighbor 192.0.2.1 password frr-pass\n"
        '{"password": "json-pass", "etcd_key_file": "/etc/k.pem"}\n'
    )
    redacted, found = redact_text("m", text)
    for secret in ("s3cr3t-token", "c2VjcmV0", "AAAA", "abc.def", "bird-pass", "frr-pass", "json-pass"):
        assert secret not in redacted
    assert "tokenFile: /var/token" in redacted
    assert redacted.count(REDACTED) == 7
    counts = {entry.rule: entry.count for entry in found}
    assert counts == {"bearer-token": 1, "config-password": 2, "credential-field": 3, "pem-private-key": 1}


def test_secret_files_recognized() -> None:
    assert is_secret_path("/etc/cni/net.d/calico-tls/etcd-key")
    assert is_secret_path("/etc/kubernetes/pki/apiserver.key")
    assert not is_secret_path("/etc/cni/net.d/10-flannel.conflist")
    assert key_file_paths('FLANNEL_OPTIONS="-etcd-keyfile=/etc/pki/e.pem"') == ["/etc/pki/e.pem"]
    assert holds_only_private_key("-----BEGIN PRIVATE KEY-----\nAB\n-----END PRIVATE KEY-----\n")
    assert not holds_only_private_key("kind: Config\n")


def test_manifest_truncation_listed_as_gap(tmp_path: Path) -> None:
    node = tmp_path / "nodes" / "node1"
    node.mkdir(parents=True)
    (node / "sysctl.txt").write_text("net.ipv4.ip_forward = 1\n")
    steps = [{"node": "node1", "command": "ip -j -d addr show", "member": "ip-addr.json", "truncated": True,
              "error": "output cut at the 4096-byte cap"}]  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps({"steps": steps}))
    snapshot = load_bundle(tmp_path)
    assert [(gap.node, gap.source) for gap in snapshot.gaps] == [("node1", "ip-addr.json")]
    assert "4096-byte cap" in snapshot.gaps[0].reason
    assert snapshot.nodes[0].sysctls is not None


def test_failed_capture_step_listed_as_gap(tmp_path: Path) -> None:
    node = tmp_path / "nodes" / "node1"
    node.mkdir(parents=True)
    (node / "sysctl.txt").write_text("net.ipv4.ip_forward = 1\n")
    steps = [{"node": "node1", "kind": "file", "file": "/etc/frr/daemons", "member": None,
              "error": "cannot read /etc/frr/daemons: Permission denied"},
             {"node": "node1", "kind": "command", "command": "sysctl -a", "member": "sysctl.txt", "error": None}]
    (tmp_path / "manifest.json").write_text(json.dumps({"steps": steps}))

    snapshot = load_bundle(tmp_path)

    assert [(gap.node, gap.source, gap.reason) for gap in snapshot.gaps] == [
        ("node1", "/etc/frr/daemons", "not captured: cannot read /etc/frr/daemons: Permission denied")]


def test_invalid_manifest_is_one_gap(tmp_path: Path) -> None:
    (tmp_path / "nodes" / "node1").mkdir(parents=True)
    (tmp_path / "nodes" / "node1" / "sysctl.txt").write_text("net.ipv4.ip_forward = 1\n")
    (tmp_path / "manifest.json").write_text("{not json")
    snapshot = load_bundle(tmp_path)
    assert [gap.source for gap in snapshot.gaps] == ["manifest"]


@pytest.mark.skipif(not _case_dirs(), reason="no shared capture cases")
def test_truncated_member_named_rest_loads(tmp_path: Path) -> None:
    case = next(path for path in _case_dirs() if (path / "nodes" / "node1" / "ip-route.txt").is_file())
    copy = tmp_path / "case"
    shutil.copytree(case, copy)
    member = copy / "nodes" / "node1" / "ip-addr.txt"
    data = member.read_bytes()
    member.write_bytes(data[: len(data) // 2] + b"\ninet 10.0.0.1/99 garbage")
    snapshot = load_bundle(copy)
    assert any("nodes/node1/ip-addr.txt" in gap.reason for gap in snapshot.gaps), snapshot.gaps
    assert len(snapshot.nodes) == len(list((copy / "nodes").iterdir()))
    assert all(node.interfaces is not None for node in snapshot.nodes if node.name != "node1")


def test_own_bundle_files_not_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands print a fixture node's captures and firewalld is not asked whether it runs, so the
    # bundle needs neither root nor a namespace and reads nothing of the host's.
    captures = REPOSITORY / "fixtures" / "cases" / "overlay-port-blocked-pass" / "nodes" / "node1"
    commands = tuple((path.name, ("cat", str(path))) for path in sorted(captures.iterdir()))
    monkeypatch.setattr(capture_module, "COMMANDS", (*commands, ("ip-rule.txt", ("echo", "0: from all lookup local"))))
    monkeypatch.setattr(capture_module, "_firewalld_steps", lambda target: [])
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "sysctl.conf").write_text("net.ipv4.ip_forward = 1\n")
    archive = tmp_path / "case.tar.gz"

    write_bundle([Target("node1", root=root)], archive, source="test")
    snapshot = load_bundle(archive)

    with tarfile.open(archive) as opened:
        top_files = {name.removeprefix(f"{TOP_FOLDER}/") for name in opened.getnames() if name.count("/") == 1}
        written = opened.extractfile(f"{TOP_FOLDER}/{SNAPSHOT_FILE}")
        assert written is not None
        written_snapshot = json.loads(written.read())
    assert top_files == SUPPORT_BUNDLE_FILES
    assert snapshot.extra_files == ("nodes/node1/files/etc/sysctl.conf",)
    assert written_snapshot["extra_files"] == ["nodes/node1/files/etc/sysctl.conf"]
    assert snapshot.node("node1").extra_files == ("ip-rule.txt",)
    assert snapshot.node("node1").iptables is not None


def test_cli_reveal_needs_key(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text("host-00000000 10.1.2.3\n")
    result = invoke("bundle", "--reveal", str(report))
    assert result.exit_code == 2
    assert "--reveal needs --key" in result.output


def test_cli_reveal_maps_back(tmp_path: Path) -> None:
    anonymizer = Anonymizer(KEY, ["node1"])
    report = tmp_path / "report.md"
    report.write_text(anonymizer.text("node1: route to 10.244.2.0/24 via 10.0.0.12 missing\n"))
    mapping = tmp_path / "b.tar.gz.mapping.json"
    mapping.write_text(json.dumps(anonymizer.mapping()))
    result = invoke("bundle", "--reveal", str(report), "--key", KEY.hex(), "--mapping", str(mapping))
    assert result.exit_code == 0, result.output
    assert result.output == "node1: route to 10.244.2.0/24 via 10.0.0.12 missing\n"


def test_cli_key_without_anonymize(tmp_path: Path) -> None:
    result = invoke("bundle", "--key", KEY.hex(), "-o", str(tmp_path / "x.tar.gz"))
    assert result.exit_code == 2
    assert "--key applies to --anonymize" in result.output


#: Plans a node's file steps as the user running it and prints each read file's error, or its size.
_CAPTURE_FILES = """
import sys
from pathlib import Path
from netdoctor.supportbundle.capture import capture_node, plan_node
from netdoctor.target import Target
target = Target("n1", root=Path(sys.argv[1]))
files = [step for step in plan_node(target) if step.kind == "file"]
capture = capture_node(target, files)
for step in capture.steps:
    print(step.what, step.error or step.bytes)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
def test_unsearchable_directory_is_a_failed_step() -> None:
    # Under /tmp, as pytest's own temporary directories are closed to other users.
    base = Path(tempfile.mkdtemp(prefix="nd-capture-"))
    try:
        _capture_as_nobody(base)
    finally:
        shutil.rmtree(base)


def _capture_as_nobody(base: Path) -> None:
    root = base / "root"
    (root / "etc" / "frr").mkdir(parents=True)
    (root / "etc" / "frr" / "daemons").write_text("bgpd=yes\n")
    (root / "etc" / "sysctl.conf").write_text("net.ipv4.ip_forward = 1\n")
    # As FRR's package leaves it: only root and group frr may search /etc/frr.
    (root / "etc" / "frr").chmod(0o750)
    for directory in (base, root, root / "etc"):
        directory.chmod(0o755)
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", _CAPTURE_FILES,
               str(root)]
    completed = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, cwd="/")

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert "/etc/frr/daemons cannot read /etc/frr/daemons: Permission denied" in lines
    assert "/etc/sysctl.conf 24" in lines
