"""Load a capture bundle (a directory or ``.tar.gz``) into a :class:`ClusterSnapshot`.

The layout is documented in ``docs/bundle-layout.md``::

    nodes/<node>/ip-addr.txt, ip-route.txt, iptables-save.txt, ...
    cluster/etcd.json, cluster/nodes.json

A missing file means "not captured" and leaves that part ``None``. A file that
does not parse becomes a gap naming the file and line; the rest still loads.
Files the layout does not name are kept by name in the snapshot, except those
that ``netdoctor bundle`` adds beside the captures. Archives are
read member by member into memory and never extracted, and members that could
escape or flood the reader are rejected before anything is parsed.
"""

from __future__ import annotations

import importlib
import json
import logging
import posixpath
import re
import tarfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from netdoctor.capture import ParseError
from netdoctor.model import ClusterSnapshot, Gap, NodeSnapshot, Provenance
from netdoctor.model.addr import AF_INET6
from netdoctor.model.routes import RouteTable

logger = logging.getLogger(__name__)

#: Largest archive member read, in bytes. ``ip -j -d route show table all`` of a
#: node with 100,000 routes is 14.7 MB (measured with iproute2 6.1 on /32 routes
#: with a gateway, device, protocol and metric).
MAX_MEMBER_BYTES = 128 * 1024 * 1024
#: Largest total of all archive members, in bytes.
MAX_TOTAL_BYTES = 4 * 1024 * 1024 * 1024
#: Most members an archive may hold.
MAX_MEMBERS = 200_000

_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


class BundleError(Exception):
    """A bundle that cannot be read at all (not found, not a bundle, a hostile archive)."""


@dataclass(frozen=True, slots=True)
class _FileSpec:
    """The snapshot field a bundle file fills, and the parser that reads it."""

    field: str
    module: str
    function: str
    #: Lower ranks win when two files fill the same field (``ip -j`` over text).
    rank: int = 0
    kwargs: tuple[tuple[str, Any], ...] = ()


#: The field of the IPv6 route files while a node loads; their routes join the node's routes.
_IPV6_ROUTES = "ipv6_routes"

#: Per-node files, by name.
NODE_FILES: dict[str, _FileSpec] = {
    "ip-addr.json": _FileSpec("interfaces", "iproute", "parse_ip_addr_json", 0),
    "ip-addr.txt": _FileSpec("interfaces", "iproute", "parse_ip_addr", 1),
    "ifconfig.txt": _FileSpec("interfaces", "ifconfig", "parse_ifconfig", 2),
    "ip-route.json": _FileSpec("routes", "iproute", "parse_ip_route_json", 0),
    "ip-route.txt": _FileSpec("routes", "iproute", "parse_ip_route", 1),
    # IPv6 routes, when the IPv4 file lacks them (see _ipv6_routes_needed).
    "ip6-route.json": _FileSpec(_IPV6_ROUTES, "iproute", "parse_ip_route_json", 0),
    "ip6-route.txt": _FileSpec(_IPV6_ROUTES, "iproute", "parse_ip_route", 1, (("family", 6),)),
    "ip-neigh.json": _FileSpec("neighbours", "iproute", "parse_ip_neigh_json", 0),
    "ip-neigh.txt": _FileSpec("neighbours", "iproute", "parse_ip_neigh", 1),
    "bridge-fdb.json": _FileSpec("fdb", "iproute", "parse_bridge_fdb_json", 0),
    "bridge-fdb.txt": _FileSpec("fdb", "iproute", "parse_bridge_fdb", 1),
    "iptables-save.txt": _FileSpec("iptables", "iptables", "parse_iptables_save", 0, (("family", 4),)),
    "ip6tables-save.txt": _FileSpec("ip6tables", "iptables", "parse_iptables_save", 0, (("family", 6),)),
    "sysctl.txt": _FileSpec("sysctls", "sysctl", "parse_sysctl"),
    "flannel-subnet.env": _FileSpec("flannel_env", "flannel", "parse_subnet_env"),
    "docker-daemon.json": _FileSpec("docker", "docker", "parse_docker_daemon"),
    "ovs-vsctl-show.txt": _FileSpec("ovs", "ovs", "parse_ovs_vsctl_show"),
    "bird-protocols.txt": _FileSpec("bgp", "bgp", "parse_bird_protocols", 0),
    "frr-bgp-summary.json": _FileSpec("bgp", "bgp", "parse_frr_bgp_summary", 0),
}

