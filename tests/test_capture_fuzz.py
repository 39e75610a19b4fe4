"""Fuzz the capture parsers through the bundle loader with mutated real captures.

Whatever the damage to a file, loading a bundle must either succeed or turn the
damaged file into a gap: no parser may let an exception other than
``ParseError`` escape, and the other files of the node must still load.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdoctor.capture import ParseError, iproute
from netdoctor.capture.bundle import NODE_FILES, load_bundle

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLE_ROOTS = [REPOSITORY / "fixtures" / "cases", REPOSITORY.parent / "shared" / "cases"]


def _samples() -> list[Path]:
    found: list[Path] = []
    for root in SAMPLE_ROOTS:
        if root.is_dir():
            found.extend(sorted(path for path in root.glob("*/nodes/*/*") if path.name in NODE_FILES))
    return found


SAMPLES = _samples()


def _mutate(text: str, operation: str, position: float, payload: str) -> str:
    lines = text.splitlines(keepends=True)
    at = int(position * len(text))
    line = int(position * len(lines)) if lines else 0
    if operation == "truncate":
        return text[:at]
    if operation == "drop-line" and lines:
        return "".join(lines[:line] + lines[line + 1 :])
    if operation == "repeat-line" and lines:
        return "".join(lines[: line + 1] + lines[line:])
    if operation == "insert":
        return text[:at] + payload + text[at:]
    if operation == "replace-token":
        tokens = text.split(" ")
        if tokens:
            tokens[int(position * (len(tokens) - 1))] = payload
        return " ".join(tokens)
    return text


@pytest.mark.skipif(not SAMPLES, reason="no capture samples found")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(SAMPLES or [Path("/")]),
    operation=st.sampled_from(["truncate", "drop-line", "repeat-line", "insert", "replace-token"]),
    position=st.floats(min_value=0, max_value=1),
    payload=st.text(max_size=40) | st.sampled_from(["\n", "{", "}", "/", "-1", "999999999999", "nexthop", "!", "\"", "\t"]),
)
def test_mutated_capture_loads_or_gaps(sample: Path, operation: str, position: float, payload: str) -> None:
    with tempfile.TemporaryDirectory(prefix="nd-fuzz-") as work:
        node_dir = Path(work) / "nodes" / sample.parent.name
        shutil.copytree(sample.parent, node_dir)
        text = sample.read_text(errors="replace")
        (node_dir / sample.name).write_text(_mutate(text, operation, position, payload))

        snapshot = load_bundle(work)

    node = snapshot.node(sample.parent.name)
    spec = NODE_FILES[sample.name]
    damaged = [gap for gap in snapshot.gaps if gap.source == spec.field]
    assert getattr(node, spec.field) is not None or damaged or spec.field == "bgp"


TEXT_PARSERS = [
    iproute.parse_ip_addr,
    iproute.parse_ip_addr_json,
    iproute.parse_ip_route,
    iproute.parse_ip_route_json,
    iproute.parse_ip_neigh,
    iproute.parse_ip_neigh_json,
    iproute.parse_bridge_fdb,
    iproute.parse_bridge_fdb_json,
]


@pytest.mark.parametrize("parser", TEXT_PARSERS, ids=lambda parser: parser.__name__)
@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_random_text_raises_only_parse_error(parser, text: str) -> None:
    try:
        parser(text, "fuzz.txt")
    except ParseError:
        pass
