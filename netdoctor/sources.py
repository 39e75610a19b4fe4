"""Turn the command line's source options into a :class:`ClusterSnapshot`.

A snapshot comes from exactly one source: the local node (the default), a list
of network namespaces that each stand for a node, a practice lab, a snapshot
JSON file written by ``netdoctor collect``, or a support bundle. Live sources
can add etcd's keys read from the endpoints that :class:`EtcdOptions` names. Every input error is raised as
:class:`SourceError`, whose one-line message names the value and what to do.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import TYPE_CHECKING

from netdoctor.log import get_logger
from netdoctor.model import ClusterSnapshot, Gap, SchemaError
from netdoctor.model.record import record, replace

if TYPE_CHECKING:
    from os import PathLike
    from pathlib import Path

    # Targets run commands, so their module loads only for live sources.
    from netdoctor.target import Target

logger = get_logger(__name__)

#: The directory in which ``ip netns add`` creates the handle of a named namespace.
NETNS_DIR = "/run/netns"

#: A namespace name as ``ip netns`` accepts it; the pattern is compiled on first use.
_NETNS_NAME = r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$"


class SourceError(Exception):
    """An input that cannot be read. The message names the input and what to do."""


def parse_netns_list(text: str) -> list[str]:
    """Split a comma-separated list of namespace names; raise :class:`SourceError` for a bad name."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise SourceError(f"--netns {text!r} names no namespace; give a comma-separated list such as nd-a,nd-b")
    for name in names:
        if not re.match(_NETNS_NAME, name) or name in (".", ".."):
            raise SourceError(f"--netns: {name!r} is not a valid namespace name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SourceError(f"--netns: {', '.join(duplicates)} listed more than once")
    return names


def collect_local(name: str | None = None) -> ClusterSnapshot:
    """Collect the node this process runs on, named after its host name unless ``name`` is given.

    Without root, collection still runs: sources that need root become gaps, and
    one more gap explains why they are missing.
    """
    import socket

    from netdoctor.collect import collect_cluster, with_gaps
    from netdoctor.target import Target

    node_name = name or socket.gethostname() or "localhost"
    snapshot = collect_cluster([Target(node_name)], "local")
    if os.geteuid() != 0:
        reason = "netdoctor ran without root, so sources that need root may be missing; run it as root"
        snapshot = with_gaps(snapshot, [Gap(node_name, "privileges", reason)])
    return snapshot


def netns_targets(names: list[str]) -> list[Target]:
    """Return one target per network namespace, named after it; raise :class:`SourceError` when one is missing."""
    from netdoctor.target import Target

    if os.geteuid() != 0:
        raise SourceError("--netns needs root to enter network namespaces; run netdoctor as root")
    missing = [name for name in names if not os.path.exists(os.path.join(NETNS_DIR, name))]
    if missing:
        raise SourceError(
            f"network namespace {', '.join(missing)} not found in {NETNS_DIR}; list them with 'ip netns list'"
        )
    return [Target(name, netns=name) for name in names]


def collect_netns(names: list[str]) -> ClusterSnapshot:
    """Collect one node per network namespace, each named after its namespace."""
    from netdoctor.collect import collect_cluster

    return collect_cluster(netns_targets(names), "netns")


def invalid_snapshot(path: str | PathLike[str], error: SchemaError) -> SourceError:
    """Return the error for a snapshot file that :class:`SchemaError` rejected, naming the file."""
    message = str(error)
    # Field errors carry only the JSON path (``$.nodes[0]...``), so the file is named here.
    if not message.startswith(f"{path}:"):
        message = f"{path}: invalid snapshot at {message}"
    return SourceError(message)


def load_snapshot_file(path: str | PathLike[str]) -> ClusterSnapshot:
    """Read a snapshot JSON file written by ``netdoctor collect``."""
    from netdoctor.model.serialize import read_snapshot

    try:
        snapshot = read_snapshot(path)
    except FileNotFoundError:
        raise SourceError(f"snapshot file {path} not found; write one with 'netdoctor collect -o FILE'") from None
    except IsADirectoryError:
        raise SourceError(f"snapshot {path} is a directory; --snapshot takes a JSON file (use --bundle for a directory)") from None
    except PermissionError:
        raise SourceError(f"cannot read snapshot file {path}: permission denied") from None
    except OSError as error:
        raise SourceError(f"cannot read snapshot file {path}: {error.strerror or error}") from None
    except SchemaError as error:
        raise invalid_snapshot(path, error) from None
    except MemoryError:
        # Raised while reading an endless pipe too; the partial text is freed by now.
        raise SourceError(f"cannot read snapshot file {path}: not enough memory to load it (loading takes about "
                          "twice the file's size)") from None
    if not snapshot.nodes and snapshot.etcd is None:
        # A check of nothing would report a healthy cluster.
        raise SourceError(f"snapshot file {path} has no nodes and no etcd keys, so there is nothing to check; "
                          "write it again with 'netdoctor collect -o FILE'")
    return snapshot


def load_bundle_path(path: str | PathLike[str]) -> ClusterSnapshot:
    """Read a support bundle (a directory or an archive) through ``netdoctor.capture.bundle``."""
    try:
        os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"bundle {path} not found; give the path of a bundle directory or archive") from None
    except OSError as error:  # a directory above it that this user may not search, for one
        raise SourceError(f"cannot read bundle {path}: {error.strerror or error}") from None
    from netdoctor.capture import ParseError

    try:
        bundle = importlib.import_module("netdoctor.capture.bundle")
    except ImportError as error:
        raise SourceError(f"reading bundles is not available in this installation: {error}") from None
    # BundleError: the bundle as a whole is unreadable (not an archive, unsafe members, too large).
    bundle_error: type[Exception] = getattr(bundle, "BundleError", ParseError)
    try:
        snapshot: ClusterSnapshot = bundle.load_bundle(os.fspath(path))
    except (bundle_error, ParseError, SchemaError) as error:
        raise SourceError(f"invalid bundle: {error}") from None
    except OSError as error:
        raise SourceError(f"cannot read bundle {path}: {error.strerror or error}") from None
    return snapshot


