"""The netdoctor command line, run as a real process, and its report formats."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nslib
import pytest
from cli_runner import invoke

from netdoctor import synthetic
from netdoctor.engine import CheckSpec, catalogue, load_checks, run_checks
from netdoctor.model import (
    Address,
    ClusterSnapshot,
    EtcdData,
    Evidence,
    Finding,
    FlannelSubnetEnv,
    Gap,
    Interface,
    NodeSnapshot,
    Route,
    RouteTable,
    Severity,
)
from netdoctor.model.serialize import SNAPSHOT_SCHEMA, dumps_snapshot, loads_snapshot
from netdoctor.report import exit_code, make_console, render_human, report_to_json

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "check.schema.json"


# --- a small JSON Schema validator -------------------------------------------------------------
# It covers the keywords docs/check.schema.json uses, and raises on any other keyword so
# that a schema change cannot silently go unchecked.

_KNOWN_KEYWORDS = {
    "$schema", "$id", "title", "description", "$defs", "$ref", "type", "const", "enum", "required",
    "properties", "additionalProperties", "items", "pattern", "minimum",
}
_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    """Return every place where ``value`` breaks ``schema``, as ``path: problem`` lines."""
    unknown = set(schema) - _KNOWN_KEYWORDS
    if unknown:
        raise ValueError(f"{path}: the test validator does not support {sorted(unknown)}")
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return schema_errors(value, root["$defs"][name], root, path)

    errors: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, name) for name in names):
            return [f"{path}: expected {' or '.join(names)}, got {value!r}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below {schema['minimum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing {key!r}")
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                errors.extend(schema_errors(item, properties[key], root, f"{path}.{key}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected {key!r}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors.extend(schema_errors(item, schema["items"], root, f"{path}[{index}]"))
    return errors


@pytest.fixture(scope="module")
def check_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


# --- fixtures ------------------------------------------------------------------------------------


def small_snapshot() -> ClusterSnapshot:
    """Two nodes with a few interfaces and routes in documentation ranges."""
    nodes = []
    for number, name in ((1, "node-a"), (2, "node-b")):
        eth0 = Interface(
            name="eth0", index=2, kind="veth", state="UP", mtu=1500, flags=("UP", "LOWER_UP"),
            addresses=(Address(4, f"192.0.2.{number}", 24),),
        )
        routes = RouteTable.from_rows([
            Route.make("192.0.2.0/24", dev="eth0", protocol="kernel", scope=253),
            Route.make("default", gateway="192.0.2.254", dev="eth0"),
        ])
        nodes.append(NodeSnapshot(name=name, interfaces=(eth0,), routes=routes))
    gap = Gap("node-b", "iptables", "iptables-save is not installed")
    return ClusterSnapshot(nodes=tuple(nodes), gaps=(gap,), source="netns", collected_at="2026-01-01T00:00:00+00:00")


@pytest.fixture()
def snapshot_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.json"
    path.write_text(dumps_snapshot(small_snapshot()))
    return path


def finding_spec() -> CheckSpec:
    """A check, built without registering it, that reports one finding of each severity."""

    def produce(snapshot: ClusterSnapshot) -> list[Finding]:
        evidence = (Evidence("node-a", "routes", "default via 192.0.2.254 dev eth0", 3),)
        return [
            Finding("test-findings", Severity.ERROR, ("node-a",), "route is wrong", evidence, ("fix-route",)),
            Finding("test-findings", Severity.WARNING, ("node-a", "node-b"), "MTU differs"),
            Finding("test-findings", Severity.INFO, ("node-b",), "no iptables"),
        ]

    return CheckSpec("test-findings", "Findings for tests", Severity.ERROR, ("any",), produce, "")


def netdoctor_command() -> list[str]:
    """Return the argv prefix of the installed console script."""
    script = Path(sys.executable).parent / "netdoctor"
    if script.exists():
        return [str(script)]
    found = shutil.which("netdoctor")
    if found is None:
        pytest.fail("the netdoctor console script is not installed next to the test interpreter or on PATH")
    return [found]


def run_cli(*arguments: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run netdoctor in a subprocess, outside the repository so that it uses the installed package."""
    environment = dict(os.environ)
    environment.pop("NO_COLOR", None)
    environment.update(env or {})
    return subprocess.run(
        [*netdoctor_command(), *arguments], check=False, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(completed: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, completed.stderr
    for text in expected:
        assert text in lines[0]


# --- JSON report ---------------------------------------------------------------------------------


def test_check_json_matches_schema(tmp_path: Path, snapshot_file: Path, check_schema: dict[str, Any]) -> None:
    completed = run_cli("check", "--json", "--snapshot", str(snapshot_file), cwd=tmp_path)

    assert completed.returncode in (0, 1), completed.stderr
    document = json.loads(completed.stdout)
    assert schema_errors(document, check_schema, check_schema) == []
    assert document["schema"] == "netdoctor.check/1"
    assert [node["name"] for node in document["nodes"]] == ["node-a", "node-b"]
    assert document["checks"] == sorted(catalogue())
    assert {"node": "node-b", "source": "iptables", "reason": "iptables-save is not installed"} in document["gaps"]
    errors = document["summary"]["error"]
    assert completed.returncode == (1 if errors else 0)


def test_strict_json_keeps_report(tmp_path: Path, snapshot_file: Path) -> None:
    completed = run_cli("check", "--json", "--strict", "--snapshot", str(snapshot_file), cwd=tmp_path)

    # The snapshot has a gap (no iptables-save on node-b): the status is 2 and the report is still printed.
    assert completed.returncode == 2
    assert json.loads(completed.stdout)["gaps"]
    assert "Traceback" not in completed.stderr
    assert "Error: --strict: the report is incomplete (1 gap(s): 1 not collected; in the report's gaps)" in completed.stderr


def test_report_json_with_findings(check_schema: dict[str, Any]) -> None:
    report = run_checks(small_snapshot(), [finding_spec()])
    document = report_to_json(report)

    assert schema_errors(document, check_schema, check_schema) == []
    assert document["summary"] == {"error": 1, "warning": 1, "info": 1}
    assert [finding["severity"] for finding in document["findings"]] == ["error", "warning", "info"]
    first = document["findings"][0]
    assert first["evidence"] == [
        {"node": "node-a", "source": "routes", "item": "default via 192.0.2.254 dev eth0", "line": 3}
    ]
    assert first["fixes"] == ["fix-route"]
    assert document["findings"][1]["nodes"] == ["node-a", "node-b"]


def test_report_json_has_details(check_schema: dict[str, Any]) -> None:
    from netdoctor.capture.bundle import load_bundle
    from netdoctor.engine import load_checks

    case = Path(__file__).resolve().parent.parent / "fixtures" / "cases" / "rp-filter-strict-fail"
    document = report_to_json(run_checks(load_bundle(case), load_checks(["rp-filter-strict"])))

    assert schema_errors(document, check_schema, check_schema) == []
    details = document["findings"][0]["details"]
    assert details["interface"] == "eth1"
    assert details["sysctl"] == "net.ipv4.conf.eth1.rp_filter"
    assert details["value"] == "1"
    assert all(isinstance(value, str) for value in details.values())


def test_schema_validator_rejects_bad_reports(check_schema: dict[str, Any]) -> None:
    document = report_to_json(run_checks(small_snapshot(), [finding_spec()]))

    wrong_severity = json.loads(json.dumps(document))
    wrong_severity["findings"][0]["severity"] = "fatal"
    missing_summary = json.loads(json.dumps(document))
    del missing_summary["summary"]
    extra_key = json.loads(json.dumps(document))
    extra_key["gaps"][0]["hint"] = "x"
    zero_line = json.loads(json.dumps(document))
    zero_line["findings"][0]["evidence"][0]["line"] = 0

    assert schema_errors(wrong_severity, check_schema, check_schema)
    assert schema_errors(missing_summary, check_schema, check_schema)
    assert schema_errors(extra_key, check_schema, check_schema)
    assert schema_errors(zero_line, check_schema, check_schema)


def test_exit_code_follows_threshold() -> None:
    report = run_checks(small_snapshot(), [finding_spec()])
    clean = run_checks(small_snapshot(), [])

    assert exit_code(report, Severity.ERROR) == 1
    assert exit_code(report, Severity.INFO) == 1
    assert exit_code(clean, Severity.INFO) == 0

    warnings_only = run_checks(
        small_snapshot(),
        [CheckSpec("warn-only", "", Severity.WARNING, ("any",),
                   lambda _: [Finding("warn-only", Severity.WARNING, ("node-a",), "w")], "")],
    )
    assert exit_code(warnings_only, Severity.ERROR) == 0
    assert exit_code(warnings_only, Severity.WARNING) == 1
    assert exit_code(warnings_only, Severity.INFO) == 1


def test_broken_check_becomes_gap() -> None:
    def broken(snapshot: ClusterSnapshot) -> list[Finding]:
        raise ZeroDivisionError("division by zero")

    report = run_checks(small_snapshot(), [CheckSpec("broken-check", "", Severity.ERROR, ("any",), broken, "")])
    document = report_to_json(report)

    assert {"node": None, "source": "check:broken-check",
            "reason": "the check failed: ZeroDivisionError: division by zero"} in document["gaps"]


def etcd_without_config(tmp_path: Path) -> Path:
    """Write a snapshot of two flannel nodes whose etcd has no /coreos.com/network/config."""
    nodes = tuple(
        NodeSnapshot(name, flannel_env=FlannelSubnetEnv(network="10.244.0.0/16", subnet=f"10.244.{number}.1/24"))
        for number, name in ((1, "node-a"), (2, "node-b"))
    )
    snapshot = ClusterSnapshot(nodes=nodes, etcd=EtcdData((("/registry/ranges/serviceips", "{}"),)))
    path = tmp_path / "etcd.json"
    path.write_text(dumps_snapshot(snapshot))
    return path


def test_fail_on_thresholds_end_to_end(tmp_path: Path) -> None:
    snapshot_path = etcd_without_config(tmp_path)
    arguments = ("check", "--json", "--check", "etcd-network-config-missing", "--snapshot", str(snapshot_path))

    completed = run_cli(*arguments, cwd=tmp_path)
    document = json.loads(completed.stdout)
    assert document["checks"] == ["etcd-network-config-missing"]
    assert document["findings"], "the check found nothing in a snapshot without a network config"
    severity = Severity.parse(document["findings"][0]["severity"])
    assert document["findings"][0]["fixes"] == ["write-flannel-network-config"]

    for threshold in Severity:
        result = run_cli(*arguments, "--fail-on", threshold.label, cwd=tmp_path)
        expected = 1 if severity >= threshold else 0
        assert result.returncode == expected, f"--fail-on {threshold.label}: {result.stderr}"


def test_human_output_of_real_finding(tmp_path: Path) -> None:
    snapshot_path = etcd_without_config(tmp_path)
    completed = run_cli("check", "--check", "etcd-network-config-missing", "--snapshot", str(snapshot_path),
                        "--fail-on", "info", cwd=tmp_path)

    assert completed.returncode == 1, completed.stderr
    assert "[etcd-network-config-missing] /coreos.com/network/config is absent" in completed.stdout
    assert "nodes: node-a, node-b" in completed.stdout
    assert "1 check(s) run:" in completed.stdout


# --- human output --------------------------------------------------------------------------------

_COLOUR_SGR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])[0-9;]*m")


