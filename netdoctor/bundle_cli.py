"""``netdoctor bundle``: capture a support bundle, or map an anonymized report back with ``--reveal``."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netdoctor.cli import InputError, add_live_options, live_settings
from netdoctor.commandline import (
    ArgumentParser,
    echo,
    number_in_range,
    path_type,
    range_text,
    with_default,
)

logger = logging.getLogger(__name__)


def _default_output() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"netdoctor-bundle-{stamp}.tar.gz")


def _targets(netns: str | None, lab_name: str | None, lab_state_dir: Path | None) -> tuple[list[Any], str, str | None]:
    """Return the targets the source options select, the source label, and a lab's etcd URL."""
    from netdoctor.sources import NETNS_DIR, SourceError, parse_netns_list
    from netdoctor.target import Target

    if netns and (lab_name or lab_state_dir):
        raise InputError("--netns and --lab cannot be combined; choose one source")
    if (netns or lab_name or lab_state_dir) and os.geteuid() != 0:
        raise InputError("--netns and --lab need root to enter network namespaces; run netdoctor as root")
    if lab_name or lab_state_dir:
        from netdoctor.lab.state import LabError
        from netdoctor.lab.targets import lab_source

        try:
            lab = lab_source(lab_name or "lab", lab_state_dir)
        except LabError as error:
            raise InputError(str(error)) from None
        return list(lab.targets), f"lab:{lab.name}", lab.etcd_endpoint
    if netns:
        try:
            names = parse_netns_list(netns)
        except SourceError as error:
            raise InputError(str(error)) from None
        missing = [name for name in names if not os.path.exists(os.path.join(NETNS_DIR, name))]
        if missing:
            raise InputError(f"network namespace {', '.join(missing)} not found in {NETNS_DIR}; list them with 'ip netns list'")
        return [Target(name, netns=name) for name in names], "netns", None
    return [Target(socket.gethostname() or "localhost")], "local", None


def _cluster(live: dict[str, Any], lab_endpoint: str | None) -> Any:
    """Read etcd's keys for the bundle when endpoints are given (or the lab has its own etcd)."""
    from netdoctor.cli import _etcd_options
    from netdoctor.model import ClusterSnapshot
    from netdoctor.sources import SourceError, add_etcd

    options = _etcd_options(live)
    if not options.endpoints and lab_endpoint:
        options = replace(options, endpoints=(lab_endpoint,))
    if not options.endpoints:
        return None
    try:
        return add_etcd(ClusterSnapshot(), options)
    except SourceError as error:
        raise InputError(str(error)) from None


