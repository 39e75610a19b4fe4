"""Write a support bundle: capture every node, redact, optionally anonymize, check, and pack one ``.tar.gz``.

The archive holds one top folder with the capture layout (``nodes/``,
``cluster/``) that ``netdoctor check --bundle`` reads, plus ``snapshot.json``,
``report.json``, ``report.md``, ``manifest.json`` and ``netdoctor.log``. The
snapshot and report are computed from the members as written, so they match
what ``check --bundle`` gives on the archive, anonymized or not. The mapping of
an anonymized bundle's names and MACs goes to a file beside the archive, never
inside it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdoctor.capture.bundle import (
    LOG_FILE,
    MANIFEST_FILE,
    REPORT_JSON_FILE,
    REPORT_MARKDOWN_FILE,
    SNAPSHOT_FILE,
    load_bundle,
)
from netdoctor.model import ClusterSnapshot
from netdoctor.supportbundle.anonymize import Anonymizer
from netdoctor.supportbundle.capture import (
    NodeCapture,
    PlannedStep,
    capture_node,
    merge_outputs,
    now_iso,
    plan_node,
)
from netdoctor.supportbundle.manifest import Manifest, Step
from netdoctor.supportbundle.redact import redact_text
from netdoctor.target import Target

logger = logging.getLogger(__name__)

#: Default time limit of one command, in seconds.
DEFAULT_TIMEOUT = 60.0
#: Default cap of one command's output or one file, in bytes. ``ip -j -d route show table all``
#: of a node with 100,000 routes is 14.7 MB (iproute2 6.1), so 64 MiB leaves room for 400,000.
DEFAULT_OUTPUT_CAP = 64 * 1024 * 1024
#: Default cap of all members together before compression, in bytes. A node with 100,000
#: routes writes about 25 MB (JSON and text routes, addresses, neighbours, rules), so 1 GiB
#: holds about 40 such nodes; the reader accepts up to 4 GiB.
DEFAULT_SIZE_CAP = 1024 * 1024 * 1024

#: The top folder inside the archive.
TOP_FOLDER = "netdoctor-bundle"

Progress = Callable[[int, int, str, str], None]
"""Called before each step with (steps done, steps in total, node, command or path)."""


class BundleWriteError(Exception):
    """The bundle could not be written at all (the output cannot be created)."""


@dataclass(frozen=True)
class BundleOptions:
    """Caps, redaction and anonymization of one bundle."""

    timeout: float = DEFAULT_TIMEOUT
    output_cap: int = DEFAULT_OUTPUT_CAP
    size_cap: int = DEFAULT_SIZE_CAP
    redact: bool = True
    #: The anonymization key; None leaves addresses and names as they are.
    anonymize_key: bytes | None = None
    #: More names to replace with tokens, beside the node names and this host's name.
    extra_names: tuple[str, ...] = ()


@dataclass
class BundleResult:
    """What :func:`write_bundle` wrote."""

    path: Path
    mapping_path: Path | None
    nodes: int
    steps: int
    failed_steps: int
    truncated: list[str] = field(default_factory=list)
    findings: int = 0
    gaps: int = 0


class _Forward(logging.Handler):
    """Passes records on to the root handlers at the levels the root logger was set to."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.threshold = level

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < self.threshold:
            return
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