def test_human_output_summarises_large_cluster() -> None:
    buffer = io.StringIO()
    render_human(run_checks(synthetic.generate("calico", 30), load_checks(["route-missing"])), make_console(buffer))
    lines = buffer.getvalue().splitlines()

    assert lines[1] == "  backend calico: 30 node(s): node00000, node00001, node00002 and 27 more"
    assert not any(line.startswith("  node00003") for line in lines)


def test_human_output_groups_by_severity() -> None:
    buffer = io.StringIO()
    render_human(run_checks(small_snapshot(), [finding_spec()]), make_console(buffer))
    text = buffer.getvalue()

    assert text.index("ERROR (1)") < text.index("WARNING (1)") < text.index("INFO (1)")
    assert "[test-findings] route is wrong" in text
    assert "nodes: node-a" in text
    assert "node-a routes, line 3: default via 192.0.2.254 dev eth0" in text
    assert "fix: fix-route" in text
    assert "node-a: backend not detected" in text
    assert "node-b: iptables: iptables-save is not installed" in text
    assert "1 check(s) run: 1 error, 1 warning, 1 info, 1 gap(s)" in text
    assert "\x1b[" not in text


def test_human_output_colour_on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    report = run_checks(small_snapshot(), [finding_spec()])
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = io.StringIO()
    render_human(report, make_console(coloured, force_terminal=True))

    monkeypatch.setenv("NO_COLOR", "1")
    plain = io.StringIO()
    render_human(report, make_console(plain, force_terminal=True))

    assert _COLOUR_SGR.search(coloured.getvalue())
    assert not _COLOUR_SGR.search(plain.getvalue())
    assert "route is wrong" in plain.getvalue()


