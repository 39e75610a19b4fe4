"""The bundle reader: directory and archive input, and rejection of hostile archives."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from netdoctor.capture import bundle
from netdoctor.capture.bundle import BundleError, load_bundle, read_bundle_files


def _archive(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            payload = (data or {}).get(member.name)
            archive.addfile(member, io.BytesIO(payload) if payload is not None else None)
    return path


def _file(name: str, payload: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    return info, payload


def test_archive_under_top_folder_reads(tmp_path: Path) -> None:
    info, payload = _file("case/nodes/n1/notes.txt", b"hello")
    path = _archive(tmp_path / "b.tar.gz", [info], {info.name: payload})

    files = read_bundle_files(path)

    assert files == {"nodes/n1/notes.txt": b"hello"}


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../outside", "nodes/../../outside", "nodes/n1/../../../x"],
)
def test_archive_escaping_path_rejected(tmp_path: Path, name: str) -> None:
    info, payload = _file(name, b"x")
    path = _archive(tmp_path / "b.tar.gz", [info], {name: payload})

    with pytest.raises(BundleError, match="absolute or parent path"):
        read_bundle_files(path)


def test_archive_symlink_rejected(tmp_path: Path) -> None:
    info = tarfile.TarInfo("nodes/n1/ip-route.txt")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/shadow"
    path = _archive(tmp_path / "b.tar.gz", [info])

    with pytest.raises(BundleError, match="is a link"):
        read_bundle_files(path)


def test_archive_device_rejected(tmp_path: Path) -> None:
    info = tarfile.TarInfo("nodes/n1/ip-route.txt")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    path = _archive(tmp_path / "b.tar.gz", [info])

    with pytest.raises(BundleError, match="special file"):
        read_bundle_files(path)


def test_archive_oversized_member_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MAX_MEMBER_BYTES", 10)
    info, payload = _file("nodes/n1/ip-route.txt", b"x" * 11)
    path = _archive(tmp_path / "b.tar.gz", [info], {info.name: payload})

    with pytest.raises(BundleError, match="over the 10-byte limit"):
        read_bundle_files(path)


def test_archive_total_cap_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MAX_TOTAL_BYTES", 15)
    members, data = [], {}
    for index in range(2):
        info, payload = _file(f"nodes/n{index}/notes.txt", b"x" * 10)
        members.append(info)
        data[info.name] = payload
    path = _archive(tmp_path / "b.tar.gz", members, data)

    with pytest.raises(BundleError, match="total over the 15-byte limit"):
        read_bundle_files(path)


def test_not_an_archive_rejected(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"this is not gzip")

    with pytest.raises(BundleError, match="not a readable .tar.gz archive"):
        read_bundle_files(path)


def test_missing_path_rejected(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such file or directory"):
        read_bundle_files(tmp_path / "absent")


def test_folder_without_layout_rejected(tmp_path: Path) -> None:
    (tmp_path / "random.txt").write_text("x")

    with pytest.raises(BundleError, match="no nodes/ or cluster/ folder"):
        read_bundle_files(tmp_path)


def test_directory_symlink_rejected(tmp_path: Path) -> None:
    (tmp_path / "nodes" / "n1").mkdir(parents=True)
    (tmp_path / "nodes" / "n1" / "ip-route.txt").symlink_to("/etc/hostname")

    with pytest.raises(BundleError, match="symbolic links"):
        read_bundle_files(tmp_path)


def test_unknown_files_kept_by_name(tmp_path: Path) -> None:
    (tmp_path / "nodes" / "n1").mkdir(parents=True)
    (tmp_path / "nodes" / "n1" / "dmesg.txt").write_text("boot")
    (tmp_path / "README").write_text("ticket 1234")
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "events.json").write_text("[]")

    snapshot = load_bundle(tmp_path)

    assert snapshot.node("n1").extra_files == ("dmesg.txt",)
    assert snapshot.extra_files == ("README", "cluster/events.json")


def test_missing_file_means_not_captured(tmp_path: Path) -> None:
    (tmp_path / "nodes" / "n1").mkdir(parents=True)
    (tmp_path / "nodes" / "n1" / "sysctl.txt").write_text("net.ipv4.ip_forward = 1\n")

    node = load_bundle(tmp_path).node("n1")

    assert node.routes is None
    assert node.interfaces is None
    assert node.sysctls is not None
    assert node.sysctls.get("net.ipv4.ip_forward") == "1"


IP_ADDR = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP group default qlen 1000
    link/ether 52:54:00:0f:0a:c4 brd ff:ff:ff:ff:ff:ff
    inet 192.0.2.11/24 brd 192.0.2.255 scope global eth0
       valid_lft forever preferred_lft forever
"""