@contextmanager
def _captured_log() -> Iterator[io.StringIO]:
    """Record netdoctor's log at DEBUG for the bundle, while stderr keeps its own level."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("netdoctor")
    saved = (package.level, package.propagate)
    forward = _Forward(package.getEffectiveLevel())
    package.setLevel(logging.DEBUG)
    package.propagate = False
    package.addHandler(handler)
    package.addHandler(forward)
    try:
        yield stream
    finally:
        package.removeHandler(handler)
        package.removeHandler(forward)
        package.setLevel(saved[0])
        package.propagate = saved[1]


def _capture_all(targets: Sequence[Target], options: BundleOptions, progress: Progress | None) -> list[NodeCapture]:
    capped = [
        Target(target.name, target.netns, target.root, timeout=options.timeout, output_cap=options.output_cap)
        for target in targets
    ]
    plans: list[tuple[Target, list[PlannedStep]]] = [(target, plan_node(target)) for target in capped]
    total = sum(len(steps) for _, steps in plans)
    done = 0
    captures = []

    def advance(node: str, what: str) -> None:
        nonlocal done
        if progress is not None:
            progress(done, total, node, what)
        done += 1

    for target, steps in plans:
        logger.info("%s: capturing %d steps", target.name, len(steps))
        captures.append(capture_node(target, steps, advance))
    if progress is not None:
        progress(total, total, "", "done")
    return captures


def _etcd_member(snapshot: ClusterSnapshot | None, manifest: Manifest) -> bytes | None:
    """Return ``cluster/etcd.json`` from the etcd keys read for the source, and record the step."""
    if snapshot is None:
        return None
    for gap in snapshot.gaps:
        manifest.steps.append(Step(None, "command", f"etcd: {gap.source}", None, now_iso(), error=gap.reason))
    if snapshot.etcd is None:
        return None
    data = (json.dumps(dict(snapshot.etcd.keys), indent=2) + "\n").encode("utf-8")
    manifest.steps.append(
        Step(None, "command", f"etcd keys from {snapshot.etcd.origin}", "cluster/etcd.json", now_iso(), bytes=len(data))
    )
    return data


def _apply_size_cap(members: dict[str, bytes], manifest: Manifest, cap: int) -> list[str]:
    """Cut members in capture order once the total passes ``cap``; return the cut members."""
    total = 0
    cut = []
    for name in list(members):
        size = len(members[name])
        if total + size <= cap:
            total += size
            continue
        keep = max(cap - total, 0)
        members[name] = members[name][:keep]
        total += keep
        cut.append(name)
        reason = f"cut at {keep} of {size} bytes by the bundle's {cap}-byte size cap"
        logger.warning("%s: %s", name, reason)
        found = [step for step in manifest.steps if step.member is not None and f"nodes/{step.node}/{step.member}" == name]
        for step in found or [Step(None, "file", name, name, now_iso())]:
            step.truncated = True
            step.bytes = keep
            step.error = reason
        if keep == 0:
            del members[name]
    return cut


def _redact(members: dict[str, bytes], manifest: Manifest) -> None:
    for name in list(members):
        text = members[name].decode("utf-8", "replace")
        redacted, found = redact_text(name, text)
        if found:
            members[name] = redacted.encode("utf-8")
            manifest.redactions.extend(entry.as_json() for entry in found)


def _anonymizer(targets: Sequence[Target], options: BundleOptions) -> Anonymizer | None:
    if options.anonymize_key is None:
        return None
    names = [target.name for target in targets]
    names.append(socket.gethostname())
    names.extend(options.extra_names)
    return Anonymizer(options.anonymize_key, [name for name in names if name])


def _node_members(capture: NodeCapture, manifest: Manifest) -> dict[str, bytes]:
    members = {}
    for member, data in merge_outputs(capture.outputs).items():
        members[f"nodes/{capture.node}/{member}"] = data
    manifest.steps.extend(capture.steps)
    manifest.omitted.extend(capture.omitted)
    return members


def write_bundle(
    targets: Sequence[Target],
    output: Path,
    *,
    source: str,
    cluster: ClusterSnapshot | None = None,
    options: BundleOptions | None = None,
    progress: Progress | None = None,
) -> BundleResult:
    """Capture ``targets`` and write the bundle to ``output`` (a ``.tar.gz``).

    ``cluster`` carries what the source read cluster-wide (etcd's keys and
    their gaps). A failed step is recorded in the manifest and the bundle is
    still written. Raise :class:`BundleWriteError` when ``output`` cannot be
    written.
    """
    options = options or BundleOptions()
    with _captured_log() as log:
        logger.info("bundle of %s: %d node(s), redaction %s, anonymization %s", source, len(targets),
                    "on" if options.redact else "off", "on" if options.anonymize_key else "off")  # fmt: skip
        manifest = Manifest(
            source=source,
            created_at=now_iso(),
            options={"timeout": options.timeout, "output_cap": options.output_cap, "size_cap": options.size_cap,
                     "redact": options.redact, "anonymize": options.anonymize_key is not None},
        )  # fmt: skip
        members: dict[str, bytes] = {}
        for capture in _capture_all(targets, options, progress):
            members.update(_node_members(capture, manifest))
        etcd = _etcd_member(cluster, manifest)
        if etcd is not None:
            members["cluster/etcd.json"] = etcd
        if options.redact:
            _redact(members, manifest)
        truncated = _apply_size_cap(members, manifest, options.size_cap)
        log_text = log.getvalue()

    anonymizer = _anonymizer(targets, options)
    staging = Path(tempfile.mkdtemp(prefix="nd-bundle-"))
    try:
        result = _write_archive(staging, members, manifest, log_text, anonymizer, output, options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.truncated = truncated
    result.nodes = len(targets)
    return result


def _transform(text: str, anonymizer: Anonymizer | None, redact: bool, name: str) -> str:
    if redact:
        text, _ = redact_text(name, text)
    return anonymizer.text(text) if anonymizer is not None else text


def _write_archive(
    staging: Path,
    members: dict[str, bytes],
    manifest: Manifest,
    log_text: str,
    anonymizer: Anonymizer | None,
    output: Path,
    options: BundleOptions,
) -> BundleResult:
    from netdoctor.engine import load_checks, run_checks
    from netdoctor.fix import attach_fixes
    from netdoctor.model.serialize import dumps_snapshot
    from netdoctor.report import dumps_report
    from netdoctor.supportbundle.markdown import render_markdown

    top = staging / TOP_FOLDER
    top.mkdir()
    for name, data in members.items():
        if anonymizer is not None:
            name = "/".join(anonymizer.text(part) for part in name.split("/"))
            data = anonymizer.text(data.decode("utf-8", "replace")).encode("utf-8")
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    manifest_text = manifest.to_json()
    if anonymizer is not None:
        manifest_text = anonymizer.text(manifest_text)
    (top / MANIFEST_FILE).write_text(manifest_text, encoding="utf-8")

    started = time.monotonic()
    snapshot = load_bundle(top)
    report = attach_fixes(run_checks(snapshot, load_checks()))
    logger.info("checked the bundle in %.2f s: %d finding(s), %d gap(s)", time.monotonic() - started,
                len(report.findings), len(report.gaps))  # fmt: skip
    (top / SNAPSHOT_FILE).write_text(dumps_snapshot(snapshot) + "\n", encoding="utf-8")
    (top / REPORT_JSON_FILE).write_text(dumps_report(report), encoding="utf-8")
    (top / REPORT_MARKDOWN_FILE).write_text(render_markdown(report), encoding="utf-8")
    (top / LOG_FILE).write_text(_transform(log_text, anonymizer, options.redact, LOG_FILE), encoding="utf-8")

    _pack(top, output)
    mapping_path = None
    if anonymizer is not None:
        mapping_path = output.with_name(output.name + ".mapping.json")
        _write_private(mapping_path, json.dumps(anonymizer.mapping(), indent=2) + "\n")
    failed = sum(1 for step in manifest.steps if step.error is not None)
    return BundleResult(output, mapping_path, 0, len(manifest.steps), failed, findings=len(report.findings),
                        gaps=len(report.gaps))  # fmt: skip


def _pack(top: Path, output: Path) -> None:
    """Write the archive next to ``output`` and rename it into place, so a failed run leaves no half file."""
    partial = output.with_name(output.name + ".partial")
    try:
        with tarfile.open(partial, "w:gz") as archive:
            for path in sorted(top.rglob("*")):
                if path.is_file():
                    archive.add(path, arcname=f"{TOP_FOLDER}/{path.relative_to(top).as_posix()}", recursive=False)
        os.replace(partial, output)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise BundleWriteError(f"cannot write {output}: {error.strerror or error}") from None


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: the mapping reverses the anonymization."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise BundleWriteError(f"cannot write the mapping file {path}: {error.strerror or error}") from None


def read_mapping(path: Path) -> dict[str, Any]:
    """Read a mapping file written beside an anonymized bundle."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleWriteError(f"mapping file {path} not found; it is written beside the bundle as BUNDLE.mapping.json") from None
    except (OSError, ValueError) as error:
        raise BundleWriteError(f"cannot read mapping file {path}: {error}") from None
    if not isinstance(document, dict):
        raise BundleWriteError(f"mapping file {path} is not a JSON object")
    return document