def test_check_human_output_off_terminal(tmp_path: Path, snapshot_file: Path) -> None:
    completed = run_cli("check", "--snapshot", str(snapshot_file), cwd=tmp_path)

    assert completed.returncode in (0, 1), completed.stderr
    assert "netdoctor: 2 node(s) from netns" in completed.stdout
    assert "NOT COLLECTED (1)" in completed.stdout
    assert "\x1b[" not in completed.stdout


# --- bad input -----------------------------------------------------------------------------------


def test_missing_snapshot_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.json"
    completed = run_cli("check", "--json", "--snapshot", str(missing), cwd=tmp_path)

    assert_one_line_error(completed, str(missing), "not found", "netdoctor collect")
    assert completed.stdout == ""


def test_invalid_json_snapshot(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "netdoctor.snapshot/1",\n  "nodes": [\n')
    completed = run_cli("check", "--json", "--snapshot", str(broken), cwd=tmp_path)

    assert_one_line_error(completed, str(broken), "invalid JSON", "line 3")


def test_wrong_schema_version(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "netdoctor.snapshot/0", "nodes": []}))
    completed = run_cli("check", "--snapshot", str(old), cwd=tmp_path)

    assert_one_line_error(completed, str(old), "netdoctor.snapshot/0", SNAPSHOT_SCHEMA)