FIREWALLD_ZONES = """\
public (active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: ssh dhcpv6-client
  ports: 8472/udp
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 
"""


def _node_dir(root: Path, name: str = "n1") -> Path:
    folder = root / "nodes" / name
    folder.mkdir(parents=True)
    return folder


def test_malformed_file_becomes_gap(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-addr.txt").write_text(IP_ADDR)
    (folder / "ip-route.txt").write_text("default via 192.0.2.1 dev eth0\n10.0.0.0/8 frobnicate 3\n")

    snapshot = load_bundle(tmp_path)

    node = snapshot.node("n1")
    assert node.interfaces is not None
    assert node.routes is None
    assert len(snapshot.gaps) == 1
    assert snapshot.gaps[0].source == "routes"
    assert "nodes/n1/ip-route.txt, line 2" in snapshot.gaps[0].reason


def test_json_capture_preferred_over_text(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-route.txt").write_text("this text is never read\n")
    (folder / "ip-route.json").write_text('[{"dst": "192.0.2.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "flags": []}]')

    snapshot = load_bundle(tmp_path)

    node = snapshot.node("n1")
    assert not snapshot.gaps
    assert node.routes is not None
    assert [route.destination for route in node.routes] == ["192.0.2.0/24"]
    assert "ip-route.txt" in node.extra_files


def test_firewalld_files_read_together(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "firewalld.txt").write_text(FIREWALLD_ZONES)
    (folder / "firewalld-default-zone.txt").write_text("public\n")

    snapshot = load_bundle(tmp_path)

    state = snapshot.node("n1").firewalld
    assert not snapshot.gaps
    assert state is not None
    assert state.default_zone == "public"
    assert [zone.name for zone in state.zones] == ["public"]


def test_archive_and_directory_load_equal(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path / "case")
    (folder / "ip-addr.txt").write_text(IP_ADDR)
    archive = tmp_path / "case.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(tmp_path / "case", arcname="case")

    from_directory = load_bundle(tmp_path / "case")
    from_archive = load_bundle(archive)

    assert from_archive.nodes == from_directory.nodes


def test_unreadable_file_becomes_gap(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-addr.txt").write_text(IP_ADDR)
    (folder / "ip-route.txt").mkdir()

    snapshot = load_bundle(tmp_path)

    assert snapshot.node("n1").interfaces is not None
    assert [(gap.node, gap.source) for gap in snapshot.gaps] == [("n1", "routes")]
    assert "nodes/n1/ip-route.txt is a directory" in snapshot.gaps[0].reason


def test_bundle_without_nodes_has_gap(tmp_path: Path) -> None:
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "etcd.json").write_text('{"/coreos.com/network/config": "{}"}')

    snapshot = load_bundle(tmp_path)

    assert snapshot.nodes == ()
    assert any(gap.source == "nodes" and "no node was captured" in gap.reason for gap in snapshot.gaps)


def test_empty_archive_message_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"")

    with pytest.raises(BundleError, match="tar -czf"):
        read_bundle_files(path)


def _three_member_archive(path: Path, mode: str) -> Path:
    with tarfile.open(path, mode) as archive:
        for index in range(1, 4):
            # Varied lines, so that the members fill most of a compressed archive as real captures do.
            lines = (f"node {index} line {number} value {number * number % 9973}" for number in range(800))
            info, payload = _file(f"nodes/n{index}/notes.txt", "\n".join(lines).encode())
            archive.addfile(info, io.BytesIO(payload))
    return path


def test_damaged_member_header_rejected(tmp_path: Path) -> None:
    path = _three_member_archive(tmp_path / "b.tar", "w")
    data = bytearray(path.read_bytes())
    # The second member's header follows the first member's header block and its padded data.
    second = data.index(b"nodes/n2/notes.txt")
    assert second % 512 == 0
    data[second] ^= 0x55
    path.write_bytes(bytes(data))

    with pytest.raises(BundleError, match=r"damaged after member 'nodes/n1/notes.txt'"):
        read_bundle_files(path)


@pytest.mark.parametrize("where", [0.2, 0.35, 0.5, 0.7])
def test_damaged_compressed_archive_rejected(tmp_path: Path, where: float) -> None:
    path = _three_member_archive(tmp_path / "b.tar.gz", "w:gz")
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x55
    path.write_bytes(bytes(data))

    # Either the gzip stream or the tar headers in it turn out damaged.
    with pytest.raises(BundleError, match="archive is damaged|truncated, damaged or another format"):
        read_bundle_files(path)


def test_archive_end_padding_accepted(tmp_path: Path) -> None:
    path = _three_member_archive(tmp_path / "b.tar.gz", "w:gz")

    assert sorted(read_bundle_files(path)) == [f"nodes/n{index}/notes.txt" for index in range(1, 4)]


def test_damaged_json_falls_back_to_text_beside_it(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-addr.txt").write_text(IP_ADDR)
    (folder / "ip-addr.json").write_text('[{"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK"')

    snapshot = load_bundle(tmp_path)

    node = snapshot.node("n1")
    assert node.interfaces is not None
    assert node.interface("lo") is not None
    assert [provenance.origin for provenance in node.provenance if provenance.source == "interfaces"] == \
        ["bundle:nodes/n1/ip-addr.txt"]
    reasons = [gap.reason for gap in snapshot.gaps if gap.source == "interfaces"]
    assert len(reasons) == 2
    assert reasons[0].startswith("nodes/n1/ip-addr.json")
    assert reasons[1] == "nodes/n1/ip-addr.json could not be read, so nodes/n1/ip-addr.txt was read instead"
    assert "ip-addr.txt" not in node.extra_files


def test_good_json_keeps_text_beside_it_unread(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-addr.txt").write_text(IP_ADDR)
    (folder / "ip-addr.json").write_text('[{"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "mtu": 65536, '
                                         '"operstate": "UNKNOWN", "link_type": "loopback", "addr_info": []}]')

    snapshot = load_bundle(tmp_path)

    assert snapshot.gaps == ()
    assert snapshot.node("n1").extra_files == ("ip-addr.txt",)


@pytest.mark.parametrize(("damaged", "reason"), [
    ("", "nodes/n1/ip-addr.json: the file is empty, as a capture cut short leaves it"),
    ('[{"ifindex": 1, "ifname": "lo", "flags": 7, "addr_info": []}]', "nodes/n1/ip-addr.json: "),
    ('[{"ifindex": 1, "ifname": "lo", "flags": [], "addr_info": 7}]', "nodes/n1/ip-addr.json: "),
])
def test_unreadable_json_gives_way_to_text(tmp_path: Path, damaged: str, reason: str) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-addr.txt").write_text(IP_ADDR)
    (folder / "ip-addr.json").write_text(damaged)

    snapshot = load_bundle(tmp_path)

    assert snapshot.node("n1").interface("lo") is not None
    reasons = [gap.reason for gap in snapshot.gaps if gap.source == "interfaces"]
    assert reasons[0].startswith(reason)
    assert reasons[1] == "nodes/n1/ip-addr.json could not be read, so nodes/n1/ip-addr.txt was read instead"


def test_route_destination_must_be_text(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-route.json").write_text('[{"dst": 5, "dev": "eth0"}]')

    snapshot = load_bundle(tmp_path)

    assert snapshot.node("n1").routes is None
    assert [gap.reason for gap in snapshot.gaps] == [
        'nodes/n1/ip-route.json: route entry 0: \'dst\' is 5, expected a prefix such as "10.244.1.0/24" or "default"']


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("prefixlen", -1, "'prefixlen' is -1, expected 0 to 32"),
    ("prefixlen", "24", "'prefixlen' is \"24\", expected 0 to 32"),
    ("local", 7, "'local' is 7, expected an address"),
])
def test_address_entry_values_checked(tmp_path: Path, field: str, value: object, reason: str) -> None:
    entry = {"family": "inet", "local": "10.0.0.1", "prefixlen": 24, field: value}
    folder = _node_dir(tmp_path)
    (folder / "ip-addr.json").write_text(json.dumps([{"ifindex": 2, "ifname": "eth0", "mtu": 1500, "flags": ["UP"],
                                                      "addr_info": [entry]}]))

    snapshot = load_bundle(tmp_path)

    assert snapshot.node("n1").interfaces is None
    assert [gap.reason for gap in snapshot.gaps] == [f"nodes/n1/ip-addr.json: interface entry 0 (eth0), address 0: {reason}"]


_IPV4_ROUTES = "default via 192.0.2.1 dev eth0 proto static\n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.10\n"
_IPV6_ROUTES = "2001:db8::/64 dev eth0 proto kernel metric 256 pref medium\ndefault via fe80::1 dev eth0 metric 1024 pref medium\n"
_IPV4_AND_IPV6_JSON = json.dumps([
    {"dst": "192.0.2.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "flags": []},
    {"dst": "2001:db8::/64", "dev": "eth0", "protocol": "kernel", "metric": 256, "flags": [], "pref": "medium"},
])


def _destinations(snapshot: object) -> list[str]:
    routes = snapshot.node("n1").routes  # type: ignore[attr-defined]
    assert routes is not None
    return sorted(route.destination for route in routes)


def test_ipv6_route_text_joins_ipv4_routes(tmp_path: Path) -> None:
    # 'netdoctor bundle' writes each family's text to its own file.
    folder = _node_dir(tmp_path)
    (folder / "ip-route.txt").write_text(_IPV4_ROUTES)
    (folder / "ip6-route.txt").write_text(_IPV6_ROUTES)

    snapshot = load_bundle(tmp_path)

    assert snapshot.gaps == ()
    assert _destinations(snapshot) == ["0.0.0.0/0", "192.0.2.0/24", "2001:db8::/64", "::/0"]
    assert sorted(item.origin for item in snapshot.node("n1").provenance if item.source == "routes") == [
        "bundle:nodes/n1/ip-route.txt", "bundle:nodes/n1/ip6-route.txt"]


def test_ipv6_routes_kept_on_text_fallback(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-route.json").write_text('[{"dst": 5}]')
    (folder / "ip-route.txt").write_text(_IPV4_ROUTES)
    (folder / "ip6-route.txt").write_text(_IPV6_ROUTES)

    snapshot = load_bundle(tmp_path)

    assert _destinations(snapshot) == ["0.0.0.0/0", "192.0.2.0/24", "2001:db8::/64", "::/0"]
    assert [gap.reason for gap in snapshot.gaps][1] == (
        "nodes/n1/ip-route.json could not be read, so nodes/n1/ip-route.txt was read instead")


def test_ipv6_text_unused_beside_full_json(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-route.json").write_text(_IPV4_AND_IPV6_JSON)
    (folder / "ip6-route.txt").write_text(_IPV6_ROUTES)

    snapshot = load_bundle(tmp_path)

    assert snapshot.gaps == ()
    assert _destinations(snapshot) == ["192.0.2.0/24", "2001:db8::/64"]
    assert "ip6-route.txt" in snapshot.node("n1").extra_files


def test_damaged_ipv6_route_file_is_a_routes_gap(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-route.txt").write_text(_IPV4_ROUTES)
    (folder / "ip6-route.txt").write_text("2001:db8::/64 frobnicate 3\n")

    snapshot = load_bundle(tmp_path)

    assert _destinations(snapshot) == ["0.0.0.0/0", "192.0.2.0/24"]
    assert [(gap.source, gap.reason.split(",")[0]) for gap in snapshot.gaps] == [
        ("routes", "nodes/n1/ip6-route.txt")]


def test_ipv6_routes_alone_are_not_a_route_table(tmp_path: Path) -> None:
    # Checks read a node's route table as complete, so IPv6 routes alone would make every IPv4 route look missing.
    folder = _node_dir(tmp_path)
    (folder / "ip-route.json").write_text('[{"dst": 5}]')
    (folder / "ip6-route.txt").write_text(_IPV6_ROUTES)

    snapshot = load_bundle(tmp_path)

    assert snapshot.node("n1").routes is None
    assert "ip6-route.txt" in snapshot.node("n1").extra_files
    assert snapshot.gaps[-1].reason == (
        "nodes/n1/ip6-route.txt not read: without a readable ip-route.json or ip-route.txt, the IPv6 routes alone "
        "would make every IPv4 route look missing")


def test_ipv6_text_unparsed_beside_full_json(tmp_path: Path) -> None:
    folder = _node_dir(tmp_path)
    (folder / "ip-route.json").write_text(_IPV4_AND_IPV6_JSON)
    (folder / "ip6-route.txt").write_text("2001:db8::/64 frobnicate 3\n")

    snapshot = load_bundle(tmp_path)

    assert snapshot.gaps == ()
    assert _destinations(snapshot) == ["192.0.2.0/24", "2001:db8::/64"]