#: Files that together describe firewalld; read by one parser.
FIREWALLD_FILES = ("firewalld.txt", "firewalld-default-zone.txt", "firewalld-policies.txt")

#: Fields that several files may fill together; their parts are concatenated.
_MERGED_FIELDS = {"bgp"}

# The files that netdoctor.supportbundle.writer writes beside ``nodes/``, named once for it and this reader.
MANIFEST_FILE = "manifest.json"
SNAPSHOT_FILE = "snapshot.json"
REPORT_JSON_FILE = "report.json"
REPORT_MARKDOWN_FILE = "report.md"
LOG_FILE = "netdoctor.log"
#: The names above. The manifest is read for its gaps. The snapshot, reports and log are netdoctor's own
#: output and are not read. None of them is listed in ``extra_files``.
SUPPORT_BUNDLE_FILES = frozenset({MANIFEST_FILE, SNAPSHOT_FILE, REPORT_JSON_FILE, REPORT_MARKDOWN_FILE, LOG_FILE})


def _parser(spec: _FileSpec) -> Callable[..., Any]:
    module = importlib.import_module(f"netdoctor.capture.{spec.module}")
    function: Callable[..., Any] = getattr(module, spec.function)
    return function


def _read_directory(root: Path, unreadable: dict[str, str]) -> dict[str, bytes]:
    """Read every file under ``root``; a file that cannot be read is named in ``unreadable``."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise BundleError(f"{path}: symbolic links are not read from bundles; copy the file in instead")
        if path.is_dir():
            if path.name in NODE_FILES or path.name in FIREWALLD_FILES:
                unreadable[name] = "is a directory, not a file"
            continue
        if not path.is_file():
            unreadable[name] = "is not a regular file (a FIFO, socket or device)"
            continue
        size = path.stat().st_size
        if size > MAX_MEMBER_BYTES:
            raise BundleError(f"{path}: {size} bytes is over the {MAX_MEMBER_BYTES}-byte limit for one file")
        total += size
        if total > MAX_TOTAL_BYTES:
            raise BundleError(f"{root}: the bundle is over the {MAX_TOTAL_BYTES}-byte total limit")
        try:
            files[name] = path.read_bytes()
        except OSError as error:
            unreadable[name] = f"cannot be read: {error.strerror or error}"
    return files


def _read_archive(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r:*") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise BundleError(f"{path}: more than {MAX_MEMBERS} members")
                name = member.name
                normalized = posixpath.normpath(name)
                if name.startswith("/") or normalized.startswith("..") or "/../" in f"/{name}/":
                    raise BundleError(f"{path}: member {name!r} has an absolute or parent path; rejected")
                if member.issym() or member.islnk():
                    raise BundleError(f"{path}: member {name!r} is a link; rejected")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BundleError(f"{path}: member {name!r} is a device, FIFO or other special file; rejected")
                if member.size > MAX_MEMBER_BYTES:
                    raise BundleError(
                        f"{path}: member {name!r} is {member.size} bytes, over the {MAX_MEMBER_BYTES}-byte limit"
                    )
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise BundleError(f"{path}: members total over the {MAX_TOTAL_BYTES}-byte limit")
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                files[normalized] = handle.read(MAX_MEMBER_BYTES + 1)
            _check_archive_end(path, archive, files)
    except (tarfile.TarError, EOFError, OSError, zlib.error):
        raise BundleError(
            f"{path}: not a readable .tar.gz archive (empty, truncated, damaged or another format);"
            " create one with 'tar -czf FILE.tar.gz FOLDER' or pass the bundle folder"
        ) from None
    return files


def _check_archive_end(path: Path, archive: tarfile.TarFile, files: dict[str, bytes]) -> None:
    """Raise :class:`BundleError` unless only the zero blocks that end a tar archive follow its last member.

    ``tarfile`` ends the listing without an error at a damaged header after
    the first member, which would drop the members after it. Reading to the end
    also makes gzip compare its checksum, which it does only there.
    """
    stream = archive.fileobj
    assert stream is not None
    stream.seek(archive.offset)
    while chunk := stream.read(1 << 16):
        if chunk.strip(b"\0"):
            last = f"after member {next(reversed(files))!r}" if files else "at its start"
            raise BundleError(f"{path}: the archive is damaged {last}: what follows is not a tar member;"
                              " copy the bundle again and compare its checksum with the original")


def _strip_top_folder(files: dict[str, bytes]) -> dict[str, bytes]:
    """Accept archives whose members sit under one top folder (``case/nodes/...``)."""
    if any(name.startswith(("nodes/", "cluster/")) for name in files):
        return files
    tops = {name.split("/", 1)[0] for name in files if "/" in name}
    if len(tops) == 1:
        top = tops.pop() + "/"
        return {name[len(top):]: data for name, data in files.items() if name.startswith(top)}
    return files


def read_bundle_files(path: str | Path, unreadable: dict[str, str] | None = None) -> dict[str, bytes]:
    """Return the files of a bundle directory or archive by their path inside the bundle.

    Files of a directory bundle that cannot be read are left out and, when
    ``unreadable`` is given, named in it with the reason.
    """
    location = Path(path)
    skipped: dict[str, str] = {}
    if location.is_dir():
        files = _read_directory(location, skipped)
    elif location.is_file():
        files = _read_archive(location)
    elif not location.exists():
        raise BundleError(f"{location}: no such file or directory")
    else:
        raise BundleError(f"{location}: not a directory or a .tar.gz file")
    files = _strip_top_folder(files)
    if unreadable is not None:
        unreadable.update(skipped)
    if not any(name.startswith(("nodes/", "cluster/")) for name in files) and not skipped:
        tops = sorted({name.split("/", 1)[0] for name in files if "/" in name})
        if len(tops) > 1:
            raise BundleError(
                f"{location}: the archive holds several top folders ({', '.join(tops[:5])}) and no nodes/"
                " or cluster/ folder; a bundle holds one layout (see docs/bundle-layout.md)"
            )
        raise BundleError(
            f"{location}: no nodes/ or cluster/ folder; a bundle holds nodes/<node>/<file> captures"
            " (see docs/bundle-layout.md)"
        )
    return files


def _decode(name: str, data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _load_node(name: str, files: Mapping[str, bytes], gaps: list[Gap]) -> NodeSnapshot:
    """Parse the files of one node; each parse failure becomes a gap.

    When several files fill one field, the files of the lowest rank are read
    (``ip -j`` output over text). When none of them parses, the next rank's
    files are read instead, so a damaged ``ip-route.json`` beside a good
    ``ip-route.txt`` costs nothing but its gap.
    """
    candidates: dict[str, dict[int, list[tuple[str, _FileSpec]]]] = {}
    extra: list[str] = []
    for file_name in sorted(files):
        spec = NODE_FILES.get(file_name)
        if spec is None:
            if file_name not in FIREWALLD_FILES:
                extra.append(file_name)
            continue
        candidates.setdefault(spec.field, {}).setdefault(spec.rank, []).append((file_name, spec))

    values: dict[str, Any] = {}
    provenance: list[Provenance] = []
    # The IPv6 route files come last, as whether they are read depends on the routes read before.
    for field_name, ranks in sorted(candidates.items(), key=lambda item: (item[0] == _IPV6_ROUTES, item[0])):
        snapshot_field = "routes" if field_name == _IPV6_ROUTES else field_name
        if field_name == _IPV6_ROUTES and not _ipv6_routes_needed(name, values.get("routes"), ranks, gaps):
            extra.extend(file_name for files_of_rank in ranks.values() for file_name, _ in files_of_rank)
            continue
        parts: list[Any] = []
        # Files of better ranks that did not parse.
        failed: list[str] = []
        for rank in sorted(ranks):
            if parts:
                extra.extend(file_name for file_name, _ in ranks[rank])
                continue
            read: list[str] = []
            for file_name, spec in ranks[rank]:
                source = f"nodes/{name}/{file_name}"
                try:
                    text = _decode(file_name, files[file_name])
                    if spec.module == "iproute" and file_name.endswith(".json") and not text.strip():
                        raise ParseError(source, None, "the file is empty, as a capture cut short leaves it; "
                                                       "'ip -j' prints at least '[]'")
                    parts.append(_parser(spec)(text, source, **dict(spec.kwargs)))
                except ParseError as error:
                    gaps.append(Gap(name, snapshot_field, str(error)))
                    continue
                except Exception as error:  # a parser that met a value of a type it does not expect
                    logger.debug("parsing %s", source, exc_info=True)
                    gaps.append(Gap(name, snapshot_field, f"{source}: cannot be read: {type(error).__name__}: {error}"))
                    continue
                read.append(source)
                provenance.append(Provenance(snapshot_field, f"bundle:{source}"))
            if read and failed:
                gaps.append(Gap(name, snapshot_field,
                                f"{', '.join(failed)} could not be read, so {', '.join(read)} was read instead"))
            failed += [f"nodes/{name}/{file_name}" for file_name, _ in ranks[rank] if f"nodes/{name}/{file_name}" not in read]
        if not parts:
            continue
        if field_name in _MERGED_FIELDS:
            values[field_name] = tuple(item for part in parts for item in part)
        else:
            values[field_name] = parts[0]

    if _IPV6_ROUTES in values:
        ipv6 = values.pop(_IPV6_ROUTES)
        values["routes"] = RouteTable.concat([values["routes"], ipv6])
    firewalld = _load_firewalld(name, files, gaps, provenance)
    if firewalld is not None:
        values["firewalld"] = firewalld

    return NodeSnapshot(name=name, provenance=tuple(provenance), extra_files=tuple(sorted(extra)), **values)


def _ipv6_routes_needed(node: str, routes: RouteTable | None, ranks: Mapping[int, list[tuple[str, _FileSpec]]],
                        gaps: list[Gap]) -> bool:
    """Tell whether the node's ``ip6-route.*`` files are to be read and their routes joined to ``routes``.

    ``netdoctor bundle`` runs ``ip -4`` and ``ip -6`` for each form. Its
    ``ip-route.json`` has the routes of both families, so ``ip6-route.json``
    exists only when the two outputs could not be merged. Its ``ip-route.txt``
    has IPv4 routes only, and the IPv6 routes are in ``ip6-route.txt``.
    """
    if routes is None:
        # A table of IPv6 routes alone would make every IPv4 route look missing.
        names = ", ".join(f"nodes/{node}/{file_name}" for files in ranks.values() for file_name, _ in files)
        gaps.append(Gap(node, "routes", f"{names} not read: without a readable ip-route.json or ip-route.txt, the "
                                        "IPv6 routes alone would make every IPv4 route look missing"))
        return False
    # Rows sort by family, so the last row is an IPv6 route exactly when the table has one.
    return not len(routes) or routes.cells("family")[len(routes) - 1] != AF_INET6


def _load_firewalld(name: str, files: Mapping[str, bytes], gaps: list[Gap], provenance: list[Provenance]) -> Any:
    if "firewalld.txt" not in files:
        return None
    module = importlib.import_module("netdoctor.capture.firewalld")
    folder = f"nodes/{name}"
    texts = {file_name: _decode(file_name, files[file_name]) if file_name in files else None for file_name in FIREWALLD_FILES}
    try:
        state = module.parse_firewalld_state(
            texts["firewalld.txt"],
            f"{folder}/firewalld.txt",
            texts["firewalld-default-zone.txt"],
            f"{folder}/firewalld-default-zone.txt",
            texts["firewalld-policies.txt"],
            f"{folder}/firewalld-policies.txt",
        )
    except ParseError as error:
        gaps.append(Gap(name, "firewalld", str(error)))
        return None
    provenance.append(Provenance("firewalld", f"bundle:nodes/{name}/firewalld.txt"))
    return state


def _cluster_parser(function: str) -> Callable[..., Any]:
    module = importlib.import_module("netdoctor.capture.cluster")
    parser: Callable[..., Any] = getattr(module, function)
    return parser


def _manifest_gaps(data: bytes | None) -> list[Gap]:
    """Return a gap for each member that ``manifest.json`` marks as cut by a capture cap, and each failed step.

    A step that failed and wrote nothing (a file this user may not read, a
    command that exited with an error) is a source the bundle lacks. A
    manifest that cannot be read adds one gap and hides nothing else.
    """
    if data is None:
        return []
    try:
        document = json.loads(data)
        steps = document.get("steps", []) if isinstance(document, dict) else None
    except ValueError as error:
        return [Gap(None, "manifest", f"manifest.json is not valid JSON ({error}); cut members are not listed")]
    if not isinstance(steps, list):
        return [Gap(None, "manifest", "manifest.json has no 'steps' list; cut members are not listed")]
    gaps = []
    for step in steps:
        if not isinstance(step, dict):
            continue
        node = step.get("node") if isinstance(step.get("node"), str) else None
        if step.get("truncated"):
            member = step.get("member") or step.get("command") or step.get("file") or "a member"
            reason = step.get("error") or "cut by a capture cap"
            gaps.append(Gap(node, str(member), f"captured only in part: {reason}"))
        elif step.get("error") and not step.get("member"):
            origin = step.get("command") or step.get("file") or "a capture step"
            gaps.append(Gap(node, str(origin), f"not captured: {step['error']}"))
    return gaps


def load_bundle(path: str | Path) -> ClusterSnapshot:
    """Load a capture bundle; raise :class:`BundleError` when it cannot be read at all."""
    unreadable: dict[str, str] = {}
    files = read_bundle_files(path, unreadable)
    per_node: dict[str, dict[str, bytes]] = {}
    cluster_files: dict[str, bytes] = {}
    extra: list[str] = []
    for file_path, data in files.items():
        parts = file_path.split("/")
        if len(parts) == 3 and parts[0] == "nodes":
            per_node.setdefault(parts[1], {})[parts[2]] = data
        elif len(parts) == 2 and parts[0] == "cluster":
            cluster_files[parts[1]] = data
        elif file_path not in SUPPORT_BUNDLE_FILES:
            extra.append(file_path)

    gaps: list[Gap] = []
    for file_path, reason in sorted(unreadable.items()):
        parts = file_path.split("/")
        if len(parts) == 3 and parts[0] == "nodes":
            per_node.setdefault(parts[1], {})
            spec = NODE_FILES.get(parts[2])
            gaps.append(Gap(parts[1], spec.field if spec else parts[2], f"{file_path} {reason}"))
        else:
            gaps.append(Gap(None, parts[-1], f"{file_path} {reason}"))

    nodes: list[NodeSnapshot] = []
    for node_name in sorted(per_node):
        if not _NODE_NAME.match(node_name):
            gaps.append(Gap(None, "nodes", f"nodes/{node_name}: invalid node name; skipped"))
            continue
        nodes.append(_load_node(node_name, per_node[node_name], gaps))

    etcd = kube_nodes = None
    for file_name, data in sorted(cluster_files.items()):
        source = f"cluster/{file_name}"
        try:
            if file_name == "etcd.json":
                etcd = _cluster_parser("parse_etcd_json")(_decode(file_name, data), source)
            elif file_name == "nodes.json":
                kube_nodes = _cluster_parser("parse_kube_nodes")(_decode(file_name, data), source)
            else:
                extra.append(source)
        except ParseError as error:
            gaps.append(Gap(None, file_name.removesuffix(".json"), str(error)))

    gaps.extend(_manifest_gaps(files.get(MANIFEST_FILE)))
    if not per_node:
        gaps.append(Gap(None, "nodes", "no node was captured: the bundle has no nodes/<node>/ folder"))

    if etcd is not None and not etcd.origin:
        etcd = replace(etcd, origin="bundle:cluster/etcd.json")
    return ClusterSnapshot(
        nodes=tuple(nodes),
        etcd=etcd,
        kube_nodes=kube_nodes,
        gaps=tuple(gaps),
        source=f"bundle:{Path(path).name}",
        extra_files=tuple(sorted(extra)),
    )
