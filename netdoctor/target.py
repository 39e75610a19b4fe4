"""Collection targets: the local node, or a network namespace that stands for a node.

Commands run inside the namespace through ``ip netns exec``; files are read under
the node's root directory (``/`` on a real node). Collectors go through a
:class:`Target` and never open sockets or processes of their own, so one
collector works unchanged on the host, in a namespace or later over SSH.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from netdoctor.model.record import field, record

logger = logging.getLogger(__name__)

#: Default time limit of one command, in seconds.
DEFAULT_TIMEOUT = 30.0

#: Default maximum size of one command's output or one file, in bytes. A node with
#: 100,000 routes prints about 10 MB of ``ip -j -d route show table all``.
DEFAULT_OUTPUT_CAP = 64 * 1024 * 1024


class CollectionError(Exception):
    """A source could not be read; the message is the gap's reason."""


@record
class CommandResult:
    """The outcome of one command run on a target."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float
    truncated: bool = False

    @property
    def command(self) -> str:
        """The command line as text, for provenance and messages."""
        return " ".join(self.argv)


@record(slots=False)
class Target:
    """One node to collect from.

    ``netns`` names the network namespace (None: the caller's own); ``root`` is the
    directory that stands for the node's ``/`` when reading files.
    """

    name: str
    netns: str | None = None
    root: Path = field(default_factory=lambda: Path("/"))
    timeout: float = DEFAULT_TIMEOUT
    output_cap: int = DEFAULT_OUTPUT_CAP

    def which(self, program: str) -> str | None:
        """Return the path of a program on the collecting host, or None if it is not installed."""
        return shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

    def run(self, argv: list[str] | tuple[str, ...], timeout: float | None = None) -> CommandResult:
        """Run a command on the target and return its result.

        Raise :class:`CollectionError` when the program is missing or the command
        times out; a non-zero exit status is returned, not raised, so the caller
        can tell "not running" from "not installed".
        """
        program = self.which(argv[0])
        if program is None:
            raise CollectionError(f"{argv[0]} is not installed")
        full = [program, *argv[1:]]
        if self.netns is not None:
            ip = self.which("ip")
            if ip is None:
                raise CollectionError("ip (iproute2) is not installed, so no namespace can be entered")
            full = [ip, "netns", "exec", self.netns, *full]
        started = time.monotonic()
        try:
            completed = subprocess.run(
                full,
                capture_output=True,
                timeout=timeout or self.timeout,
                check=False,
                env={**os.environ, "LC_ALL": "C"},
            )
        except subprocess.TimeoutExpired:
            raise CollectionError(f"{' '.join(argv)} timed out after {timeout or self.timeout:g} s") from None
        except PermissionError as error:
            raise CollectionError(f"{' '.join(argv)}: permission denied ({error})") from None
        duration = time.monotonic() - started
        stdout = completed.stdout
        truncated = len(stdout) > self.output_cap
        if truncated:
            stdout = stdout[: self.output_cap]
        return CommandResult(
            tuple(argv),
            completed.returncode,
            stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"),
            duration,
            truncated,
        )

    def path(self, path: str) -> Path:
        """Return where an absolute node path such as ``/run/flannel/subnet.env`` lies on this host."""
        return self.root / path.lstrip("/")

    def read_file(self, path: str) -> str | None:
        """Read a file under the node's root; return None when it does not exist.

        Raise :class:`CollectionError` when it exists but cannot be read.
        """
        location = self.path(path)
        try:
            with location.open("rb") as handle:
                raw = handle.read(self.output_cap + 1)
        except FileNotFoundError:
            return None
        except (PermissionError, IsADirectoryError) as error:
            raise CollectionError(f"cannot read {location}: {error.strerror}") from None
        if len(raw) > self.output_cap:
            raise CollectionError(f"{location} is larger than the {self.output_cap}-byte cap")
        return raw.decode("utf-8", "replace")