@record(slots=False)
class EtcdOptions:
    """The etcd endpoints and settings a live source reads flannel's keys with (the ``--etcd-*`` options)."""

    endpoints: tuple[str, ...] = ()
    prefix: str = "/coreos.com/network"
    #: ``v2``, ``v3`` or ``auto`` (both keyspaces, which etcd keeps apart).
    api: str = "auto"
    ca_cert: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def from_environment(
        cls,
        endpoints: str | None,
        prefix: str = "/coreos.com/network",
        api: str = "auto",
        ca_cert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
    ) -> EtcdOptions:
        """Build options from ``--etcd-endpoints`` or, when it is not given, ``ETCDCTL_ENDPOINTS``."""
        text = endpoints if endpoints is not None else os.environ.get("ETCDCTL_ENDPOINTS", "")
        listed = tuple(item.strip() for item in text.split(",") if item.strip())
        return cls(listed, prefix, api, ca_cert, cert, key)


def add_etcd(snapshot: ClusterSnapshot, options: EtcdOptions) -> ClusterSnapshot:
    """Read etcd's keys into the snapshot; an unreachable etcd becomes a gap."""
    if not options.endpoints:
        return snapshot
    from netdoctor.collectors.etcd import collect_etcd

    api = "both" if options.api == "auto" else options.api
    try:
        etcd, gaps = collect_etcd(
            list(options.endpoints), options.prefix, api, options.ca_cert, options.cert, options.key
        )
    except ValueError as error:
        raise SourceError(str(error)) from None
    return replace(snapshot, etcd=etcd, gaps=snapshot.gaps + tuple(gaps))


def lab_targets(name: str, state_dir: Path | None = None) -> tuple[list[Target], str, str | None]:
    """Return a running lab's targets, its source name (``lab:NAME``) and its etcd client URL."""
    from netdoctor.lab.plan import PlanError
    from netdoctor.lab.state import LabError
    from netdoctor.lab.targets import lab_source

    if os.geteuid() != 0:
        raise SourceError("--lab needs root to enter the lab's network namespaces; run netdoctor as root")
    try:
        lab = lab_source(name, state_dir)
    except (LabError, PlanError) as error:
        raise SourceError(str(error)) from None
    return list(lab.targets), f"lab:{lab.name}", lab.etcd_endpoint


def collect_lab(name: str, state_dir: Path | None = None) -> tuple[ClusterSnapshot, str | None]:
    """Collect every node of a running practice lab; return the snapshot and the lab's etcd URL."""
    from netdoctor.collect import collect_cluster

    targets, source, etcd_endpoint = lab_targets(name, state_dir)
    return collect_cluster(targets, source), etcd_endpoint


def check_one_source(netns: object, lab: object, snapshot: object, bundle: object) -> None:
    """Raise :class:`SourceError` naming the options when more than one source is given."""
    choices = (("--netns", netns), ("--lab", lab), ("--snapshot", snapshot), ("--bundle", bundle))
    chosen = [option for option, value in choices if value]
    if len(chosen) > 1:
        raise SourceError(f"{' and '.join(chosen)} cannot be combined; choose one source")


def snapshot_from_options(
    netns: str | None = None,
    snapshot: str | PathLike[str] | None = None,
    bundle: str | PathLike[str] | None = None,
    lab: str | None = None,
    lab_state_dir: Path | None = None,
    etcd: EtcdOptions | None = None,
) -> ClusterSnapshot:
    """Build the snapshot that the source options select; the local node when none is given.

    etcd options apply to live sources only. A lab reads its own etcd unless
    ``--etcd-endpoints`` names another.
    """
    check_one_source(netns, lab or lab_state_dir, snapshot, bundle)
    etcd = etcd or EtcdOptions()
    if etcd.endpoints and (snapshot is not None or bundle is not None):
        raise SourceError("--etcd-endpoints applies to live sources; a snapshot or bundle carries its own etcd keys")

    if snapshot is not None:
        return load_snapshot_file(snapshot)
    if bundle is not None:
        return load_bundle_path(bundle)
    if lab is not None or lab_state_dir is not None:
        collected, lab_endpoint = collect_lab(lab or "lab", lab_state_dir)
        if not etcd.endpoints and lab_endpoint:
            etcd = replace(etcd, endpoints=(lab_endpoint,))
        return add_etcd(collected, etcd)
    if netns is not None:
        return add_etcd(collect_netns(parse_netns_list(netns)), etcd)
    return add_etcd(collect_local(), etcd)
