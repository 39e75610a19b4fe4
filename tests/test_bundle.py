"""The bundle reader: directory and archive input, and rejection of hostile archives."""

from __future__ import annotations

import io
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

    with pytest.raises(BundleError, match="not a readable tar archive"):
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