def test_snapshot_with_bad_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": SNAPSHOT_SCHEMA, "nodes": [{"name": "n1", "interfaces": "eth0"}]}))
    completed = run_cli("check", "--snapshot", str(bad), cwd=tmp_path)

    assert_one_line_error(completed, str(bad), "$.nodes[0].interfaces", "expected a list")


def _corrupt_route_column(source: Path, target: Path, column: str) -> None:
    data = json.loads(source.read_text())
    routes = data["nodes"][0]["routes"]["columns"]
    text = routes[column]["u32"] if isinstance(routes[column], dict) else routes[column]
    corrupt = "!" + text[1:]
    routes[column] = {"u32": corrupt} if isinstance(routes[column], dict) else corrupt
    target.write_text(json.dumps(data))


def test_check_names_corrupt_column_it_reads(tmp_path: Path, snapshot_file: Path) -> None:
    # Check tests a column's base64 when a check first reads it. The checks read every route's destination.
    bad = tmp_path / "bad.json"
    _corrupt_route_column(snapshot_file, bad, "dst")
    completed = run_cli("check", "--json", "--snapshot", str(bad), cwd=tmp_path)

    assert_one_line_error(completed, str(bad), "$.nodes[0].routes.dst", "invalid base64")
    assert completed.stdout == ""


def test_collect_names_corrupt_column_on_load(tmp_path: Path, snapshot_file: Path) -> None:
    bad = tmp_path / "bad.json"
    _corrupt_route_column(snapshot_file, bad, "metric")
    completed = run_cli("collect", "--snapshot", str(bad), "-o", str(tmp_path / "out.json"), cwd=tmp_path)

    assert_one_line_error(completed, str(bad), "$.nodes[0].routes.metric", "invalid base64")
    assert not (tmp_path / "out.json").exists()


def test_bad_field_names_file_called_dollar(tmp_path: Path) -> None:
    # A JSON path starts with "$", so a file of that name must still be named before the path.
    bad = tmp_path / "$"
    bad.write_text(json.dumps({"schema": SNAPSHOT_SCHEMA, "nodes": [{"name": "n1", "interfaces": "eth0"}]}))
    completed = run_cli("check", "--snapshot", "$", cwd=tmp_path)

    assert_one_line_error(completed, "Error: $: invalid snapshot at $.nodes[0].interfaces")


@nslib.needs_root
def test_missing_namespace(tmp_path: Path) -> None:
    completed = run_cli("check", "--netns", "nd-absent-namespace", cwd=tmp_path)

    assert_one_line_error(completed, "nd-absent-namespace", "not found", "ip netns list")


def test_invalid_namespace_name(tmp_path: Path) -> None:
    completed = run_cli("check", "--netns", "../etc", cwd=tmp_path)

    assert_one_line_error(completed, "'../etc'", "not a valid namespace name")


def test_two_sources_rejected(tmp_path: Path, snapshot_file: Path) -> None:
    completed = run_cli("check", "--netns", "nd-a", "--snapshot", str(snapshot_file), cwd=tmp_path)

    assert_one_line_error(completed, "--netns and --snapshot cannot be combined")


