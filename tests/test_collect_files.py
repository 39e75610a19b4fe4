"""Tests of the file collector on a node root in a temporary directory."""

from __future__ import annotations

from netdoctor.collectors import files
from netdoctor.target import Target


def write(root, path: str, text: str) -> None:
    location = root / path.lstrip("/")
    location.parent.mkdir(parents=True, exist_ok=True)
    location.write_text(text)


def test_both_files_parsed(tmp_path):
    write(tmp_path, "/run/flannel/subnet.env", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_MTU=1450\n")
    write(tmp_path, "/etc/docker/daemon.json", '{"mtu": 1400, "bip": "192.0.2.1/24"}')

    part = files.collect(Target(name="n1", root=tmp_path))

    assert part.values["flannel_env"].mtu == 1450
    assert part.values["docker"].mtu == 1400
    assert part.gaps == []
    assert {item.source for item in part.provenance} == {"flannel_env", "docker"}


def test_absent_files_are_not_gaps(tmp_path):
    part = files.collect(Target(name="n1", root=tmp_path))
    assert part.values == {}
    assert part.gaps == []


def test_unreadable_file_is_gap(tmp_path):
    (tmp_path / "run" / "flannel" / "subnet.env").mkdir(parents=True)
    part = files.collect(Target(name="n1", root=tmp_path))
    assert "flannel_env" not in part.values
    assert [gap.source for gap in part.gaps] == ["flannel_env"]
    assert "cannot read" in part.gaps[0].reason


def test_invalid_file_is_gap_naming_line(tmp_path):
    write(tmp_path, "/etc/docker/daemon.json", '{\n  "mtu": 1400,\n}\n')
    part = files.collect(Target(name="n1", root=tmp_path))
    assert "docker" not in part.values
    assert "/etc/docker/daemon.json, line 3" in part.gaps[0].reason
