"""Commands the lab runs on the host: ``ip``/``bridge`` batches, commands in a namespace, PIDs.

Every command either targets a namespace the lab created (``ip -n NS``,
``ip netns exec NS``) or creates and deletes those namespaces, so the host's
own links, routes and firewall are never touched.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

from netdoctor.lab.state import LabError

logger = logging.getLogger(__name__)


#: Directories searched after PATH, where Debian installs ip, bridge and the daemons' control programs.
_SYSTEM_DIRS = ("/usr/sbin", "/sbin")


def run(argv: Sequence[str], check: bool = True, timeout: float = 60.0, input_text: str | None = None) -> str:
    """Run a command and return its stdout; raise :class:`LabError` with its stderr when it fails.

    The program is looked up on PATH, then in /usr/sbin and /sbin, as a
    user's PATH without the system directories would miss ``ip``.
    """
    completed = _completed(argv, timeout, input_text)
    if check and completed.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed (exit status {completed.returncode}): {completed.stderr.strip()}")
    return completed.stdout


def _completed(argv: Sequence[str], timeout: float, input_text: str | None) -> subprocess.CompletedProcess[str]:
    logger.debug("run %s", " ".join(argv))
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SYSTEM_DIRS])
    program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=search)
    if program is None:
        raise LabError(f"{argv[0]} was not found on PATH or in {' or '.join(_SYSTEM_DIRS)}; install it, the lab "
                       "needs it for this backend")
    try:
        completed = subprocess.run(
            [program, *argv[1:]], capture_output=True, text=True, timeout=timeout, input=input_text, check=False
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]} was not found at {program}; install it, the lab needs it for this backend") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)} timed out after {timeout:g} s") from None
    return completed


def in_netns(netns: str, argv: Sequence[str], check: bool = True, timeout: float = 60.0) -> str:
    """Run a command inside a lab namespace and return its stdout."""
    return run(["ip", "netns", "exec", netns, *argv], check=check, timeout=timeout)


def ip_batch(netns: str | None, lines: Sequence[str], tool: str = "ip") -> None:
    """Run ``ip`` (or ``bridge``) commands as one batch, inside ``netns`` when given."""
    if not lines:
        return
    argv = [tool, "-batch", "-"] if netns is None else [tool, "-n", netns, "-batch", "-"]
    run(argv, input_text="\n".join(lines) + "\n")


#: Verbs of ``ip`` and ``bridge`` lines that add state, and the error they give when it is there already.
_ADDING = frozenset({"add", "append"})
_PRESENT = ("File exists", "Address already assigned.")
#: Verbs that remove state, and the errors they give when it is gone already.
_REMOVING = frozenset({"del", "delete"})
_ABSENT = ("No such process", "Address not found", "Cannot assign requested address", "No such file or directory",
           "Cannot find device", "FIB table does not exist")


def ip_batch_settled(netns: str, lines: Sequence[str], tool: str = "ip") -> None:
    """Run a batch like :func:`ip_batch`, taking a line whose change is made already as done.

    In ``ip``, an add of what exists fails, and so does a delete of what is
    gone. The lab's heal steps meet that when ``netdoctor fix`` or a person
    repaired the fault first. Every other failure raises :class:`LabError`
    naming the line.
    """
    if not lines:
        return
    completed = _completed([tool, "-force", "-n", netns, "-batch", "-"], 60.0, "\n".join(lines) + "\n")
    if completed.returncode == 0:
        return
    message = ""
    for text in completed.stderr.splitlines():
        if not text.startswith("Command failed -:"):
            message = text.strip()
            continue
        line = lines[int(text.rsplit(":", 1)[1]) - 1]
        words = line.split()
        verb = words[1] if len(words) > 1 else ""
        if (verb in _ADDING and message.endswith(_PRESENT)) or (verb in _REMOVING and any(
                absent in message for absent in _ABSENT)):
            logger.debug("%s: '%s' is done already: %s", netns, line, message)
            continue
        raise LabError(f"{tool} -n {netns}: '{line}' failed: {message or completed.stderr.strip()}")
    if not completed.stderr.strip():
        raise LabError(f"{tool} -n {netns} -batch failed (exit status {completed.returncode})")


def sysctl(netns: str, settings: dict[str, str]) -> None:
    """Set sysctls inside a namespace with one ``sysctl -w`` call."""
    if settings:
        in_netns(netns, ["sysctl", "-q", "-w", *(f"{key}={value}" for key, value in settings.items())])


def list_netns(prefix: str) -> list[str]:
    """Return the namespaces whose names start with ``prefix``."""
    listed = run(["ip", "netns", "list"], check=False)
    return sorted(line.split()[0] for line in listed.splitlines() if line.startswith(prefix))


def delete_netns(names: Sequence[str]) -> None:
    """Kill what still runs in each namespace, then delete it."""
    for name in names:
        for pid in run(["ip", "netns", "pids", name], check=False).split():
            kill_pid(int(pid), grace=0.0)
    ip_batch(None, [f"netns delete {name}" for name in names])


def pid_alive(pid: int) -> bool:
    """Return whether a process with this PID exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def kill_pid(pid: int, grace: float = 2.0) -> None:
    """Stop one process: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not pid_alive(pid):
            return
        time.sleep(0.01)
    logger.warning("process %d did not exit after SIGKILL", pid)


def read_pid(path: str | os.PathLike[str], timeout: float = 5.0) -> int:
    """Wait for a daemon's PID file and return the PID in it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as handle:
                text = handle.read().strip()
            if text:
                return int(text)
        except (FileNotFoundError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise LabError(f"no PID file {path} after {timeout:g} s: the daemon did not start; see its log next to it")
        time.sleep(0.02)