def test_etcd_certificate_with_snapshot_rejected(tmp_path: Path, snapshot_file: Path) -> None:
    completed = run_cli("check", "--snapshot", str(snapshot_file), "--etcd-cacert", str(snapshot_file), cwd=tmp_path)

    assert_one_line_error(completed, "--etcd-cacert applies to live sources only")


def test_snapshot_without_nodes_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"schema": "netdoctor.snapshot/1", "nodes": []}))

    completed = run_cli("check", "--snapshot", str(empty), cwd=tmp_path)

    assert_one_line_error(completed, "has no nodes and no etcd keys")


def test_gzip_snapshot_gets_hint(tmp_path: Path, snapshot_file: Path) -> None:
    packed = tmp_path / "snapshot.json.gz"
    packed.write_bytes(gzip.compress(snapshot_file.read_bytes()))

    completed = run_cli("check", "--snapshot", str(packed), cwd=tmp_path)

    assert_one_line_error(completed, "looks gzip-compressed")


def test_snapshot_that_is_not_utf8_names_the_byte(tmp_path: Path, snapshot_file: Path) -> None:
    text = snapshot_file.read_bytes()
    bad = tmp_path / "latin1.json"
    bad.write_bytes(text[:100] + b"\xe9" + text[101:])

    completed = run_cli("check", "--snapshot", str(bad), cwd=tmp_path)

    assert_one_line_error(completed, str(bad), "not UTF-8 text", "at byte 100", "save the file as UTF-8")


def test_snapshot_with_byte_order_mark_reads_like_without(tmp_path: Path, snapshot_file: Path) -> None:
    marked = tmp_path / "marked.json"
    marked.write_bytes(b"\xef\xbb\xbf" + snapshot_file.read_bytes())

    plain = run_cli("check", "--json", "--snapshot", str(snapshot_file), cwd=tmp_path)
    completed = run_cli("check", "--json", "--snapshot", str(marked), cwd=tmp_path)

    assert completed.stderr == ""
    assert (completed.returncode, completed.stdout) == (plain.returncode, plain.stdout)


def test_second_byte_order_mark_named(tmp_path: Path, snapshot_file: Path) -> None:
    marked = tmp_path / "marked.json"
    marked.write_bytes(b"\xef\xbb\xbf" * 2 + snapshot_file.read_bytes())

    completed = run_cli("check", "--snapshot", str(marked), cwd=tmp_path)

    assert_one_line_error(completed, "invalid JSON at line 1 column 1: a byte order mark where the JSON should start")
    assert "utf-8-sig" not in completed.stderr


def test_snapshot_read_from_pipe(tmp_path: Path, snapshot_file: Path) -> None:
    plain = run_cli("check", "--json", "--snapshot", str(snapshot_file), cwd=tmp_path)
    environment = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    completed = subprocess.run([*netdoctor_command(), "check", "--json", "--snapshot", "/dev/stdin"],
                               input=snapshot_file.read_text(), check=False, cwd=tmp_path, env=environment,
                               capture_output=True, text=True, timeout=120)

    assert completed.stderr == ""
    assert (completed.returncode, completed.stdout) == (plain.returncode, plain.stdout)


def test_device_as_snapshot_is_refused_before_reading(tmp_path: Path) -> None:
    # /dev/zero never ends, so reading it would take all memory.
    completed = run_cli("check", "--snapshot", "/dev/zero", cwd=tmp_path)

    assert_one_line_error(completed, "cannot read snapshot file /dev/zero: it is a device, not a file")


def test_endless_pipe_as_snapshot_ends_with_one_line(tmp_path: Path) -> None:
    # Under a 1 GB address-space limit, reading the output of yes runs out of memory in about a second.
    script = f"ulimit -v 1000000; yes | {shlex.join(netdoctor_command())} check --snapshot /dev/stdin"
    completed = subprocess.run(["bash", "-c", script], check=False, cwd=tmp_path, capture_output=True, text=True,
                               timeout=120)

    assert_one_line_error(completed, "cannot read snapshot file /dev/stdin: not enough memory to load it")