@contextmanager
def _progress_display() -> Iterator[Any]:
    """Yield a progress callback: a Rich bar on a terminal, None on a pipe."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from netdoctor.report import make_console

    console = make_console(sys.stderr)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("capturing", total=None)

        def update(done: int, total: int, node: str, what: str) -> None:
            description = f"{node}: {what}" if node else what
            bar.update(task, completed=done, total=total, description=description[:60])

        yield update


def _reveal(path: Path, key_text: str | None, mapping_file: Path | None) -> None:
    from netdoctor.supportbundle.anonymize import AnonymizeError, Anonymizer, parse_key
    from netdoctor.supportbundle.writer import BundleWriteError, read_mapping

    if key_text is None:
        raise InputError("--reveal needs --key: the key printed when the anonymized bundle was written")
    try:
        key = parse_key(key_text)
    except AnonymizeError as error:
        raise InputError(str(error)) from None
    mapping: dict[str, Any] = {}
    if mapping_file is not None:
        try:
            mapping = read_mapping(mapping_file)
        except BundleWriteError as error:
            raise InputError(str(error)) from None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    echo(Anonymizer(key).reveal(text, mapping), nl=False)


def add_bundle_command(parser: ArgumentParser) -> None:
    """Define the options of ``netdoctor bundle``."""
    parser.add_argument("--netns", metavar="NS[,NS...]",
                        help="Capture these network namespaces, one node per namespace.")
    add_live_options(parser)
    parser.add_argument("-o", "--output", type=path_type(dir_okay=False, output=True), metavar="FILE",
                        help="Write the bundle to this .tar.gz file [default: netdoctor-bundle-<UTC time>.tar.gz].")
    parser.add_argument("--timeout", type=number_in_range(float, minimum=0.1), default=60.0, metavar="SECONDS",
                        help=with_default("Time limit of one command, in seconds.", 60.0, range_text(0.1, None)))
    parser.add_argument("--output-cap", type=number_in_range(int, minimum=1024), default=64 * 1024 * 1024,
                        metavar="BYTES",
                        help=with_default("Largest output kept from one command or file, in bytes; more is cut "
                                          "and listed as a gap.", 64 * 1024 * 1024, range_text(1024, None)))
    parser.add_argument("--size-cap", type=number_in_range(int, minimum=1024), default=1024 * 1024 * 1024,
                        metavar="BYTES",
                        help=with_default("Largest total of all captured members before compression, in bytes.",
                                          1024 * 1024 * 1024, range_text(1024, None)))
    parser.add_argument("--no-redact", action="store_true",
                        help="Keep secrets (private keys, tokens, passwords) in the bundle.")
    parser.add_argument("--anonymize", action="store_true",
                        help="Replace IP and MAC addresses and host names with stable stand-ins.")
    parser.add_argument("--key", dest="key_text", metavar="HEX",
                        help="Anonymization key [default: a new random key, printed once].")
    parser.add_argument("--anonymize-name", dest="extra_names", action="append", metavar="NAME",
                        help="Another host or cluster name to replace (repeatable); node names are always replaced.")
    parser.add_argument("--reveal", dest="reveal_path", type=path_type(dir_okay=False), metavar="FILE",
                        help="Print this anonymized report with the original addresses and names, and capture "
                             "nothing.")
    parser.add_argument("--mapping", dest="mapping_file", type=path_type(dir_okay=False), metavar="FILE",
                        help="The mapping file written beside the anonymized bundle, for --reveal.")
    parser.set_defaults(handler=_run_bundle)


def _run_bundle(args: argparse.Namespace) -> None:
    bundle(args.netns, args.output, args.timeout, args.output_cap, args.size_cap, args.no_redact, args.anonymize,
           args.key_text, tuple(args.extra_names or ()), args.reveal_path, args.mapping_file, **live_settings(args))


def bundle(
    netns: str | None,
    output: Path | None,
    timeout: float,
    output_cap: int,
    size_cap: int,
    no_redact: bool,
    anonymize: bool,
    key_text: str | None,
    extra_names: tuple[str, ...],
    reveal_path: Path | None,
    mapping_file: Path | None,
    **live: Any,
) -> None:
    """Capture the evidence of every node into one support bundle for 'netdoctor check --bundle'."""
    if reveal_path is not None:
        _reveal(reveal_path, key_text, mapping_file)
        return

    from netdoctor.supportbundle.anonymize import AnonymizeError, new_key, parse_key
    from netdoctor.supportbundle.writer import BundleOptions, BundleWriteError, write_bundle

    if key_text is not None and not anonymize:
        raise InputError("--key applies to --anonymize; add --anonymize or drop --key")
    key = None
    if anonymize:
        printed = key_text is None
        key_text = key_text or new_key()
        try:
            key = parse_key(key_text)
        except AnonymizeError as error:
            raise InputError(str(error)) from None
        if printed:
            echo(f"anonymization key (keep it to reveal reports; it is not in the bundle): {key_text}", err=True)

    targets, source, lab_endpoint = _targets(netns, live.pop("lab_name"), live.pop("lab_state_dir"))
    cluster = _cluster(live, lab_endpoint)
    output = output or _default_output()
    options = BundleOptions(timeout, output_cap, size_cap, not no_redact, key, extra_names)
    with _progress_display() as progress:
        try:
            result = write_bundle(targets, output, source=source, cluster=cluster, options=options, progress=progress)
        except BundleWriteError as error:
            raise InputError(str(error)) from None

    echo(
        f"wrote {result.path}: {result.nodes} node(s), {result.steps} step(s), {result.failed_steps} failed, "
        f"{len(result.truncated)} cut; {result.findings} finding(s), {result.gaps} gap(s)",
        err=True,
    )
    if result.mapping_path is not None:
        echo(f"wrote {result.mapping_path}: the name and MAC mapping; keep it, never share it", err=True)