def test_empty_snapshot_file_is_invalid_json(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.touch()

    completed = run_cli("check", "--snapshot", str(empty), cwd=tmp_path)

    assert_one_line_error(completed, str(empty), "invalid JSON at line 1 column 1")


def test_tui_two_sources_rejected_before_terminal(tmp_path: Path, snapshot_file: Path) -> None:
    # Without a terminal on stdin, the conflict is still what is reported.
    completed = run_cli("--snapshot", str(snapshot_file), "--bundle", str(tmp_path), cwd=tmp_path)

    assert_one_line_error(completed, "--snapshot and --bundle cannot be combined")


def test_unknown_check_id(tmp_path: Path, snapshot_file: Path) -> None:
    completed = run_cli("check", "--check", "no-such-check", "--snapshot", str(snapshot_file), cwd=tmp_path)

    assert_one_line_error(completed, "no-such-check", "netdoctor checks")


def test_invalid_fail_on(tmp_path: Path, snapshot_file: Path) -> None:
    completed = run_cli("check", "--fail-on", "fatal", "--snapshot", str(snapshot_file), cwd=tmp_path)

    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "'fatal' is not one of 'error', 'warning', 'info'" in completed.stderr


def test_missing_bundle(tmp_path: Path) -> None:
    completed = run_cli("check", "--bundle", str(tmp_path / "absent.tar.gz"), cwd=tmp_path)

    assert_one_line_error(completed, "absent.tar.gz", "not found")


def test_bundle_not_an_archive(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(b"this is not a tar archive")
    completed = run_cli("check", "--bundle", str(fake), cwd=tmp_path)

    assert_one_line_error(completed, "invalid bundle", str(fake))


def test_check_bundle_directory(tmp_path: Path, check_schema: dict[str, Any]) -> None:
    node = tmp_path / "bundle" / "nodes" / "node-a"
    node.mkdir(parents=True)
    (node / "ip-route.txt").write_text(
        "default via 192.0.2.254 dev eth0\n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.1\n"
    )
    (node / "sysctl.txt").write_text("net.ipv4.ip_forward = 1\n")
    completed = run_cli("check", "--json", "--bundle", str(tmp_path / "bundle"), cwd=tmp_path)

    assert completed.returncode in (0, 1), completed.stderr
    document = json.loads(completed.stdout)
    assert schema_errors(document, check_schema, check_schema) == []
    assert [entry["name"] for entry in document["nodes"]] == ["node-a"]
    assert document["source"] == "bundle:bundle"


def test_unwritable_collect_output(tmp_path: Path, snapshot_file: Path) -> None:
    target = tmp_path / "no-such-dir" / "out.json"
    completed = run_cli("collect", "--snapshot", str(snapshot_file), "-o", str(target), cwd=tmp_path)

    assert_one_line_error(completed, str(target), "cannot write")


# --- startup cost --------------------------------------------------------------------------------

_MODULE_PROBE = """
import json, sys
from netdoctor.cli import main
try:
    main(sys.argv[2:], prog_name="netdoctor")
finally:
    with open(sys.argv[1], "w") as handle:
        json.dump(sorted(sys.modules), handle)
"""


def modules_loaded(tmp_path: Path, *arguments: str) -> tuple[int, set[str]]:
    """Run the CLI in a fresh interpreter and return its exit status and every module it imported."""
    listing = tmp_path / "modules.json"
    completed = subprocess.run(
        [sys.executable, "-c", _MODULE_PROBE, str(listing), *arguments],
        check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return completed.returncode, set(json.loads(listing.read_text()))


def test_check_json_imports_little(tmp_path: Path, snapshot_file: Path) -> None:
    _, modules = modules_loaded(tmp_path, "check", "--json", "--snapshot", str(snapshot_file))

    for heavy in ("rich", "textual", "etcd3", "pyroute2", "grpc"):
        assert heavy not in modules
    assert "netdoctor.collect" not in modules
    assert not any(name.startswith("netdoctor.collectors.") for name in modules)
    # Fixer ids come from the fixers index, so the fix-plan machinery and the fixers stay unloaded.
    assert "netdoctor.fix" not in modules
    assert not any(name.startswith("netdoctor.fixers.") for name in modules)


#: Modules that 'check --json --snapshot FILE' does without, because importing each of them took a
#: noticeable share of its start-up time; docs/benchmarks.md has the figures.
AVOIDED_AT_STARTUP = ("click", "dataclasses", "inspect", "logging", "pathlib", "socket", "threading", "ipaddress",
                      "subprocess", "shutil", "textwrap", "base64")


def test_check_json_skips_slow_imports(tmp_path: Path, snapshot_file: Path) -> None:
    empty = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sorted(sys.modules)))"],
                           check=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    # An editable install's import hook loads pathlib into every interpreter; such modules are not the CLI's doing.
    startup = set(json.loads(empty.stdout))
    _, modules = modules_loaded(tmp_path, "check", "--json", "--snapshot", str(snapshot_file))

    for name in AVOIDED_AT_STARTUP:
        assert name in startup or name not in modules, name


def test_check_imports_only_chosen_check(tmp_path: Path, snapshot_file: Path) -> None:
    index = catalogue()
    if len(set(index.values())) < 2:
        pytest.skip("the catalogue needs checks in two modules to tell them apart")
    chosen = min(index)
    _, modules = modules_loaded(tmp_path, "check", "--json", "--check", chosen, "--snapshot", str(snapshot_file))

    loaded = {name.removeprefix("netdoctor.checks.") for name in modules if name.startswith("netdoctor.checks.")}
    assert loaded == {index[chosen]}


# --- catalogue commands --------------------------------------------------------------------------


def test_checks_lists_catalogue(tmp_path: Path) -> None:
    completed = run_cli("checks", "--json", cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    rows = json.loads(completed.stdout)
    assert [row["id"] for row in rows] == sorted(catalogue())
    for row in rows:
        assert row["severity"] in ("error", "warning", "info")
        assert row["backends"]
        assert row["title"]

    table = run_cli("checks", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert f"{len(rows)} check(s)" in table.stdout


@pytest.mark.parametrize("check_id", sorted(catalogue()))
def test_explain_prints_headings(tmp_path: Path, check_id: str) -> None:
    completed = run_cli("explain", check_id, cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"{check_id}: ")
    for heading in ("What it checks", "Why it matters", "Known problems", "Example", "Fix safety"):
        assert heading in completed.stdout


def test_explain_unknown_id(tmp_path: Path) -> None:
    completed = run_cli("explain", "no-such-check", cwd=tmp_path)

    assert_one_line_error(completed, "no-such-check")


# --- collection ----------------------------------------------------------------------------------


def test_collect_from_snapshot_round_trip(tmp_path: Path, snapshot_file: Path) -> None:
    output = tmp_path / "copy.json"
    completed = run_cli("collect", "--snapshot", str(snapshot_file), "-o", str(output), cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    assert "2 node(s), 1 gap(s)" in completed.stderr
    assert loads_snapshot(output.read_text()) == small_snapshot()


@nslib.needs_root
def test_collect_netns_names_nodes(tmp_path: Path) -> None:
    with nslib.namespaces("cli-a", "cli-b") as (first, second):
        output = tmp_path / "lab.json"
        completed = run_cli("collect", "--netns", f"{first.name},{second.name}", "-o", str(output), cwd=tmp_path)

        assert completed.returncode == 0, completed.stderr
        snapshot = loads_snapshot(output.read_text())
        assert snapshot.node_names == tuple(sorted((first.name, second.name)))
        assert snapshot.source == "netns"


@nslib.needs_root
def test_check_netns_with_faults(tmp_path: Path, check_schema: dict[str, Any]) -> None:
    with nslib.namespaces("cli-a", "cli-b") as (first, second):
        first.ip(f"link add eth0 type veth peer name eth0 netns {second.name}")
        for number, namespace in ((1, first), (2, second)):
            namespace.ip(f"addr add 10.250.0.{number}/24 dev eth0")
            namespace.ip("link set eth0 up")
            namespace.ip("link add docker0 type bridge")
            namespace.ip("addr add 172.17.0.1/16 dev docker0")
            namespace.ip("link add veth0 type veth peer name container0")
            namespace.ip("link set veth0 master docker0")
            for device in ("veth0", "container0", "docker0"):
                namespace.ip(f"link set {device} up")
        second.run("iptables -A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited")

        completed = run_cli("check", "--json", "--netns", f"{first.name},{second.name}", cwd=tmp_path)

    assert completed.returncode == 1, completed.stderr
    document = json.loads(completed.stdout)
    assert schema_errors(document, check_schema, check_schema) == []
    assert [node["name"] for node in document["nodes"]] == sorted((first.name, second.name))
    by_check = {finding["check"]: finding for finding in document["findings"]}
    assert by_check["bridge-subnet-overlap"]["nodes"] == sorted((first.name, second.name))
    assert by_check["bridge-subnet-overlap"]["severity"] == "error"
    assert by_check["icmp-blocked"]["nodes"] == [second.name]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
def test_local_check_without_root(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *netdoctor_command(), "check", "--json"]
    completed = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                               env={**os.environ, "HOME": str(tmp_path)})

    assert completed.returncode in (0, 1), completed.stderr
    document = json.loads(completed.stdout)
    privileges = [gap for gap in document["gaps"] if gap["source"] == "privileges"]
    assert len(privileges) == 1
    assert "run it as root" in privileges[0]["reason"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
@pytest.mark.parametrize("command", [["up"], ["down"], ["status"], ["break", "icmp-blocked"], ["heal"]])
def test_lab_command_without_root(command: list[str]) -> None:
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *netdoctor_command(), "lab", *command,
            "--name", "nonroot"]
    completed = subprocess.run(argv, check=False, cwd="/", capture_output=True, text=True, timeout=120)

    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip() == (f"Error: 'netdoctor lab {command[0]}' needs root: the lab's nodes are network "
                                        "namespaces and the processes in them; run it as root")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
def test_path_option_under_unsearchable_directory(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *netdoctor_command(), "lab", "up",
            "--state-dir", str(closed / "lab")]
    completed = subprocess.run(argv, check=False, cwd="/", capture_output=True, text=True, timeout=120)

    assert completed.returncode == 2, completed.stderr
    assert f"argument --state-dir: cannot look up '{closed / 'lab'}': Permission denied" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("command", [["collect", "-o"], ["runbook", "-o"], ["bundle", "-o"], ["fix", "--save"]])
def test_output_in_missing_directory_fails_before_collecting(tmp_path: Path, command: list[str]) -> None:
    target = tmp_path / "missing" / "out"

    result = invoke(*command, str(target))

    assert result.exit_code == 2, result.output
    assert f"cannot write '{target}': directory '{target.parent}' does not exist; create it first" in result.output
    assert "wrote" not in result.output


def test_output_path_that_names_no_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("a file, not a directory\n")

    under_file = invoke("collect", "-o", str(tmp_path / "plain" / "out.json"))
    slash = invoke("collect", "-o", f"{tmp_path / 'newdir'}/")

    assert under_file.exit_code == 2
    assert slash.exit_code == 2
    assert f"cannot write '{tmp_path / 'plain' / 'out.json'}': '{tmp_path / 'plain'}' is not a directory" \
        in under_file.output
    assert f"'{tmp_path / 'newdir'}/' ends with '/', so it names a directory; expected a file" in slash.output
    assert not (tmp_path / "newdir").exists()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
def test_output_in_directory_without_write_permission() -> None:
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *netdoctor_command(), "bundle", "-o",
            "/etc/nd-bundle.tar.gz"]
    completed = subprocess.run(argv, check=False, cwd="/", capture_output=True, text=True, timeout=120)

    assert completed.returncode == 2, completed.stderr
    assert "cannot write '/etc/nd-bundle.tar.gz': this user may not create files in '/etc'" in completed.stderr
    assert not Path("/etc/nd-bundle.tar.gz").exists()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
def test_output_file_the_user_may_not_replace() -> None:
    # /tmp lets every user create files, but root's file in it stays root's.
    handle, name = tempfile.mkstemp(prefix="nd-readonly-", suffix=".json")
    os.close(handle)
    try:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *netdoctor_command(), "collect", "-o",
                name]
        completed = subprocess.run(argv, check=False, cwd="/", capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(name)

    assert completed.returncode == 2, completed.stderr
    assert f"cannot write '{name}': the file exists and this user may not replace it" in completed.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
def test_bundle_under_unsearchable_directory(tmp_path: Path) -> None:
    # tmp_path's directories have mode 0700 and belong to root, so user nobody cannot search them.
    case = tmp_path / "case"
    (case / "nodes" / "n1").mkdir(parents=True)
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *netdoctor_command(), "check", "--bundle",
            str(case)]
    completed = subprocess.run(argv, check=False, cwd="/", capture_output=True, text=True, timeout=120)

    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip() == f"Error: cannot read bundle {case}: Permission denied"


def test_module_runs_like_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-m", "netdoctor", "checks"], cwd=tmp_path, capture_output=True,
                               text=True, check=False, timeout=60)

    assert completed.returncode == 0, completed.stderr
    assert "route-missing" in completed.stdout


def test_refresh_rejects_nan(tmp_path: Path) -> None:
    completed = run_cli("--refresh", "nan", cwd=tmp_path)

    assert_one_line_error(completed, "--refresh", "'nan' is not a finite number")


def test_refresh_range_error_shows_input(tmp_path: Path) -> None:
    completed = run_cli("--refresh", "0", cwd=tmp_path)

    assert_one_line_error(completed, "--refresh", "0 is not in the range x>=1")
    assert "0.0" not in completed.stderr
